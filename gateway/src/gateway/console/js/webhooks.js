// Webhooks: register a URL for job events (the signing secret is shown once), list, delete.

import { CredentialsView, removeButton } from "./credentials.js";
import { byId, el, formatDate } from "./dom.js";

export class WebhooksView extends CredentialsView {
  constructor() {
    super({
      url: "api/v1/webhooks",
      form: "webhook-form",
      body: "webhooks-body",
      secretSlot: "webhook-secret",
      columns: 4,
      emptyText: "No webhooks yet.",
    });
  }

  creation() {
    const url = byId("webhook-url").value.trim();
    const events = [...this.form.querySelectorAll("input[name=events]:checked")].map((box) => box.value);
    return { url, events };
  }

  introduceSecret() {
    return {
      title: "Webhook registered",
      explanation:
        "Copy the signing secret now: it is shown only once. Each delivery carries " +
        "X-ObjectVision-Signature: v1=HMAC-SHA256(secret, \"<timestamp>.<body>\").",
      onDone: () => byId("webhook-url").focus(),
    };
  }

  row(hook) {
    const remove = () =>
      this.remove(hook, { question: `Delete the webhook for ${hook.url}?`, done: "Webhook deleted." });
    return el(
      "tr",
      { "data-testid": "webhook-row", "data-url": hook.url },
      el("td", { className: "wrap" }, hook.url),
      el("td", {}, hook.events.length ? hook.events.join(", ") : "All job events"),
      el("td", {}, formatDate(hook.created_at)),
      el("td", {}, removeButton("Delete", `Delete webhook ${hook.url}`, remove)),
    );
  }
}
