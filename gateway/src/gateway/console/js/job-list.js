// The caller's batch and video jobs, newest first, a page at a time (GET /detect/jobs, which
// answers each job without its items), optionally only those in one status. Each links to
// the job's own page, `#/jobs/<id>`, which follows it live or shows its results.

import { request } from "./api.js";
import { byId, el, formatDate, plural, showRows } from "./dom.js";
import { normaliseJob, timeLeftText } from "./jobs.js";
import { formatPairs } from "./metadata.js";
import { Pager } from "./pager.js";

export const PAGE_SIZE = 20;
const COLUMNS = 6;
export const STATUS_NAMES = {
  pending: "Pending",
  processing: "Processing",
  completed: "Completed",
  failed: "Failed",
  cancelled: "Cancelled",
};

export class JobListView {
  constructor() {
    this.body = byId("jobs-body");
    this.status = byId("jobs-status");
    this.metadata = byId("jobs-metadata");
    this.pager = new Pager({
      previous: "jobs-previous",
      next: "jobs-next",
      range: "jobs-range",
      size: PAGE_SIZE,
      fetchPage: (query, signal) =>
        request("api/v1/detect/jobs", {
          query: { ...query, status: this.status.value, metadata: this.metadata.value.trim() },
          signal,
        }),
      render: (items) => this.render(items.map((item) => normaliseJob(item))),
    });
    // Another status or metadata pair starts again from its first page.
    this.status.addEventListener("change", () => this.load(0));
    this.metadata.addEventListener("change", () => this.load(0));
    byId("jobs-refresh").addEventListener("click", () => this.load());
  }

  /** Back to an empty first page of all jobs (after sign-out). */
  reset() {
    this.pager.reset();
    this.status.value = "";
    this.metadata.value = "";
    this.body.replaceChildren();
  }

  /** The page from `offset`; by default the one on show, refreshed. */
  load(offset) {
    return this.pager.load(offset);
  }

  render(jobs) {
    const status = this.status.value;
    let emptyText = "No jobs yet. Drop several images or a video on the Detect tab.";
    if (this.metadata.value.trim()) emptyText = "No jobs match these filters.";
    else if (status) emptyText = `No ${STATUS_NAMES[status].toLowerCase()} jobs.`;
    showRows(this.body, jobs.map((job) => this.row(job)), COLUMNS, emptyText);
  }

  row(job) {
    const unit = job.kind === "video" ? "frame" : "image";
    const failed = job.failed ? `, ${job.failed} failed` : "";
    // A processing job's estimated finish, as the server gave it when the page was read.
    const left = timeLeftText(job.estimatedCompletionAt);
    const shortId = String(job.jobId).slice(0, 8);
    const pairs = formatPairs(job.metadata);
    return el(
      "tr",
      { "data-testid": "job-row", "data-job-id": job.jobId, "data-status": job.status, "data-kind": job.kind },
      el(
        "td",
        { "data-label": "Job" },
        el("a", { href: `#/jobs/${job.jobId}`, "aria-label": `Open job ${job.jobId}` }, el("code", {}, shortId)),
      ),
      el(
        "td",
        { "data-label": "Kind", className: "wrap" },
        job.kind === "video" ? `Video${job.video?.filename ? `: ${job.video.filename}` : ""}` : "Batch",
        ...(pairs ? [el("div", { className: "history-tags", "data-testid": "job-row-metadata" }, pairs)] : []),
      ),
      el(
        "td",
        { "data-label": "Model", className: "wrap" },
        job.model ?? "—",
        // A job that ran another's images or video again (ADR 0058): which one, linked.
        ...(job.rerunOf
          ? [
              el(
                "div",
                { className: "history-tags", "data-testid": "job-row-rerun-of" },
                "ran again from ",
                el("a", { href: `#/jobs/${job.rerunOf}` }, el("code", {}, String(job.rerunOf).slice(0, 8))),
              ),
            ]
          : []),
      ),
      el("td", { "data-label": "Status" }, STATUS_NAMES[job.status] ?? job.status),
      el("td", { "data-label": "Progress" }, `${job.processed} of ${plural(job.total, unit)}${failed}${left ? `, ${left} left` : ""}`),
      el("td", { "data-label": "Created" }, formatDate(job.createdAt)),
    );
  }
}
