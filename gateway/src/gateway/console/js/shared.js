// A shared detection (ADR 0048) or video job (ADR 0052) as anyone holding its link sees it,
// signed in or out: `#/shared?token=…`. The token is in the URL's fragment, which the browser never sends; the
// page reads it from there and sends it as the X-Share-Token header of GET /api/v1/shared and
// of the image's or video's GET, never in a request's URL, and without the session of whoever may be
// signed in here (the link is the only credential). Unlike a password-reset token it stays in
// the address bar: the link is meant to be kept and opened again, and reloading the page reads
// it afresh (a revoked link then says so).
// The image needs the header, which an <img src> cannot send: it is fetched as a blob and
// shown from a blob: URL, the server's annotated drawing first, the image without boxes once
// "Show boxes" is unticked. That is the upload itself, unless the link was made with `redact`
// (ADR 0049), whose image is pixelated either way; what the link shares does not say which,
// so the page promises neither ("Show boxes", never "the original image").
// A video job's link (`kind: "video"`) shows its annotated video, as the job drew it, in a
// <video controls>: it too needs the header, so it is fetched whole (the API serves no ranges)
// into a blob: URL. Beside it: the video's length and frames, how it was sampled, the objects
// per class, the line and zone counts when it was counted, the model and the link's expiry.
// A link that shows nothing says why (unknown, expired, revoked, no longer available), with
// no sign-in in the way.

import { request } from "./api.js";
import { byId, el, formatDate, plural } from "./dom.js";
import { describeError } from "./messages.js";
import { redactionText } from "./share-links.js";
import { lineCountsTable, samplingText, zoneCountsTable } from "./video.js";

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
// The page's heading and lead, by what the link shows.
const HEADINGS = {
  detection: ["Shared detection", "Someone shared this image, and the objects ObjectVision found in it, with you."],
  video: ["Shared video", "Someone shared this video, and the objects ObjectVision found and counted in it, with you."],
};

/** `4 person · 1 bus`, most first. */
function countsOf(counts) {
  return Object.entries(counts ?? {}).sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]));
}

/** One list item per class, most first. */
function countItems(counts) {
  return counts.map(([name, count]) =>
    el("li", { "data-testid": "shared-count", "data-class": name, "data-count": count }, `${name}: ${count}`),
  );
}

/** `4 person, 1 bus`. */
function countsText(counts) {
  return counts.map(([name, count]) => `${count} ${name}`).join(", ");
}

function modelText(shared) {
  return shared.model && shared.model_version ? `${shared.model} (version ${shared.model_version})` : shared.model;
}

/** `<dt>term</dt><dd>value</dd>` for each fact that has a value. */
function factItems(facts) {
  return facts.filter(([, value]) => value).flatMap(([term, value]) => [el("dt", {}, term), el("dd", {}, value)]);
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
    this.title = byId("shared-title");
    this.lead = byId("shared-lead");
    this.videoResult = byId("shared-video-result");
    this.video = byId("shared-video");
    this.videoProblem = byId("shared-video-error");
    this.videoSummary = byId("shared-video-summary");
    this.videoCounts = byId("shared-video-counts");
    this.videoRegions = byId("shared-video-regions");
    this.videoFacts = byId("shared-video-facts");
    // The blob: URL of the shared video on show.
    this.videoUrl = null;
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
    this.video.addEventListener("loadedmetadata", () => {
      this.video.dataset.loaded = "true";
    });
    this.video.addEventListener("error", () => {
      if (this.video.getAttribute("src")) this.showVideoProblem("The video could not be played in this browser.");
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
    this.showHeading("detection");
    this.result.hidden = true;
    this.videoResult.hidden = true;
    this.video.pause();
    this.video.removeAttribute("src");
    this.video.load();
    delete this.video.dataset.loaded;
    if (this.videoUrl) URL.revokeObjectURL(this.videoUrl);
    this.videoUrl = null;
    this.showVideoProblem("");
    for (const node of [this.videoSummary, this.videoCounts, this.videoRegions, this.videoFacts]) node.replaceChildren();
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

  /** The page's heading and lead for a `kind` of link ("detection" or "video"). */
  showHeading(kind) {
    const [title, lead] = HEADINGS[kind] ?? HEADINGS.detection;
    this.title.textContent = title;
    this.lead.textContent = lead;
  }

  async load() {
    const generation = ++this.generation;
    this.say("Loading what was shared…", "loading");
    let shared;
    try {
      shared = await request(SHARED, this.reading());
    } catch (error) {
      if (generation === this.generation) this.refuse(error);
      return;
    }
    if (generation !== this.generation) return;
    this.say("");
    if (shared.kind === "video") {
      this.renderVideo(shared);
      await this.showVideo();
      return;
    }
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
      ? `${plural(detections.length, "object")} found: ${countsText(counts)}.`
      : "No objects were found in this image.";
    this.counts.replaceChildren(...countItems(counts));
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
    const facts = [
      ["Detected", formatDate(shared.detected_at)],
      ["Model", modelText(shared) || null],
      ["Image", width && height ? `${width} × ${height} px` : null],
      ["Link works until", formatDate(shared.expires_at)],
    ];
    this.facts.replaceChildren(...factItems(facts));
    this.result.hidden = false;
  }

  /** A shared video job: what the video is, what was found and counted in it. */
  renderVideo(shared) {
    const video = shared.video ?? {};
    this.showHeading("video");
    if (video.width && video.height) {
      // The video's own proportions before it arrives (CSS scales it down to fit).
      this.video.width = video.width;
      this.video.height = video.height;
    }
    const counts = countsOf(shared.counts);
    const found = counts.reduce((sum, [, count]) => sum + count, 0);
    const frames = plural(video.sampled_frames ?? 0, "sampled frame");
    this.videoSummary.textContent = found
      ? `${plural(found, "object")} found in ${frames}: ${countsText(counts)}.`
      : `No objects were found in its ${frames}.`;
    this.videoCounts.replaceChildren(...countItems(counts));
    const regions = [];
    if (video.lines?.length) regions.push(lineCountsTable(video));
    if (video.zones?.length) regions.push(zoneCountsTable(video));
    this.videoRegions.replaceChildren(...regions);
    const duration = Number(video.duration_seconds ?? 0);
    const facts = [
      ["Duration", `${duration.toFixed(1)} s`],
      ["Frames", `${plural(video.frame_count ?? 0, "frame")} (${Number(video.frame_rate ?? 0).toFixed(1)} per second)`],
      [
        "Sampled",
        video.sampling ? `${plural(video.sampled_frames ?? 0, "frame")} (${samplingText(video.sampling)})` : null,
      ],
      ["Video", video.width && video.height ? `${String(video.codec ?? "").toUpperCase()} ${video.width} × ${video.height} px` : null],
      ["Objects tracked", video.tracked ? "Yes" : null],
      ["Pixelated", video.redact?.length ? redactionText(video) : null],
      ["Completed", formatDate(shared.completed_at)],
      ["Model", modelText(shared) || null],
      ["Link works until", formatDate(shared.expires_at)],
    ];
    this.videoFacts.replaceChildren(...factItems(facts));
    this.videoResult.hidden = false;
  }

  showVideoProblem(text) {
    this.videoProblem.textContent = text;
    this.videoProblem.hidden = !text;
  }

  /** The annotated video, fetched whole with the token into a blob: URL the player plays. */
  async showVideo() {
    const generation = this.generation;
    this.showVideoProblem("");
    this.video.setAttribute("aria-busy", "true");
    let blob;
    try {
      blob = await request(`${SHARED}/video`, this.reading({ as: "blob" }));
    } catch (error) {
      if (generation !== this.generation) return;
      // The link stopped working meanwhile: say so, as on opening it; any other failure
      // (too many reads, the server busy) leaves the counts on show.
      if (String(error?.code ?? "").startsWith("share_link_")) this.refuse(error);
      else this.showVideoProblem(`The video could not be loaded. ${describeError(error)}`);
      return;
    } finally {
      if (generation === this.generation) this.video.removeAttribute("aria-busy");
    }
    if (generation !== this.generation) return;
    this.videoUrl = URL.createObjectURL(blob.type ? blob : new Blob([blob], { type: "video/mp4" }));
    delete this.video.dataset.loaded;
    this.video.src = this.videoUrl;
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
