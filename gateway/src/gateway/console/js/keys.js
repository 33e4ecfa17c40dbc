// API keys: create (the secret is shown once), list and revoke.

import { request } from "./api.js";
import { byId, el, formatDate, guarded, secretPanel, showStatus } from "./dom.js";

const KEYS = "api/v1/users/me/api-keys";

export class KeysView {
  constructor() {
    this.form = byId("key-form");
    this.body = byId("keys-body");
    this.secretSlot = byId("key-secret");
    this.form.addEventListener("submit", (event) => {
      event.preventDefault();
      this.create();
    });
  }

  async create() {
    const name = byId("key-name").value.trim();
    const button = this.form.querySelector("button[type=submit]");
    const created = await guarded(() => request(KEYS, { method: "POST", json: { name } }), button);
    if (!created) return;
    this.form.reset();
    const panel = secretPanel({
      title: `API key “${created.name}” created`,
      explanation: "Copy this key now: it is shown only once. Send it in the X-API-Key header.",
      secret: created.secret,
      onDone: () => byId("key-name").focus(),
    });
    this.secretSlot.replaceChildren(panel);
    this.shownSecretKeyId = created.id;
    panel.focus();
    await this.load();
  }

  async revoke(key) {
    if (!window.confirm(`Revoke the API key “${key.name}”? Programs using it stop working.`)) return;
    const done = await guarded(async () => {
      await request(`${KEYS}/${encodeURIComponent(key.id)}`, { method: "DELETE", as: "none" });
      return true;
    });
    if (done) {
      // A revoked key's secret is worthless and must not stay on screen to be copied.
      if (this.shownSecretKeyId === key.id) {
        this.secretSlot.replaceChildren();
        this.shownSecretKeyId = null;
      }
      showStatus(`API key “${key.name}” revoked.`);
      await this.load();
    }
  }

  async load() {
    await guarded(async () => {
      const { items } = await request(KEYS);
      this.render(items);
    });
  }

  render(keys) {
    this.body.replaceChildren(
      ...keys.map((key) =>
        el(
          "tr",
          { "data-testid": "key-row", "data-name": key.name, "data-revoked": String(Boolean(key.revoked_at)) },
          el("td", { "data-label": "Name" }, key.name),
          el("td", { "data-label": "Prefix" }, el("code", {}, `${key.prefix}…`)),
          el("td", { "data-label": "Created" }, formatDate(key.created_at)),
          el("td", { "data-label": "Last used" }, key.last_used_at ? formatDate(key.last_used_at) : "Never"),
          el(
            "td",
            { "data-label": "Status" },
            key.revoked_at
              ? `Revoked ${formatDate(key.revoked_at)}`
              : el(
                  "button",
                  {
                    type: "button",
                    className: "danger",
                    "aria-label": `Revoke ${key.name}`,
                    onclick: () => this.revoke(key),
                  },
                  "Revoke",
                ),
          ),
        ),
      ),
    );
    if (keys.length === 0) {
      this.body.append(el("tr", {}, el("td", { colspan: 5, className: "empty" }, "No API keys yet.")));
    }
  }
}
