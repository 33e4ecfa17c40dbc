// A shared detection (ADR 0048) as anyone holding its link sees it, signed in or out:
// `#/shared?token=…`. The token is in the URL's fragment, which the browser never sends; the
// page reads it from there and sends it as the X-Share-Token header of GET /api/v1/shared and
// of the image's GET, never in a request's URL, and without the session of whoever may be
// signed in here (the link is the only credential). Unlike a password-reset token it stays in
// the address bar: the link is meant to be kept and opened again, and reloading the page reads
// it afresh (a revoked link then says so).
// The image needs the header, which an <img src> cannot send: it is fetched as a blob and
// shown from a blob: URL, the server's annotated drawing first, the image without boxes once
// "Show boxes" is unticked. That is the upload itself, unless the link was made with `redact`
// (ADR 0049), whose image is pixelated either way; what the link shares does not say which,
// so the page promises neither ("Show boxes", never "the original image").
// A link that shows nothing says why (unknown, expired, revoked, no longer available), with
// no sign-in in the way.

import { request } from "./api.js";
import { byId, el, formatDate, plural } from "./dom.js";
import { describeError } from "./messages.js";

export const SHARED_VIEWS = ["shared"];

const SHARED = "api/v1/shared";
// What a token can be (the API's are `ovs_` and 43 URL-safe characters): anything else is no
// link, and could not even be sent as a header.
const TOKEN = /^[\x21-\x7e]{1,128}$/;
const NOT_A_LINK = {
  status: 404,
  code: "share_link_not_found",
  message: "no such share link",
};
const NO_TOKEN =
  "This page shows a detection someone shared with you: open the whole link you were given.";

/** `4 person · 1 bus`, most first. */
function countsOf(counts) {
  return Object.entries(counts ?? {}).sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]));
}

function boxText(box) {
  return `${Math.round(box.x1)}, ${Math.round(box.y1)} – ${Math.round(box.x2)}, ${Math.round(box.y2)}`;
}

export class SharedView {
  constructor() {
    this.message = byId("shared-message");
    this.result = byId("shared-result");
    this.image = byId("shared-image");
    this.imageProblem = byId("shared-image-error");
    this.annotated = byId("shared-annotated");
    this.summary = byId("shared-summary");
    this.counts = byId("shared-counts");
    this.objects = byId("shared-objects");
    this.facts = byId("shared-facts");
    // The token whose detection is on show (or being fetched): a re-render does not read again.
    this.token = null;
    // Bumped by each link opened and by leaving: a late answer for another one is dropped.
    this.generation = 0;
    // Blob URLs of the image, by whether it is the annotated one.
    this.imageUrls = new Map();
    this.detectionCount = 0;
    this.annotated.addEventListener("change", () => this.showImage());
    this.image.addEventListener("load", () => {
      this.image.dataset.loaded = "true";
    });
  }

  /** Show what the token of `#/shared?token=…` shares; nothing new for the token on show. */
  open(query) {
    const token = (new URLSearchParams(query).get("token") ?? "").trim();
    if (token === this.token) return;
    this.close();
    this.token = token;
    if (!token) {
      this.say(NO_TOKEN, "no-token");
      return;
    }
    if (!TOKEN.test(token)) {
      this.refuse(NOT_A_LINK);
      return;
    }
    this.load();
  }

  /** Take the shared detection off the page (the user went elsewhere). */
  close() {
    if (this.token === null) return;
    this.generation += 1;
    this.token = null;
    this.clearShown();
    this.say("");
  }

  clearShown() {
    this.result.hidden = true;
    this.image.removeAttribute("src");
    this.image.alt = "";
    delete this.image.dataset.loaded;
    for (const url of this.imageUrls.values()) URL.revokeObjectURL(url);
    this.imageUrls.clear();
    this.annotated.checked = true;
    this.showImageProblem("");
    for (const node of [this.summary, this.counts, this.objects, this.facts]) node.replaceChildren();
  }

  /** The page's message about the link: `state` says which (loading, a refusal's code). */
  say(text, state = "") {
    this.message.textContent = text;
    this.message.hidden = !text;
    this.message.dataset.state = state;
    const refused = Boolean(state) && state !== "loading";
    this.message.classList.toggle("notice-error", refused);
    this.message.classList.toggle("notice-status", !refused);
  }

  /** The link shows nothing: say why, in place of what it showed. */
  refuse(error) {
    this.clearShown();
    this.say(describeError(error), error?.code ?? "error");
  }

  /** The headers of a read through the link: its token, and no session. */
  reading(extra = {}) {
    return { headers: { "X-Share-Token": this.token }, auth: false, ...extra };
  }

  async load() {
    const generation = ++this.generation;
    this.say("Loading the shared detection…", "loading");
    let shared;
    try {
      shared = await request(SHARED, this.reading());
    } catch (error) {
      if (generation === this.generation) this.refuse(error);
      return;
    }
    if (generation !== this.generation) return;
    this.say("");
    this.render(shared);
    await this.showImage();
  }

  render(shared) {
    const detections = shared.detections ?? [];
    this.detectionCount = detections.length;
    const { width, height } = shared.image ?? {};
    if (width && height) {
      // The image's own proportions before it arrives (CSS scales it down to fit).
      this.image.width = width;
      this.image.height = height;
    }
    const counts = countsOf(shared.counts);
    this.summary.textContent = detections.length
      ? `${plural(detections.length, "object")} found: ${counts.map(([name, count]) => `${count} ${name}`).join(", ")}.`
      : "No objects were found in this image.";
    this.counts.replaceChildren(
      ...counts.map(([name, count]) =>
        el("li", { "data-testid": "shared-count", "data-class": name, "data-count": count }, `${name}: ${count}`),
      ),
    );
    this.objects.replaceChildren(
      ...detections.map((item) =>
        el(
          "tr",
          { "data-testid": "shared-object", "data-class": item.class },
          el("td", {}, item.class),
          el("td", {}, Number(item.confidence).toFixed(2)),
          el("td", {}, boxText(item.bbox ?? {})),
        ),
      ),
    );
    const model = shared.model && shared.model_version ? `${shared.model} (version ${shared.model_version})` : shared.model;
    const facts = [
      ["Detected", formatDate(shared.detected_at)],
      ["Model", model || null],
      ["Image", width && height ? `${width} × ${height} px` : null],
      ["Link works until", formatDate(shared.expires_at)],
    ].filter(([, value]) => value);
    this.facts.replaceChildren(...facts.flatMap(([term, value]) => [el("dt", {}, term), el("dd", {}, value)]));
    this.result.hidden = false;
  }

  showImageProblem(text) {
    this.imageProblem.textContent = text;
    this.imageProblem.hidden = !text;
  }

  /** The image as the toggle asks: annotated (the server's drawing) or without boxes. */
  async showImage() {
    const annotated = this.annotated.checked;
    const generation = this.generation;
    let url = this.imageUrls.get(annotated);
    if (!url) {
      this.showImageProblem("");
      this.annotated.disabled = true;
      let blob;
      try {
        blob = await request(`${SHARED}/image`, this.reading({ query: { annotated: String(annotated) }, as: "blob" }));
      } catch (error) {
        if (generation !== this.generation) return;
        // The link stopped working meanwhile: say so, as on opening it; any other failure
        // (too many reads, the server busy) leaves the objects on show.
        if (String(error?.code ?? "").startsWith("share_link_")) this.refuse(error);
        else this.showImageProblem(`The image could not be loaded. ${describeError(error)}`);
        return;
      } finally {
        if (generation === this.generation) this.annotated.disabled = false;
      }
      if (generation !== this.generation) return;
      url = URL.createObjectURL(blob);
      this.imageUrls.set(annotated, url);
    }
    delete this.image.dataset.loaded;
    this.image.dataset.annotated = String(annotated);
    this.image.alt = annotated
      ? `The shared image, its ${plural(this.detectionCount, "object")} outlined`
      : "The shared image, without boxes";
    this.image.src = url;
  }
}
