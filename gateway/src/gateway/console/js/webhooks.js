// Webhooks: register a URL for job events (the signing secret is shown once), list, delete;
// each webhook's recent deliveries, and Redeliver on a delivered or dead-lettered one.

import { request } from "./api.js";
import { CredentialsView, removeButton } from "./credentials.js";
import { byId, el, formatDate, guarded, showStatus } from "./dom.js";

// The newest deliveries shown under a webhook (the API's default page).
const DELIVERIES_SHOWN = 20;
const STATE_NAMES = { pending: "Pending", delivered: "Delivered", dead: "Dead-lettered" };

export class WebhooksView extends CredentialsView {
  constructor() {
    super({
      url: "api/v1/webhooks",
      form: "webhook-form",
      body: "webhooks-body",
      secretSlot: "webhook-secret",
      columns: 5,
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
    const toggle = el(
      "button",
      {
        type: "button",
        className: "secondary",
        "aria-label": `Deliveries of webhook ${hook.url}`,
        "aria-expanded": "false",
        onclick: () => this.toggleDeliveries(hook, row, toggle),
      },
      "Deliveries",
    );
    const row = el(
      "tr",
      { "data-testid": "webhook-row", "data-url": hook.url },
      el("td", { className: "wrap" }, hook.url),
      el("td", {}, hook.events.length ? hook.events.join(", ") : "All job events"),
      el("td", {}, formatDate(hook.created_at)),
      // A webhook made with an API key goes when that key is revoked or expires.
      el("td", { "data-label": "Made with" }, hook.api_key_id ? `API key ${hook.api_key_id.slice(0, 8)}…` : "This console"),
      el(
        "td",
        { className: "row-actions" },
        toggle,
        el(
          "button",
          {
            type: "button",
            className: "secondary",
            "aria-label": `New signing secret for webhook ${hook.url}`,
            onclick: (event) => this.rotateSecret(hook, event.currentTarget),
          },
          "New secret",
        ),
        removeButton("Delete", `Delete webhook ${hook.url}`, remove),
      ),
    );
    return row;
  }

  /** A new signing secret (ADR 0036), shown once; the old one keeps signing for a day, so
   * the receiver can move to the new one without missing a delivery. */
  async rotateSecret(hook, button) {
    const question =
      `Make a new signing secret for ${hook.url}? For the next 24 hours deliveries are signed ` +
      "with both the new and the current secret; after that only with the new one.";
    if (!window.confirm(question)) return;
    const rotated = await guarded(
      () =>
        request(`${this.url}/${encodeURIComponent(hook.id)}/rotate-secret`, {
          method: "POST",
          json: { keep_previous_seconds: 86400 },
        }),
      button,
    );
    if (!rotated) return;
    await this.showSecret(rotated, {
      title: "New signing secret",
      explanation:
        "Copy it now: it is shown only once. Until " +
        `${formatDate(rotated.previous_secret_expires_at)} each delivery carries two ` +
        "X-ObjectVision-Signature values, one per secret: accept it if either is yours.",
      onDone: () => button.focus(),
    });
  }

  /** Open (below the webhook's row) or close the list of its newest deliveries. */
  async toggleDeliveries(hook, row, toggle) {
    const open = row.nextElementSibling?.dataset.deliveriesOf === hook.id ? row.nextElementSibling : null;
    if (open) {
      open.remove();
      toggle.setAttribute("aria-expanded", "false");
      return;
    }
    const cell = el("td", { colspan: this.columns });
    row.after(el("tr", { "data-testid": "webhook-deliveries", dataset: { deliveriesOf: hook.id } }, cell));
    toggle.setAttribute("aria-expanded", "true");
    await this.loadDeliveries(hook, cell);
  }

  async loadDeliveries(hook, cell) {
    const url = `api/v1/webhooks/${encodeURIComponent(hook.id)}/deliveries`;
    const page = await guarded(() => request(url, { query: { limit: DELIVERIES_SHOWN } }));
    if (!page) return;
    if (page.items.length === 0) {
      cell.replaceChildren(el("p", { className: "empty" }, "No deliveries yet."));
      return;
    }
    const rows = page.items.map((delivery) => this.deliveryRow(hook, delivery, cell));
    cell.replaceChildren(
      el(
        "table",
        { className: "deliveries" },
        el("caption", { className: "visually-hidden" }, `Deliveries of ${hook.url}`),
        el(
          "thead",
          {},
          el(
            "tr",
            {},
            ...["Created", "Event", "State", "Attempts", "Last answer"].map((name) => el("th", { scope: "col" }, name)),
            el("th", { scope: "col" }, el("span", { className: "visually-hidden" }, "Actions")),
          ),
        ),
        el("tbody", {}, ...rows),
      ),
      ...(page.total > page.items.length ? [el("p", { className: "hint" }, `The ${page.items.length} newest of ${page.total}.`)] : []),
    );
  }

  deliveryRow(hook, delivery, cell) {
    const answer = [delivery.last_status_code ? `HTTP ${delivery.last_status_code}` : null, delivery.last_error]
      .filter(Boolean)
      .join(" · ");
    const next = delivery.state === "pending" && delivery.next_attempt_at ? `next ${formatDate(delivery.next_attempt_at)}` : "";
    const redeliver = async (event) => {
      const url = `api/v1/webhooks/${encodeURIComponent(hook.id)}/deliveries/${encodeURIComponent(delivery.id)}/redeliver`;
      const queued = await guarded(() => request(url, { method: "POST" }), event.currentTarget);
      if (!queued) return;
      showStatus(`The ${delivery.event_type} event is queued for redelivery.`);
      await this.loadDeliveries(hook, cell);
    };
    return el(
      "tr",
      {
        "data-testid": "delivery-row",
        dataset: { id: delivery.id, state: delivery.state, redeliveryOf: delivery.redelivery_of ?? "" },
      },
      el("td", {}, formatDate(delivery.created_at)),
      el("td", {}, delivery.event_type, delivery.redelivery_of ? el("span", { className: "hint" }, " (redelivery)") : null),
      el("td", {}, STATE_NAMES[delivery.state] ?? delivery.state),
      el("td", {}, String(delivery.attempts)),
      el("td", { className: "wrap" }, [answer, next].filter(Boolean).join(" · ") || "—"),
      el(
        "td",
        {},
        delivery.state === "pending"
          ? null
          : el(
              "button",
              {
                type: "button",
                className: "secondary",
                "aria-label": `Redeliver ${delivery.event_type} delivery ${delivery.id}`,
                onclick: redeliver,
              },
              "Redeliver",
            ),
      ),
    );
  }
}
