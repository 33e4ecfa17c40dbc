// Webhooks: register a URL for job events (the signing secret is shown once), list, delete;
// disable and enable one, or send it a test event (ADR 0046); each webhook's recent
// deliveries, and Redeliver on a delivered or dead-lettered one.

import { request } from "./api.js";
import { CredentialsView, removeButton } from "./credentials.js";
import { byId, el, formatDate, guarded, showStatus } from "./dom.js";

// The newest deliveries shown under a webhook (the API's default page).
const DELIVERIES_SHOWN = 20;
const STATE_NAMES = { pending: "Pending", delivered: "Delivered", dead: "Dead-lettered" };
// Why a webhook is disabled, as its `disabled_reason` says.
const DISABLED_BECAUSE = {
  owner: "Disabled by you",
  failing: "Disabled: its deliveries kept failing",
};
// How long, and how often, the console looks for a test event's outcome after sending it.
const TEST_EVENT_FOLLOW_MS = 30_000;
const TEST_EVENT_POLL_MS = 1_000;

function failuresText(count) {
  return `${count} ${count === 1 ? "delivery" : "deliveries"} failed in a row`;
}

/** Whether events go to the webhook and, if not, why and since when; failures in a row. */
function stateCell(hook) {
  const state = hook.enabled
    ? el("span", {}, "Enabled")
    : el(
        "span",
        { className: "state-off" },
        DISABLED_BECAUSE[hook.disabled_reason] ?? "Disabled",
        hook.disabled_at ? el("span", { className: "hint" }, ` since ${formatDate(hook.disabled_at)}`) : null,
      );
  const failures = hook.consecutive_failures > 0 ? el("span", { className: "hint" }, failuresText(hook.consecutive_failures)) : null;
  return el("td", { "data-label": "State", "data-testid": "webhook-state" }, state, failures ? el("br") : null, failures);
}

function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

export class WebhooksView extends CredentialsView {
  constructor() {
    super({
      url: "api/v1/webhooks",
      form: "webhook-form",
      body: "webhooks-body",
      secretSlot: "webhook-secret",
      columns: 6,
      emptyText: "No webhooks yet.",
    });
    // Each webhook as last answered by the API, by id: a list of deliveries drawn later (a
    // test event's, once answered) offers Redeliver only while its webhook is enabled.
    this.latest = new Map();
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
    this.latest.set(hook.id, hook);
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
      {
        "data-testid": "webhook-row",
        "data-url": hook.url,
        dataset: { id: hook.id, enabled: String(hook.enabled), disabledReason: hook.disabled_reason ?? "" },
      },
      el("td", { className: "wrap" }, hook.url),
      el("td", {}, hook.events.length ? hook.events.join(", ") : "All job events"),
      stateCell(hook),
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
            "aria-label": `Send test event to webhook ${hook.url}`,
            onclick: (event) => this.sendTestEvent(hook, event.currentTarget),
          },
          "Send test event",
        ),
        el(
          "button",
          {
            type: "button",
            className: "secondary",
            "aria-label": `${hook.enabled ? "Disable" : "Enable"} webhook ${hook.url}`,
            "data-testid": "webhook-switch",
            onclick: (event) => this.setEnabled(hook, !hook.enabled, event.currentTarget),
          },
          hook.enabled ? "Disable" : "Enable",
        ),
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

  /** The table row of the webhook with this id, if it is still listed. */
  rowOf(id) {
    return [...this.body.querySelectorAll('[data-testid="webhook-row"]')].find((row) => row.dataset.id === id) ?? null;
  }

  /** Put `hook` as the API answered it in place of its row; a list of its deliveries that is
   * open below stays open. */
  async replaceRow(hook) {
    const old = this.rowOf(hook.id);
    if (!old) return null;
    const fresh = this.row(hook);
    old.replaceWith(fresh);
    const open = fresh.nextElementSibling;
    if (open?.dataset.deliveriesOf === hook.id) {
      fresh.querySelector("button[aria-expanded]").setAttribute("aria-expanded", "true");
      // Redeliver is offered only while the webhook is enabled.
      await this.loadDeliveries(hook, open.firstElementChild);
    }
    return fresh;
  }

  /** Disable the webhook (nothing is sent; its events are kept as dead-lettered deliveries)
   * or enable it again (ADR 0046). */
  async setEnabled(hook, enabled, button) {
    const updated = await guarded(
      () => request(`${this.url}/${encodeURIComponent(hook.id)}`, { method: "PATCH", json: { enabled } }),
      button,
    );
    if (!updated) return;
    const row = await this.replaceRow(updated);
    // The button that undoes it takes the focus, so the keyboard stays where it was.
    row?.querySelector('[data-testid="webhook-switch"]')?.focus();
    showStatus(
      enabled
        ? `Webhook enabled: events go to ${updated.url} again. Redeliver what it missed from its dead-lettered deliveries.`
        : `Webhook disabled: nothing is sent to ${updated.url} until you enable it again; its events are kept as dead-lettered deliveries.`,
    );
  }

  /** Send the webhook a signed `webhook.ping` (enabled or not), show its delivery below the
   * webhook, and say how it went once the receiver has answered. */
  async sendTestEvent(hook, button) {
    const queued = await guarded(
      () => request(`${this.url}/${encodeURIComponent(hook.id)}/ping`, { method: "POST" }),
      button,
    );
    if (!queued) return;
    showStatus(`Test event sent to ${hook.url}: its delivery is listed below the webhook.`);
    const cell = await this.showDeliveries(hook);
    if (cell) await this.followTestEvent(hook, cell, queued);
  }

  /** Open the webhook's deliveries, or load them again where they are open; their cell. */
  async showDeliveries(hook) {
    const row = this.rowOf(hook.id);
    if (!row) return null;
    const open = row.nextElementSibling?.dataset.deliveriesOf === hook.id ? row.nextElementSibling : null;
    if (open) {
      await this.loadDeliveries(hook, open.firstElementChild);
    } else {
      await this.toggleDeliveries(hook, row, row.querySelector("button[aria-expanded]"));
    }
    return row.nextElementSibling?.firstElementChild ?? null;
  }

  /** Wait (a while) for the receiver to answer the test event, then list the deliveries
   * again and say what it answered. Stops quietly when the list is closed or a look fails. */
  async followTestEvent(hook, cell, queued) {
    const url = `${this.url}/${encodeURIComponent(hook.id)}/deliveries`;
    const until = Date.now() + TEST_EVENT_FOLLOW_MS;
    while (Date.now() < until) {
      await sleep(TEST_EVENT_POLL_MS);
      if (!cell.isConnected) return;
      let page;
      try {
        page = await request(url, { query: { limit: DELIVERIES_SHOWN } });
      } catch {
        return;
      }
      const delivery = page.items.find((item) => item.id === queued.id);
      if (!delivery || delivery.state === "pending") continue;
      if (!cell.isConnected) return;
      await this.loadDeliveries(hook, cell);
      const answer = delivery.last_status_code ? `HTTP ${delivery.last_status_code}` : null;
      showStatus(
        delivery.state === "delivered"
          ? `The test event reached ${hook.url}${answer ? `: ${answer}` : ""}.`
          : `The test event did not reach ${hook.url}: ${delivery.last_error || answer || "no answer"}.`,
      );
      return;
    }
    if (cell.isConnected) {
      await this.loadDeliveries(hook, cell);
      showStatus(`No answer from ${hook.url} yet: the test event is retried for a while; its delivery shows how it goes.`);
    }
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

  async loadDeliveries(listed, cell) {
    const hook = this.latest.get(listed.id) ?? listed;
    const url = `api/v1/webhooks/${encodeURIComponent(hook.id)}/deliveries`;
    const page = await guarded(() => request(url, { query: { limit: DELIVERIES_SHOWN } }));
    if (!page) return;
    if (page.items.length === 0) {
      cell.replaceChildren(el("p", { className: "empty" }, "No deliveries yet."));
      return;
    }
    const rows = page.items.map((delivery) => this.deliveryRow(hook, delivery, cell));
    cell.replaceChildren(
      ...(hook.enabled ? [] : [el("p", { className: "hint", "data-testid": "deliveries-hint" }, "The webhook is disabled: enable it to redeliver these.")]),
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
        delivery.state === "pending" || !hook.enabled
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
