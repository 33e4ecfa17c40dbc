// Download links for exports: a finished job's, or the whole history's, detections as COCO
// JSON, a zip of YOLO labels or CSV. Export routes need the Authorization header, which a
// plain <a href> cannot send, so each file is fetched with the session and saved from a
// blob: URL under the name the server gives it (Content-Disposition).

import { request } from "./api.js";
import { el, guarded, saveFile, showStatus } from "./dom.js";
import { FINAL_STATUSES } from "./jobs.js";

export const EXPORT_FORMATS = [
  { format: "coco", label: "COCO JSON" },
  { format: "yolo", label: "YOLO labels (zip)" },
  { format: "csv", label: "CSV" },
];

/**
 * One button per format for the export at `path` (e.g. `api/v1/detect/jobs/<id>/export`),
 * `what` naming it for screen readers and the status line ("this job", "your history").
 */
export function exportButtons(path, what, query = {}) {
  return EXPORT_FORMATS.map(({ format, label }) =>
    el(
      "button",
      {
        type: "button",
        className: "secondary",
        "data-testid": `export-${format}`,
        "aria-label": `Download ${what} as ${label}`,
        onclick: async (event) => {
          const button = event.currentTarget;
          const file = await guarded(
            () => request(path, { query: { ...query, format }, as: "file" }),
            button,
          );
          if (!file) return;
          saveFile(file.blob, file.filename || `objectvision-export-${format}`);
          showStatus(`Downloaded ${what} as ${label}.`);
        },
      },
      `Export ${label}`,
    ),
  );
}

/** The job's export buttons once it has finished (an export of a running job is a 409). */
export function renderJobExports(container, job) {
  // A cancelled job exports what it did before it was stopped.
  const finished = FINAL_STATUSES.has(job.status);
  const key = finished ? job.jobId : "";
  if (container.dataset.jobId === key) return;
  container.dataset.jobId = key;
  container.hidden = !finished;
  container.replaceChildren(
    ...(finished
      ? exportButtons(`api/v1/detect/jobs/${encodeURIComponent(job.jobId)}/export`, "this job")
      : []),
  );
}
