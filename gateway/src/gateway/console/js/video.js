// Video jobs in the Detect view: a video file (MP4, MOV, WebM) dropped or chosen becomes a
// job (POST /detect/video) followed like a batch job (the same progress bar, WebSocket and
// polling); once it has finished, its line counts (when it was given counting lines) and its
// sampled frames with their timestamps are listed, and the annotated video can be downloaded.
// The download needs the Authorization header, which a plain <a href> or <video src> cannot
// send, so it is fetched with the session and saved from a blob: URL.

import { request } from "./api.js";
import { el, guarded, plural, saveFile, showStatus } from "./dom.js";
import { FINAL_STATUSES } from "./jobs.js";

export const VIDEO_TYPES = new Set(["video/mp4", "video/quicktime", "video/webm"]);
const VIDEO_NAME = /\.(mp4|m4v|mov|webm)$/i;
const FRAMES_PAGE = 1000;

export function isVideo(file) {
  return VIDEO_TYPES.has(file.type) || VIDEO_NAME.test(file.name);
}

/** Counting lines as typed in the upload form, the CLI's syntax (`--line`):
 * `gate: 0,360,1280,360; door: 640,0,640,720`. The name is what comes before the last colon;
 * blank text is no lines. Throws an Error saying which entry is wrong; the API judges the
 * rest (name length and uniqueness, how many lines, whether a line fits the picture). */
export function parseCountingLines(text) {
  const lines = [];
  for (const entry of text.split(";")) {
    if (!entry.trim()) continue;
    const colon = entry.lastIndexOf(":");
    const name = entry.slice(0, colon).trim();
    const numbers = entry.slice(colon + 1).split(",");
    const values = numbers.map((value) => (value.trim() === "" ? NaN : Number(value)));
    if (colon < 0 || !name || values.length !== 4 || !values.every(Number.isFinite)) {
      throw new Error(`“${entry.trim()}” is not a line: write name: x1,y1,x2,y2 (e.g. gate: 0,360,1280,360)`);
    }
    lines.push({ name, start: values.slice(0, 2), end: values.slice(2) });
  }
  return lines;
}

/** The upload: the file, the sampling (frames per second), whether to track objects across
 * the frames, the lines to count them crossing (the JSON `lines` field) and the model, if one
 * is picked. */
export function videoForm(file, { fps, track, lines, model }) {
  const form = new FormData();
  form.append("file", file, file.name);
  if (fps) form.append("fps", String(fps));
  if (track) form.append("track", "true");
  if (lines?.length) form.append("lines", JSON.stringify(lines));
  if (model) form.append("model", model);
  return form;
}

/** A frame's objects: each tracked one with its track id (`#3 person`), by id, then the
 * others counted by class (`person ×2`). */
function objectsText(frame) {
  if (frame.error) return `failed: ${frame.error}`;
  const tracked = frame.detections
    .filter((found) => found.track_id != null)
    .sort((a, b) => a.track_id - b.track_id)
    .map((found) => `#${found.track_id} ${found.class}`);
  const counts = new Map();
  for (const found of frame.detections) {
    if (found.track_id == null) counts.set(found.class, (counts.get(found.class) ?? 0) + 1);
  }
  const counted = [...counts].map(([name, count]) => (count > 1 ? `${name} ×${count}` : name));
  const all = [...tracked, ...counted];
  return all.length === 0 ? "(none)" : all.join(", ");
}

async function loadFrames(jobId, body) {
  const page = await guarded(() =>
    request(`api/v1/detect/jobs/${encodeURIComponent(jobId)}/frames`, { query: { limit: FRAMES_PAGE } }),
  );
  if (!page) return;
  body.replaceChildren(
    ...page.frames.map((frame) =>
      el(
        "tr",
        { "data-testid": "video-frame" },
        el("td", {}, `${(frame.timestamp_ms / 1000).toFixed(2)} s`),
        el("td", {}, String(frame.frame_index)),
        el("td", {}, objectsText(frame)),
      ),
    ),
  );
}

/** How many of each class crossed each line, lines in the order given; a line nothing
 * crossed has one row of zeros, so every line is listed. */
function lineCountsTable(video) {
  const rows = video.lines.flatMap((line) => {
    const counts = video.line_counts
      .filter((count) => count.line === line.name)
      .sort((a, b) => a.class_name.localeCompare(b.class_name));
    const shown = counts.length ? counts : [{ class_name: "—", crossed_in: 0, crossed_out: 0 }];
    return shown.map((count) =>
      el(
        "tr",
        { "data-testid": "line-count" },
        el("td", {}, line.name),
        el("td", {}, count.class_name),
        el("td", {}, String(count.crossed_in)),
        el("td", {}, String(count.crossed_out)),
      ),
    );
  });
  return el(
    "table",
    { className: "detections", "data-testid": "line-counts" },
    el("caption", {}, "Line counts"),
    el(
      "thead",
      {},
      el(
        "tr",
        {},
        el("th", { scope: "col" }, "Line"),
        el("th", { scope: "col" }, "Class"),
        el("th", { scope: "col" }, "In"),
        el("th", { scope: "col" }, "Out"),
      ),
    ),
    el("tbody", {}, ...rows),
  );
}

function downloadButton(job) {
  return el(
    "button",
    {
      type: "button",
      className: "secondary",
      "data-testid": "download-video",
      onclick: async (event) => {
        const file = await guarded(
          () => request(job.video.annotated_url.replace(/^\//, ""), { as: "file" }),
          event.currentTarget,
        );
        if (!file) return;
        const stem = (job.video.filename || "video").replace(/\.[^.]*$/, "") || "video";
        saveFile(file.blob, `${stem}.annotated.mp4`);
        showStatus("Downloaded the annotated video.");
      },
    },
    "Download annotated video",
  );
}

/** What the video is and, once the job has finished, its frames and the annotated video. */
export function renderVideoJob(container, job) {
  if (job.kind !== "video" || !job.video) {
    container.hidden = true;
    container.dataset.key = "";
    container.replaceChildren();
    return;
  }
  // A cancelled video job keeps the frames it committed (and has no annotated video).
  const finished = FINAL_STATUSES.has(job.status);
  const key = `${job.jobId}:${finished}`;
  if (container.dataset.key === key) return;
  container.dataset.key = key;
  container.hidden = false;
  const video = job.video;
  const sampling = video.sampling.fps
    ? `${video.sampling.fps} per second`
    : `every ${video.sampling.every}th frame`;
  const children = [
    el(
      "p",
      { className: "muted", "data-testid": "video-summary" },
      `${video.filename || "video"}: ${video.codec.toUpperCase()} ${video.width}×${video.height}, ` +
        `${video.duration_seconds.toFixed(1)} s, ${plural(video.frame_count, "frame")}; ` +
        `${plural(video.sampled_frames, "frame")} sampled (${sampling})` +
        `${video.tracked ? ", objects tracked" : ""}` +
        `${video.lines?.length ? `, counted crossing ${plural(video.lines.length, "line")}` : ""}.`,
    ),
  ];
  if (finished && job.error) children.push(el("p", { className: "error-text" }, job.error));
  if (finished && video.annotated_url) children.push(el("div", { className: "downloads" }, downloadButton(job)));
  if (finished && video.lines?.length) children.push(lineCountsTable(video));
  if (finished) {
    const body = el("tbody", {});
    children.push(
      el(
        "table",
        { className: "detections", "data-testid": "video-frames" },
        el("caption", { className: "visually-hidden" }, "Objects per sampled frame"),
        el(
          "thead",
          {},
          el("tr", {}, el("th", { scope: "col" }, "Time"), el("th", { scope: "col" }, "Frame"), el("th", { scope: "col" }, "Objects")),
        ),
        body,
      ),
    );
    loadFrames(job.jobId, body);
  }
  container.replaceChildren(...children);
}
