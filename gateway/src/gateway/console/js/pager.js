// Previous/next paging of a list the API serves a page at a time (`limit`, `offset`, and the
// `total` that match): the history and the jobs. The latest load wins: one still under way
// is aborted, and its `signal` tells the view's own follow-up requests (thumbnails) to stop.

import { byId, guarded } from "./dom.js";

export class Pager {
  /**
   * `previous`, `next`, `range`: the ids of the buttons and of the "1–12 of 30" text;
   * `fetchPage({limit, offset}, signal)` answers `{items, offset, total}`;
   * `render(items, signal)` shows one page's items.
   */
  constructor({ previous, next, range, size, fetchPage, render }) {
    this.previous = byId(previous);
    this.next = byId(next);
    this.range = byId(range);
    this.size = size;
    this.fetchPage = fetchPage;
    this.render = render;
    this.offset = 0;
    this.total = 0;
    this.loading = null;
    this.previous.addEventListener("click", () => this.load(Math.max(0, this.offset - size)));
    this.next.addEventListener("click", () => this.load(this.offset + size));
  }

  /** Show the page from `offset` (by default the page on show, refreshed). */
  async load(offset = this.offset) {
    this.loading?.abort();
    const controller = new AbortController();
    this.loading = controller;
    await guarded(async () => {
      const page = await this.fetchPage({ limit: this.size, offset }, controller.signal);
      if (controller.signal.aborted) return;
      this.offset = page.offset ?? offset;
      this.total = page.total ?? page.items.length;
      this.render(page.items, controller.signal);
      const first = page.items.length ? this.offset + 1 : 0;
      this.range.textContent = `${first}–${this.offset + page.items.length} of ${this.total}`;
      this.previous.disabled = this.offset === 0;
      this.next.disabled = this.offset + page.items.length >= this.total;
    });
  }

  /** Back to an empty first page (after sign-out). */
  reset() {
    this.loading?.abort();
    this.range.textContent = "";
    this.offset = 0;
    this.total = 0;
  }
}
