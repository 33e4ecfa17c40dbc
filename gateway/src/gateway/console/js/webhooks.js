// Webhooks: register a URL for job events (the signing secret is shown once), list, delete.

import { request } from "./api.js";
import { byId, el, formatDate, guarded, secretPanel, showStatus } from "./dom.js";

const WEBHOOKS = "api/v1/webhooks";

export class WebhooksView {
  constructor() {
    this.form = byId("webhook-form");
    this.body = byId("webhooks-body");
    this.secretSlot = byId("webhook-secret");
    this.form.addEventListener("submit", (event) => {
      event.preventDefault();
      this.create();
    });
  }

  async create() {
    const url = byId("webhook-url").value.trim();
    const events = [...this.form.querySelectorAll("input[name=events]:checked")].map((box) => box.value);
    const button = this.form.querySelector("button[type=submit]");
    const created = await guarded(
      () => request(WEBHOOKS, { method: "POST", json: { url, events } }),
      button,
    );
    if (!created) return;
    this.form.reset();
    const panel = secretPanel({
      title: "Webhook registered",
      explanation:
        "Copy the signing secret now: it is shown only once. Each delivery carries " +
        "X-ObjectVision-Signature: v1=HMAC-SHA256(secret, \"<timestamp>.<body>\").",
      secret: created.secret,
      onDone: () => byId("webhook-url").focus(),
    });
    this.secretSlot.replaceChildren(panel);
    panel.focus();
    await this.load();
  }

  async remove(hook) {
    if (!window.confirm(`Delete the webhook for ${hook.url}?`)) return;
    const done = await guarded(async () => {
      await request(`${WEBHOOKS}/${encodeURIComponent(hook.id)}`, { method: "DELETE", as: "none" });
      return true;
    });
    if (done) {
      showStatus("Webhook deleted.");
      await this.load();
    }
  }

  async load() {
    await guarded(async () => {
      const { items } = await request(WEBHOOKS);
      this.render(items);
    });
  }

  render(hooks) {
    this.body.replaceChildren(
      ...hooks.map((hook) =>
        el(
          "tr",
          { "data-testid": "webhook-row", "data-url": hook.url },
          el("td", { className: "wrap" }, hook.url),
          el("td", {}, hook.events.length ? hook.events.join(", ") : "All job events"),
          el("td", {}, formatDate(hook.created_at)),
          el(
            "td",
            {},
            el(
              "button",
              {
                type: "button",
                className: "danger",
                "aria-label": `Delete webhook ${hook.url}`,
                onclick: () => this.remove(hook),
              },
              "Delete",
            ),
          ),
        ),
      ),
    );
    if (hooks.length === 0) {
      this.body.append(el("tr", {}, el("td", { colspan: 4, className: "empty" }, "No webhooks yet.")));
    }
  }
}
