// The caller's past detections, a page at a time, with annotated thumbnails. Image routes
// need the Authorization header, which an <img src> cannot send, so each thumbnail is
// fetched and shown from a blob: URL that is released when the page changes.

import { request } from "./api.js";
import { byId, el, formatDate, guarded, plural } from "./dom.js";
import { exportButtons } from "./exports.js";

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
  };
}

export class HistoryView {
  constructor({ onOpen }) {
    this.list = byId("history-list");
    this.range = byId("history-range");
    this.previous = byId("history-previous");
    this.next = byId("history-next");
    this.offset = 0;
    this.total = 0;
    this.objectUrls = [];
    this.onOpen = onOpen;
    this.loading = null;
    this.previous.addEventListener("click", () => this.load(Math.max(0, this.offset - PAGE_SIZE)));
    this.next.addEventListener("click", () => this.load(this.offset + PAGE_SIZE));
    byId("history-refresh").addEventListener("click", () => this.load(this.offset));
    byId("history-exports").replaceChildren(...exportButtons("api/v1/detect/history/export", "your history"));
  }

  /** Back to an empty first page (after sign-out). */
  reset() {
    this.loading?.abort();
    this.releaseThumbnails();
    this.list.replaceChildren();
    this.range.textContent = "";
    this.offset = 0;
    this.total = 0;
  }

  releaseThumbnails() {
    this.objectUrls.forEach((url) => URL.revokeObjectURL(url));
    this.objectUrls = [];
  }

  async load(offset = 0) {
    this.loading?.abort();
    const controller = new AbortController();
    this.loading = controller;
    await guarded(async () => {
      const page = await request("api/v1/detect/history", {
        query: { limit: PAGE_SIZE, offset },
        signal: controller.signal,
      });
      if (controller.signal.aborted) return;
      this.offset = page.offset ?? offset;
      this.total = page.total ?? page.items.length;
      this.render(page.items.map(summary), controller.signal);
    });
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
      this.list.append(el("li", { className: "empty" }, "No detections yet. Upload an image on the Detect tab."));
    }
    const first = items.length ? this.offset + 1 : 0;
    this.range.textContent = `${first}–${this.offset + items.length} of ${this.total}`;
    this.previous.disabled = this.offset === 0;
    this.next.disabled = this.offset + items.length >= this.total;
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
