// Share links (ADR 0048), the owner's side: a "Share" section makes a link that shows what it
// is under to anyone who holds it, for 1, 7 or 30 days (POST /share-links), lists its links,
// revoked and expired ones too (GET /share-links?detection_id= or ?job_id=), and revokes one
// (DELETE /share-links/{id}). One section is under a stored detection (its image and objects),
// another on a completed video job's page (ADR 0052: its annotated video and what it counted);
// each is a ShareLinks of its own, told which by `SHARED_THINGS`.
// A link's URL carries its token, which the API answers once: it is shown once, in a
// read-only field with a Copy button, and leaves the page when the user moves on, opens
// another detection or job, or revokes that link. Refusals (10 active links already) are said
// in the section, beside what was asked.
// "Pixelate people" (ADR 0049), under a detection only, makes a link with `redact: ["person"]`:
// its image, boxed or not, always shows the people the model found pixelated, and never the
// upload itself. The hint beside it says that someone the model missed is shown as they are.
// Each listed link says what its image pixelates. A video job's link takes no `redact`: it
// shows the annotated video as the job drew it (pixelated if the job was submitted so).

import { request } from "./api.js";
import { removeButton } from "./credentials.js";
import { byId, copyText, el, formatDate, onSubmit, plural, showRows, showStatus } from "./dom.js";
import { describeError } from "./messages.js";

const LINKS = "api/v1/share-links";
// A detection or job has at most 10 active links; the revoked and expired ones stay listed
// too. The API's largest page shows them all but for one shared and revoked very often.
const LISTED = 100;
const COLUMNS = 7;
// What the console's checkbox pixelates: the people the model found.
const PEOPLE = "person";
// What a section shares: the field naming it (in the new link's body and the list's query),
// what a link to it shows, and whether a link may pixelate people itself.
export const SHARED_THINGS = {
  detection: {
    field: "detection_id",
    name: "detection",
    shows: "this image and the objects found in it",
    redacts: true,
  },
  job: {
    field: "job_id",
    name: "video job",
    shows: "this job's annotated video and what it counted",
    redacts: false,
  },
};
const STATE_NAMES = { active: "Active", revoked: "Revoked", expired: "Expired", unavailable: "Unavailable" };

/** "active", "revoked", "expired", or "unavailable" (it shows nothing though neither: the
 * account is suspended). */
export function linkState(link, now = new Date()) {
  if (link.active) return "active";
  if (link.revoked_at) return "revoked";
  if (new Date(link.expires_at) <= now) return "expired";
  return "unavailable";
}

function stateText(link, state) {
  return state === "revoked" ? `Revoked ${formatDate(link.revoked_at)}` : STATE_NAMES[state];
}

/** "People pixelated", "People, car pixelated", or "As found" for a link that redacts nothing. */
export function redactionText(link) {
  const classes = (link.redact ?? []).map((name) => (name === PEOPLE ? "people" : name));
  if (classes.length === 0) return "As found";
  const text = `${classes.join(", ")} pixelated`;
  return text.charAt(0).toUpperCase() + text.slice(1);
}

function viewsText(link) {
  return link.last_viewed_at ? `${link.views}, last ${formatDate(link.last_viewed_at)}` : String(link.views);
}

/** A link's image or video, as the list says it: what it pixelates, or for a video job's link,
 * that it is the video the job drew. */
function shownText(link, thing) {
  return thing.redacts ? redactionText(link) : "As the job drew it";
}

export class ShareLinks {
  /** The section whose ids start with `prefix` ("share": `share-form`, `share-links-body`…),
   * sharing a `kind` of SHARED_THINGS ("detection" or "job"). */
  constructor({ prefix = "share", kind = "detection" } = {}) {
    this.prefix = prefix;
    this.thing = SHARED_THINGS[kind];
    this.section = byId(prefix);
    this.form = byId(`${prefix}-form`);
    this.problem = byId(`${prefix}-error`);
    this.newLink = byId(`${prefix}-new`);
    this.summary = byId(`${prefix}-summary`);
    this.body = byId(`${prefix}-links-body`);
    // The id of the detection or job on show (null: none, a result that was not stored, or a
    // job that cannot be shared).
    this.sharedId = null;
    // The link whose URL is on show, so that revoking it takes the URL off the page too.
    this.shownLinkId = null;
    // Bumped whenever what is shared changes: an answer about the previous one is dropped.
    this.generation = 0;
    onSubmit(this.form, () => this.create());
  }

  /** Offer to share the detection or job `id` and list its links (none: hide the section). */
  show(id) {
    if (id !== this.sharedId) {
      this.reset();
      this.sharedId = id;
    }
    this.section.hidden = !id;
    if (id) this.load();
  }

  /** Nothing shared on show any more (it left the page, or the account signed out). */
  reset() {
    this.generation += 1;
    this.sharedId = null;
    this.section.hidden = true;
    this.form.reset();
    this.say("");
    this.forgetUrl();
    this.summary.textContent = "";
    this.body.replaceChildren();
  }

  /** Take a new link's URL off the page: it is shown once, while the user is here. */
  forgetUrl() {
    this.newLink.replaceChildren();
    this.shownLinkId = null;
  }

  /** Say `text` (a refusal) in the section; "" clears it. */
  say(text) {
    this.problem.textContent = text;
    this.problem.hidden = !text;
  }

  /** Run `action` with `button` disabled; its failure, if any, is said in the section. */
  async attempt(action, button) {
    this.say("");
    button.disabled = true;
    try {
      return await action();
    } catch (error) {
      if (error?.name !== "AbortError") this.say(describeError(error));
      return undefined;
    } finally {
      button.disabled = false;
    }
  }

  async create() {
    const sharedId = this.sharedId;
    if (!sharedId) return;
    const days = Number(this.form.elements.expires_in_days.value);
    const body = { [this.thing.field]: sharedId, expires_in_days: days };
    if (this.thing.redacts && this.form.elements.redact_people?.checked) body.redact = [PEOPLE];
    const created = await this.attempt(
      () => request(LINKS, { method: "POST", json: body }),
      this.form.querySelector("button[type=submit]"),
    );
    if (sharedId !== this.sharedId) return;
    // Refused too: the list as it is now shows why (10 active links already).
    if (created) this.showUrl(created);
    await this.load();
  }

  /** The new link's URL, in a read-only field to copy, with what holding it allows. */
  showUrl(created) {
    const fieldId = `${this.prefix}-url`;
    const noteId = `${this.prefix}-url-note`;
    const field = el("input", {
      id: fieldId,
      className: "share-url",
      type: "text",
      readonly: true,
      spellcheck: "false",
      autocomplete: "off",
      "aria-describedby": noteId,
      "data-testid": "share-url",
      onfocus: (event) => event.currentTarget.select(),
    });
    field.value = created.url;
    const feedback = el("span", { className: "copy-feedback", role: "status", "data-testid": "share-copy-feedback" });
    const copy = el(
      "button",
      {
        type: "button",
        className: "secondary",
        "data-testid": "copy-share-url",
        onclick: async () => {
          try {
            await copyText(created.url);
            feedback.textContent = "Copied.";
          } catch {
            // No clipboard here: the whole link is selected, for the user to copy.
            field.focus();
            field.select();
            feedback.textContent = "Copy failed: the link is selected, copy it yourself.";
          }
        },
      },
      "Copy",
    );
    const pixelated = !this.thing.redacts
      ? " It shows the video as the job drew it."
      : (created.redact ?? []).length
        ? ` Its image shows ${redactionText(created).toLowerCase()}, with boxes or without; anything the model did not find is shown as it is.`
        : "";
    const panel = el(
      "div",
      { className: "secret-panel", tabindex: "-1", "data-testid": "share-new-link" },
      el("h3", {}, "Link created"),
      el(
        "p",
        { id: noteId },
        `Copy this link now: it is shown only this once. Anyone who has it can see ${this.thing.shows}, ` +
          `without an account, until ${formatDate(created.expires_at)} ` +
          "or until you revoke it. Revoking stops further views, not copies already saved." +
          pixelated,
      ),
      el("label", { for: fieldId }, "Link"),
      el("div", { className: "secret-row" }, field, copy),
      feedback,
      el("button", { type: "button", onclick: () => this.forgetUrl() }, "I've copied it"),
    );
    this.newLink.replaceChildren(panel);
    this.shownLinkId = created.id;
    panel.focus();
  }

  async load() {
    const generation = this.generation;
    let listed;
    try {
      listed = await request(LINKS, { query: { [this.thing.field]: this.sharedId, limit: LISTED } });
    } catch (error) {
      if (generation === this.generation && error?.name !== "AbortError") this.say(describeError(error));
      return;
    }
    if (generation === this.generation) this.render(listed);
  }

  render({ items, total }) {
    const none = `No links yet: this ${this.thing.name} is not shared.`;
    showRows(this.body, items.map((link) => this.row(link)), COLUMNS, none);
    const active = items.filter((link) => link.active).length;
    const newest = total > items.length ? ` (the newest ${items.length} shown)` : "";
    this.summary.textContent = total ? `${plural(total, "link")}${newest}, ${active} active.` : "";
  }

  row(link) {
    const state = linkState(link);
    const name = `${link.token_prefix}…`;
    return el(
      "tr",
      { "data-testid": "share-link-row", dataset: { id: link.id, state, redact: (link.redact ?? []).join(" ") } },
      el("td", { "data-label": "Created" }, formatDate(link.created_at)),
      el("td", { "data-label": "Expires" }, formatDate(link.expires_at)),
      el("td", { "data-label": "State", "data-testid": "share-link-state" }, stateText(link, state)),
      el("td", { "data-label": "Views" }, viewsText(link)),
      el(
        "td",
        { "data-label": this.thing.redacts ? "Image" : "Video", "data-testid": "share-link-redaction" },
        shownText(link, this.thing),
      ),
      el("td", { "data-label": "Token" }, el("code", {}, name)),
      el(
        "td",
        { className: "row-actions" },
        state === "active"
          ? removeButton("Revoke", `Revoke link ${name}`, (event) => this.revoke(link, event.currentTarget))
          : null,
      ),
    );
  }

  /** Stop the link once confirmed; it stays listed, as revoked. */
  async revoke(link, button) {
    const name = `${link.token_prefix}…`;
    if (!window.confirm(`Revoke the link ${name}? Whoever has it can no longer see ${this.thing.shows}.`)) return;
    const generation = this.generation;
    const revoked = await this.attempt(
      () => request(`${LINKS}/${encodeURIComponent(link.id)}`, { method: "DELETE" }),
      button,
    );
    if (!revoked || generation !== this.generation) return;
    // A URL that opens nothing any more must not stay on screen to be copied.
    if (this.shownLinkId === link.id) this.forgetUrl();
    showStatus(`Link ${name} revoked: it no longer shows this ${this.thing.name}.`);
    await this.load();
  }
}
