// Video jobs in the Detect view: a video file (MP4, MOV, WebM) dropped or chosen, or a video
// URL the server fetches, becomes a job (POST /detect/video) followed like a batch job (the
// same progress bar, WebSocket and polling); once it has finished, its line and zone counts
// (when it was given counting lines or zones) and its sampled frames with their timestamps
// are listed, and the annotated video can be downloaded.
// "Pixelate people in the annotated video" (ADR 0049) sends `redact=person`: every frame of the
// annotated video then shows the people the model found pixelated, and the job's page says so
// (from the job's `video.redact`, whatever submitted it).
// The download needs the Authorization header, which a plain <a href> or <video src> cannot
// send, so it is fetched with the session and saved from a blob: URL.

import { request } from "./api.js";
import { el, guarded, plural, saveFile, showStatus } from "./dom.js";
import { FINAL_STATUSES } from "./jobs.js";
import { hasPairs } from "./metadata.js";
import { redactionText } from "./share-links.js";

export const VIDEO_TYPES = new Set(["video/mp4", "video/quicktime", "video/webm"]);
const VIDEO_NAME = /\.(mp4|m4v|mov|webm)$/i;
const FRAMES_PAGE = 1000;

export function isVideo(file) {
  return VIDEO_TYPES.has(file.type) || VIDEO_NAME.test(file.name);
}

/** Named regions as typed in the upload form, the CLI's syntax: entries `name: n1,n2,...`
 * separated by `;`, the name what comes before the last colon. Blank text is none. Throws an
 * Error saying which entry is not a `kind` (`fits` takes how many numbers it may have); the
 * API judges the rest (name length and uniqueness, how many, whether they fit the picture). */
function parseRegions(text, { kind, syntax, example, fits }) {
  const regions = [];
  for (const entry of text.split(";")) {
    if (!entry.trim()) continue;
    const colon = entry.lastIndexOf(":");
    const name = entry.slice(0, colon).trim();
    const numbers = entry.slice(colon + 1).split(",");
    const values = numbers.map((value) => (value.trim() === "" ? NaN : Number(value)));
    if (colon < 0 || !name || !fits(values.length) || !values.every(Number.isFinite)) {
      throw new Error(`“${entry.trim()}” is not a ${kind}: write ${syntax} (e.g. ${example})`);
    }
    regions.push({ name, values });
  }
  return regions;
}

/** Counting lines as `--line` takes them: `gate: 0,360,1280,360; door: 640,0,640,720`. */
export function parseCountingLines(text) {
  const lines = parseRegions(text, {
    kind: "line",
    syntax: "name: x1,y1,x2,y2",
    example: "gate: 0,360,1280,360",
    fits: (count) => count === 4,
  });
  return lines.map(({ name, values }) => ({ name, start: values.slice(0, 2), end: values.slice(2) }));
}

/** Counting zones as `--zone` takes them, the corners as x,y pairs in drawing order:
 * `queue: 0,0,640,0,640,200,0,200; bay: 700,400,1280,400,1280,720`. */
export function parseCountingZones(text) {
  const zones = parseRegions(text, {
    kind: "zone",
    syntax: "name: x1,y1,x2,y2,x3,y3,…",
    example: "queue: 0,0,640,0,640,200,0,200",
    fits: (count) => count >= 6 && count % 2 === 0,
  });
  return zones.map(({ name, values }) => ({
    name,
    polygon: values.filter((_, index) => index % 2 === 0).map((x, index) => [x, values[2 * index + 1]]),
  }));
}

/** The counting lines and zones typed in the upload form, `{ lines, zones }`. Throws an Error,
 * in the form's words, for either that is not in its syntax or that is given without
 * tracking: crossings, visits and stays are each a tracked object's. */
export function countingRegions({ lines, zones, track }) {
  const fields = [
    ["lines", "Counting lines", lines, parseCountingLines, "only tracked objects are counted crossing a line"],
    ["zones", "Counting zones", zones, parseCountingZones, "only tracked objects are counted in a zone"],
  ];
  const regions = {};
  for (const [field, label, text, parse, why] of fields) {
    try {
      regions[field] = parse(text);
    } catch (error) {
      throw new Error(`${label}: ${error.message}`);
    }
    if (regions[field].length && !track) throw new Error(`${label} need “Track objects”: ${why}`);
  }
  return regions;
}

/** The upload: the video (a File, sent as `file`, or a URL string the server fetches it from,
 * sent as `url`), the sampling (frames per second), whether to track objects across the
 * frames, the lines to count them crossing and the zones to count them in (the JSON `lines`
 * and `zones` fields), the model, if one is picked, the job's metadata, the classes its
 * annotated video pixelates (one `redact` field each), the per-class minimum scores
 * (`class_confidence`, `person:0.6,car:0.15`, when any: ADR 0050) and the side of the tiles
 * each frame is also detected in (`tile_size`, when chosen: ADR 0051), and the regions of
 * interest its objects must stand in (`regions`, the API's JSON of fractions, when any: ADR
 * 0053). */
export function videoForm(
  video,
  { fps, track, lines, zones, model, metadata, redact, classConfidence, tileSize, regionsOfInterest },
) {
  const form = new FormData();
  if (typeof video === "string") form.append("url", video);
  else form.append("file", video, video.name);
  if (fps) form.append("fps", String(fps));
  if (track) form.append("track", "true");
  if (lines?.length) form.append("lines", JSON.stringify(lines));
  if (zones?.length) form.append("zones", JSON.stringify(zones));
  if (model) form.append("model", model);
  if (hasPairs(metadata)) form.append("metadata", JSON.stringify(metadata));
  for (const name of redact ?? []) form.append("redact", name);
  if (classConfidence) form.append("class_confidence", classConfidence);
  if (tileSize) form.append("tile_size", String(tileSize));
  if (regionsOfInterest) form.append("regions", regionsOfInterest);
  return form;
}

/** A frame's objects: each tracked one with its track id and the counting zones it stands in
 * (`#3 person [queue]`), by id, then the others counted by class (`person ×2`). */
function objectsText(frame) {
  if (frame.error) return `failed: ${frame.error}`;
  const tracked = frame.detections
    .filter((found) => found.track_id != null)
    .sort((a, b) => a.track_id - b.track_id)
    .map((found) => {
      const zones = found.zones?.length ? ` [${found.zones.join(", ")}]` : "";
      return `#${found.track_id} ${found.class}${zones}`;
    });
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

/** How the frames were sampled: `2 per second`, or `every 5th frame`. */
export function samplingText(sampling) {
  return sampling.fps ? `${sampling.fps} per second` : `every ${sampling.every}th frame`;
}

/** One row per region and class counted in it (`cells`: the class and its numbers), regions
 * in the order given and classes by name; a region with no count has one row of `nothing`, so
 * every region is listed. `testId` names the table, `rowTestId` each row. */
function countsTable({ caption, testId, rowTestId, headers, regions, counts, regionOf, cells, nothing }) {
  const rows = regions.flatMap((region) => {
    const found = counts
      .filter((count) => regionOf(count) === region.name)
      .sort((a, b) => a.class_name.localeCompare(b.class_name));
    const shown = found.length ? found.map(cells) : [nothing];
    return shown.map((values) =>
      el(
        "tr",
        { "data-testid": rowTestId },
        el("td", {}, region.name),
        ...values.map((value) => el("td", {}, value)),
      ),
    );
  });
  return el(
    "table",
    { className: "detections", "data-testid": testId },
    el("caption", {}, caption),
    el("thead", {}, el("tr", {}, ...headers.map((header) => el("th", { scope: "col" }, header)))),
    el("tbody", {}, ...rows),
  );
}

/** How many of each class crossed each line, each way (`soFar`: of a job still running). Also
 * under a shared video (shared.js). */
export function lineCountsTable(video, soFar = false) {
  return countsTable({
    caption: soFar ? "Line counts so far" : "Line counts",
    testId: "line-counts",
    rowTestId: "line-count",
    headers: ["Line", "Class", "In", "Out"],
    regions: video.lines,
    counts: video.line_counts ?? [],
    regionOf: (count) => count.line,
    cells: (count) => [count.class_name, String(count.crossed_in), String(count.crossed_out)],
    nothing: ["—", "0", "0"],
  });
}

/** Who of each class was in each zone: visitors, the most inside at once, the mean stay
 * (`soFar`: of a job still running). Also under a shared video (shared.js). */
export function zoneCountsTable(video, soFar = false) {
  return countsTable({
    caption: soFar ? "Zone counts so far" : "Zone counts",
    testId: "zone-counts",
    rowTestId: "zone-count",
    headers: ["Zone", "Class", "Visited", "Peak", "Mean stay"],
    regions: video.zones,
    counts: video.zone_counts ?? [],
    regionOf: (count) => count.zone,
    cells: (count) => [
      count.class_name,
      String(count.visited),
      String(count.peak),
      `${count.mean_stay_seconds.toFixed(1)} s`,
    ],
    nothing: ["—", "0", "0", "—"],
  });
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

/** What the video is (and what its annotated video pixelates); its counts so far while a
 * counting job runs; once the job has finished, its counts, frames and annotated video. */
export function renderVideoJob(container, job) {
  if (job.kind !== "video" || !job.video) {
    container.hidden = true;
    container.dataset.key = "";
    container.replaceChildren();
    return;
  }
  // A cancelled video job keeps the frames it committed (and has no annotated video).
  const finished = FINAL_STATUSES.has(job.status);
  const video = job.video;
  // A counting job's counts arrive while it runs (progress messages, GET while polling): its
  // tables show them so far, drawn again as they change.
  const counts = [video.line_counts ?? [], video.zone_counts ?? []];
  const key = `${job.jobId}:${finished}:${JSON.stringify(counts)}`;
  if (container.dataset.key === key) return;
  container.dataset.key = key;
  container.hidden = false;
  const sampling = samplingText(video.sampling);
  const children = [
    el(
      "p",
      { className: "muted", "data-testid": "video-summary" },
      `${video.filename || "video"}: ${video.codec.toUpperCase()} ${video.width}×${video.height}, ` +
        `${video.duration_seconds.toFixed(1)} s, ${plural(video.frame_count, "frame")}; ` +
        `${plural(video.sampled_frames, "frame")} sampled (${sampling})` +
        `${video.tracked ? ", objects tracked" : ""}` +
        `${video.lines?.length ? `, counted crossing ${plural(video.lines.length, "line")}` : ""}` +
        `${video.zones?.length ? `, counted in ${plural(video.zones.length, "zone")}` : ""}.`,
    ),
  ];
  if (video.redact?.length) {
    children.push(
      el(
        "p",
        { className: "muted", "data-testid": "video-redaction", dataset: { redact: video.redact.join(" ") } },
        `${redactionText(video)} in every frame of the annotated video (only those the model found).`,
      ),
    );
  }
  if (finished && job.error) children.push(el("p", { className: "error-text" }, job.error));
  if (finished && video.annotated_url) children.push(el("div", { className: "downloads" }, downloadButton(job)));
  if (video.lines?.length) children.push(lineCountsTable(video, !finished));
  if (video.zones?.length) children.push(zoneCountsTable(video, !finished));
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
