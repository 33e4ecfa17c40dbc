// Share links (ADR 0048), the owner's side: the Detect view's "Share" section under a stored
// detection makes a link that shows its image and objects to anyone who holds it, for 1, 7 or
// 30 days (POST /share-links), lists the detection's links, revoked and expired ones too
// (GET /share-links?detection_id=), and revokes one (DELETE /share-links/{id}).
// A link's URL carries its token, which the API answers once: it is shown once, in a
// read-only field with a Copy button, and leaves the page when the user moves on, opens
// another detection or revokes that link. Refusals (the detection has 10 active links
// already) are said in the section, beside what was asked.
// "Pixelate people" (ADR 0049) makes a link with `redact: ["person"]`: its image, boxed or not,
// always shows the people the model found pixelated, and never the upload itself. The hint
// beside it says that someone the model missed is shown as they are. Each listed link says
// what its image pixelates.

import { request } from "./api.js";
import { removeButton } from "./credentials.js";
import { byId, copyText, el, formatDate, onSubmit, plural, showRows, showStatus } from "./dom.js";
import { describeError } from "./messages.js";

const LINKS = "api/v1/share-links";
// A detection has at most 10 active links; the revoked and expired ones stay listed too. The
// API's largest page shows them all but for a detection shared and revoked very often.
const LISTED = 100;
const COLUMNS = 7;
// What the console's checkbox pixelates: the people the model found.
const PEOPLE = "person";
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

export class ShareLinks {
  constructor() {
    this.section = byId("share");
    this.form = byId("share-form");
    this.problem = byId("share-error");
    this.newLink = byId("share-new");
    this.summary = byId("share-summary");
    this.body = byId("share-links-body");
    // The stored detection on show (null: none, or a result that was not stored).
    this.detectionId = null;
    // The link whose URL is on show, so that revoking it takes the URL off the page too.
    this.shownLinkId = null;
    // Bumped whenever the detection changes: an answer about the previous one is dropped.
    this.generation = 0;
    onSubmit(this.form, () => this.create());
  }

  /** Offer to share the detection `detectionId` and list its links (none: hide the section). */
  show(detectionId) {
    if (detectionId !== this.detectionId) {
      this.reset();
      this.detectionId = detectionId;
    }
    this.section.hidden = !detectionId;
    if (detectionId) this.load();
  }

  /** Nothing shared on show any more (the detection left the page, or the account signed out). */
  reset() {
    this.generation += 1;
    this.detectionId = null;
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
    const detectionId = this.detectionId;
    if (!detectionId) return;
    const days = Number(this.form.elements.expires_in_days.value);
    const body = { detection_id: detectionId, expires_in_days: days };
    if (this.form.elements.redact_people.checked) body.redact = [PEOPLE];
    const created = await this.attempt(
      () => request(LINKS, { method: "POST", json: body }),
      this.form.querySelector("button[type=submit]"),
    );
    if (detectionId !== this.detectionId) return;
    // Refused too: the list as it is now shows why (10 active links already).
    if (created) this.showUrl(created);
    await this.load();
  }

  /** The new link's URL, in a read-only field to copy, with what holding it allows. */
  showUrl(created) {
    const field = el("input", {
      id: "share-url",
      className: "share-url",
      type: "text",
      readonly: true,
      spellcheck: "false",
      autocomplete: "off",
      "aria-describedby": "share-url-note",
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
    const pixelated = (created.redact ?? []).length
      ? ` Its image shows ${redactionText(created).toLowerCase()}, with boxes or without; anything the model did not find is shown as it is.`
      : "";
    const panel = el(
      "div",
      { className: "secret-panel", tabindex: "-1", "data-testid": "share-new-link" },
      el("h3", {}, "Link created"),
      el(
        "p",
        { id: "share-url-note" },
        "Copy this link now: it is shown only this once. Anyone who has it can see this image " +
          `and the objects found in it, without an account, until ${formatDate(created.expires_at)} ` +
          "or until you revoke it. Revoking stops further views, not copies already saved." +
          pixelated,
      ),
      el("label", { for: "share-url" }, "Link"),
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
      listed = await request(LINKS, { query: { detection_id: this.detectionId, limit: LISTED } });
    } catch (error) {
      if (generation === this.generation && error?.name !== "AbortError") this.say(describeError(error));
      return;
    }
    if (generation === this.generation) this.render(listed);
  }

  render({ items, total }) {
    showRows(this.body, items.map((link) => this.row(link)), COLUMNS, "No links yet: this detection is not shared.");
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
      el("td", { "data-label": "Image", "data-testid": "share-link-redaction" }, redactionText(link)),
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
    if (!window.confirm(`Revoke the link ${name}? Whoever has it can no longer see this image and its objects.`)) return;
    const generation = this.generation;
    const revoked = await this.attempt(
      () => request(`${LINKS}/${encodeURIComponent(link.id)}`, { method: "DELETE" }),
      button,
    );
    if (!revoked || generation !== this.generation) return;
    // A URL that opens nothing any more must not stay on screen to be copied.
    if (this.shownLinkId === link.id) this.forgetUrl();
    showStatus(`Link ${name} revoked: it no longer shows this detection.`);
    await this.load();
  }
}
