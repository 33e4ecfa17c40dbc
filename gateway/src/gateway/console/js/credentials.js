// What the API keys and webhooks views share: the caller's credentials in a table, a form
// that creates one and shows its secret once, and a button on each row that takes one away.
// A view extends CredentialsView with only what is its own: `creation()`, the JSON the form
// sends; `introduceSecret(created)`, the new secret's `{ title, explanation, onDone }` for
// secretPanel; and `row(item)`, one credential's table row.

import { request } from "./api.js";
import { byId, el, guarded, onSubmit, secretPanel, showRows, showStatus, submitting } from "./dom.js";

export class CredentialsView {
  /**
   * `url`: the collection's API path; `form`, `body`, `secretSlot`: the ids of the creation
   * form, the table body and where a new secret is shown; `columns` and `emptyText`: the
   * table's width and what it says when there is nothing in it.
   */
  constructor({ url, form, body, secretSlot, columns, emptyText }) {
    this.url = url;
    this.form = byId(form);
    this.body = byId(body);
    this.secretSlot = byId(secretSlot);
    this.columns = columns;
    this.emptyText = emptyText;
    this.shownSecretId = null;
    onSubmit(this.form, () => this.create());
  }

  async create() {
    const json = this.creation();
    const created = await submitting(this.form, () => request(this.url, { method: "POST", json }));
    if (!created) return;
    this.form.reset();
    await this.showSecret(created, this.introduceSecret(created));
  }

  /** Show `issued.secret` once, as `introduction` explains it, and list the items again. */
  async showSecret(issued, introduction) {
    const panel = secretPanel({ ...introduction, secret: issued.secret });
    this.secretSlot.replaceChildren(panel);
    this.shownSecretId = issued.id;
    panel.focus();
    await this.load();
  }

  /** Take `item` away once `question` is confirmed, then say `done`. */
  async remove(item, { question, done }) {
    if (!window.confirm(question)) return;
    const removed = await guarded(async () => {
      await request(`${this.url}/${encodeURIComponent(item.id)}`, { method: "DELETE", as: "none" });
      return true;
    });
    if (!removed) return;
    // A secret whose credential is gone is worthless and must not stay on screen to be copied.
    if (this.shownSecretId === item.id) {
      this.secretSlot.replaceChildren();
      this.shownSecretId = null;
    }
    showStatus(done);
    await this.load();
  }

  async load() {
    await guarded(async () => {
      const { items } = await request(this.url);
      this.render(items);
    });
  }

  render(items) {
    showRows(this.body, items.map((item) => this.row(item)), this.columns, this.emptyText);
  }
}

/** The button that takes a row's credential away; `name` is what a screen reader hears. */
export function removeButton(label, name, onclick) {
  return el("button", { type: "button", className: "danger", "aria-label": name, onclick }, label);
}
