// The caller's past detections, a page at a time, with annotated thumbnails. Image routes
// need the Authorization header, which an <img src> cannot send, so each thumbnail is
// fetched and shown from a blob: URL that is released when the page changes.

import { request } from "./api.js";
import { byId, el, formatDate, guarded, onSubmit, plural, showStatus, submitting } from "./dom.js";
import { exportButtons } from "./exports.js";
import { formatPairs } from "./metadata.js";
import { ModelPicker } from "./models.js";
import { Pager } from "./pager.js";

export const PAGE_SIZE = 12;

function summary(item) {
  const result = item.result ?? item;
  const detections = result.detections ?? result.objects ?? [];
  const count = item.object_count ?? result.object_count ?? detections.length;
  const classes = new Map();
  for (const detection of detections) {
    const name = detection.class ?? detection.class_name ?? "object";
    classes.set(name, (classes.get(name) ?? 0) + 1);
  }
  const top = [...classes.entries()].sort((a, b) => b[1] - a[1]).slice(0, 3);
  return {
    id: item.detection_id ?? item.id,
    filename: item.filename ?? result.filename ?? result.image?.filename ?? "image",
    createdAt: item.created_at ?? null,
    status: String(item.status ?? "completed").toLowerCase(),
    count,
    classes: top.map(([name, n]) => `${name} ×${n}`).join(", "),
    // The caller's own pairs (ADR 0045): the image's, or its job's.
    metadata: formatPairs(item.metadata),
  };
}

/** `12 detections · 40 objects: person 30, bus 10`, as GET /detect/history/summary counts. */
function summaryText({ detections = 0, objects = 0, class_counts: classes = {} }) {
  const counted = Object.entries(classes)
    .map(([name, count]) => `${name} ${count}`)
    .join(", ");
  const line = `${plural(detections, "detection")} · ${plural(objects, "object")}`;
  return counted ? `${line}: ${counted}` : line;
}

/** The filter form's fields that are filled in, as the history's query parameters. */
function filledIn(form) {
  const filters = {};
  for (const [name, value] of new FormData(form)) {
    const text = String(value).trim();
    if (text) filters[name] = text;
  }
  return filters;
}

export class HistoryView {
  /** `onOpen(id, filename)`: show a detection; `onJob(job)`: follow a job the view made. */
  constructor({ onOpen, onJob }) {
    this.list = byId("history-list");
    this.form = byId("history-filters");
    this.summary = byId("history-summary");
    // Which summary was asked for last: an earlier one that answers late is not shown.
    this.summaryAsked = 0;
    this.objectUrls = [];
    this.onOpen = onOpen;
    // The filters applied: the list and the export buttons both follow them.
    this.filters = {};
    this.pager = new Pager({
      previous: "history-previous",
      next: "history-next",
      range: "history-range",
      size: PAGE_SIZE,
      fetchPage: (query, signal) =>
        request("api/v1/detect/history", { query: { ...query, ...this.filters }, signal }),
      render: (items, signal) => this.render(items.map(summary), signal),
    });
    byId("history-refresh").addEventListener("click", () => this.load());
    this.form.addEventListener("submit", (event) => {
      event.preventDefault();
      submitting(this.form, () => this.filter(filledIn(this.form)));
    });
    byId("history-clear").addEventListener("click", () => {
      this.form.reset();
      this.filter({});
    });
    // "Run these images again with" a model (ADR 0058): one job over what the filters keep.
    this.rerunForm = byId("history-rerun");
    this.rerunModels = new ModelPicker(byId("history-rerun-model"));
    onSubmit(this.rerunForm, async () => {
      const model = this.rerunModels.value();
      const job = await submitting(this.rerunForm, () =>
        request("api/v1/detect/history/rerun", {
          method: "POST",
          query: { ...this.filters },
          json: model ? { model } : {},
        }),
      );
      if (job) onJob(job);
    });
    this.renderExports();
  }

  /** Show the first page of the detections these filters keep, and export those. */
  filter(filters) {
    this.filters = filters;
    this.renderExports();
    return this.load(0);
  }

  /** The export buttons, which follow the filters, and the one that deletes what they keep. */
  renderExports() {
    const filtered = Object.keys(this.filters).length > 0;
    const what = filtered ? "the filtered history" : "your history";
    byId("history-exports").replaceChildren(
      ...exportButtons("api/v1/detect/history/export", what, this.filters),
      el(
        "button",
        {
          type: "button",
          className: "danger",
          "data-testid": "history-delete",
          "aria-label": "Delete the detections shown by these filters",
          // Never the whole history: with no filter applied there is nothing to offer.
          disabled: !filtered,
          title: filtered ? null : "Filter the history first: only what a filter keeps can be deleted here.",
          onclick: (event) => this.deleteFiltered(event.currentTarget),
        },
        "Delete these",
      ),
    );
  }

  /**
   * Delete every detection the applied filters keep, once a question with their count (as the
   * summary counts them now) is confirmed: a call at a time while the API says there are more.
   * Detections of jobs still running are kept, and the status line says so.
   */
  async deleteFiltered(button) {
    const filters = { ...this.filters };
    if (Object.keys(filters).length === 0) return;
    const counted = await guarded(
      () => request("api/v1/detect/history/summary", { query: filters }),
      button,
    );
    if (!counted) return;
    if (!counted.detections) {
      showStatus("No detections match these filters: nothing to delete.");
      return;
    }
    const count = counted.detections;
    const images = count === 1 ? "its image" : "their images";
    const question = `Delete ${plural(count, "detection")} matching these filters, with ${images}? This cannot be undone.`;
    if (!window.confirm(question)) return;
    let deleted = 0;
    let kept = 0;
    const finished = await guarded(async () => {
      let answer;
      do {
        answer = await request("api/v1/detect/history", { method: "DELETE", query: filters });
        deleted += answer.deleted;
        kept = answer.kept_in_unfinished_jobs;
      } while (answer.more && answer.deleted > 0);
      return true;
    }, button);
    // Even after a failure part-way, the list shows what is left.
    this.load(0);
    if (!finished) return;
    const keptNote =
      kept === 1
        ? " 1 was kept: its job is still pending or processing."
        : kept
          ? ` ${kept} were kept: their jobs are still pending or processing.`
          : "";
    showStatus(`Deleted ${plural(deleted, "detection")}.${keptNote}`);
  }

  /** Back to an empty first page with no filters (after sign-out). */
  reset() {
    this.pager.reset();
    this.releaseThumbnails();
    this.list.replaceChildren();
    this.form.reset();
    this.filters = {};
    this.summaryAsked += 1;
    this.summary.textContent = "";
    this.rerunModels.reset();
    this.renderExports();
  }

  releaseThumbnails() {
    this.objectUrls.forEach((url) => URL.revokeObjectURL(url));
    this.objectUrls = [];
  }

  /** The page from `offset`; by default the one on show, refreshed, with the count line. */
  load(offset) {
    this.rerunModels.load();
    this.refreshSummary();
    return this.pager.load(offset);
  }

  /** The count line above the list, for the filters applied; empty when it cannot be had
   * (the list itself says why). */
  async refreshSummary() {
    const asked = ++this.summaryAsked;
    let text = "";
    try {
      text = summaryText(await request("api/v1/detect/history/summary", { query: this.filters }));
    } catch {
      // Left empty: the list's own request shows what went wrong.
    }
    if (asked === this.summaryAsked) this.summary.textContent = text;
  }

  render(items, signal) {
    this.releaseThumbnails();
    this.list.replaceChildren(
      ...items.map((item) => {
        const thumbnail = el("img", {
          className: "thumbnail",
          alt: `${item.filename} with ${plural(item.count, "detected object")} outlined`,
          "data-testid": "history-thumbnail",
          width: 320,
          height: 240,
        });
        this.loadThumbnail(item.id, thumbnail, signal);
        return el(
          "li",
          { className: "history-item", "data-testid": "history-item", "data-filename": item.filename },
          thumbnail,
          el(
            "div",
            { className: "history-meta" },
            el("h3", {}, item.filename),
            el("p", {}, `${plural(item.count, "object")}${item.classes ? ` · ${item.classes}` : ""}`),
            el("p", { className: "muted" }, formatDate(item.createdAt)),
            ...(item.metadata
              ? [el("p", { className: "history-tags", "data-testid": "history-metadata" }, item.metadata)]
              : []),
            el(
              "button",
              {
                type: "button",
                className: "secondary",
                "aria-label": `Open ${item.filename}`,
                onclick: () => this.onOpen(item.id, item.filename),
              },
              "Open",
            ),
          ),
        );
      }),
    );
    if (items.length === 0) {
      const empty = Object.keys(this.filters).length
        ? "No detections match these filters."
        : "No detections yet. Upload an image on the Detect tab.";
      this.list.append(el("li", { className: "empty" }, empty));
    }
  }

  async loadThumbnail(id, image, signal) {
    try {
      const blob = await request(`api/v1/detect/${encodeURIComponent(id)}/image`, {
        query: { annotated: "true" },
        as: "blob",
        signal,
      });
      if (signal.aborted) return;
      const url = URL.createObjectURL(blob);
      this.objectUrls.push(url);
      image.src = url;
      image.dataset.loaded = "true";
    } catch {
      image.classList.add("thumbnail-missing");
      image.alt = "Thumbnail unavailable";
    }
  }
}
