// Webhooks: register a URL for job events (the signing secret is shown once), list, delete;
// edit one's URL and events in its row; disable and enable one, or send it a test event
// (ADR 0046); each webhook's recent deliveries, and Redeliver on a delivered or dead-lettered
// one.
//
// Editing events: exactly the ticked ones are sent. None ticked is refused in the page: the
// empty list it would send means every job event to the API, not none. A webhook whose list
// is empty (every job event) opens with all four ticked.

import { request } from "./api.js";
import { CredentialsView, removeButton } from "./credentials.js";
import { byId, clearError, el, formatDate, guarded, showError, showStatus } from "./dom.js";
import { describeError } from "./messages.js";

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
// The job events a webhook can ask for (the API's JobEventType); none asked for means all.
const JOB_EVENTS = ["job.progress", "job.completed", "job.failed", "job.cancelled"];
// Answers to an edit that the form itself shows: another webhook has the URL, or the URL
// (or the events) are refused.
const SHOWN_IN_FORM = new Set([409, 422]);

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

/** The events a list stands for: the empty list is every job event. */
function eventsMeant(events) {
  return new Set(events.length ? events : JOB_EVENTS);
}

function sameEvents(one, other) {
  const [a, b] = [eventsMeant(one), eventsMeant(other)];
  return a.size === b.size && [...a].every((event) => b.has(event));
}

function eventsText(events) {
  return events.length ? events.join(", ") : "every job event";
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
        "data-testid": "deliveries-toggle",
        onclick: () => this.toggleDeliveries(hook, row, toggle),
      },
      "Deliveries",
    );
    const row = el(
      "tr",
      {
        "data-testid": "webhook-row",
        "data-url": hook.url,
        dataset: {
          id: hook.id,
          enabled: String(hook.enabled),
          disabledReason: hook.disabled_reason ?? "",
          events: hook.events.join(" "),
        },
      },
      el("td", { className: "wrap" }, hook.url),
      el("td", { "data-testid": "webhook-events" }, hook.events.length ? hook.events.join(", ") : "All job events"),
      stateCell(hook),
      el("td", {}, formatDate(hook.created_at)),
      // A webhook made with an API key goes when that key is revoked or expires.
      el("td", { "data-label": "Made with" }, hook.api_key_id ? `API key ${hook.api_key_id.slice(0, 8)}…` : "This console"),
      el(
        "td",
        { className: "row-actions" },
        el(
          "button",
          {
            type: "button",
            className: "secondary",
            "aria-label": `Edit webhook ${hook.url}`,
            "data-testid": "webhook-edit",
            onclick: () => this.openEditor(hook, row),
          },
          "Edit",
        ),
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
      fresh.querySelector('[data-testid="deliveries-toggle"]').setAttribute("aria-expanded", "true");
      // Redeliver is offered only while the webhook is enabled.
      await this.loadDeliveries(hook, open.firstElementChild);
    }
    return fresh;
  }

  /** Show a form in place of the webhook's cells that changes its URL and events; Cancel
   * (or Escape) puts the cells back as they were. */
  openEditor(hook, row) {
    const cells = [...row.children];
    const field = `webhook-edit-url-${hook.id}`;
    const url = el("input", { id: field, name: "url", type: "url", required: true, "aria-describedby": `${field}-error` });
    url.value = hook.url;
    const meant = eventsMeant(hook.events);
    const boxes = JOB_EVENTS.map((event) => {
      const box = el("input", { type: "checkbox", name: "events", value: event });
      box.checked = meant.has(event);
      return box;
    });
    const problem = el("p", {
      id: `${field}-error`,
      className: "error-text",
      role: "alert",
      "data-testid": "webhook-edit-error",
      hidden: true,
    });
    const save = el("button", { type: "submit" }, "Save");
    const close = () => {
      if (!form.isConnected) return;
      row.replaceChildren(...cells);
      // Its deliveries may have been opened meanwhile (a test event sent just before).
      const open = row.nextElementSibling?.dataset.deliveriesOf === hook.id;
      row.querySelector('[data-testid="deliveries-toggle"]')?.setAttribute("aria-expanded", String(open));
      row.querySelector('[data-testid="webhook-edit"]')?.focus();
    };
    const form = el(
      "form",
      {
        className: "webhook-edit",
        "data-testid": "webhook-edit-form",
        "aria-label": `Edit webhook ${hook.url}`,
        onsubmit: (event) => {
          event.preventDefault();
          this.saveEdit(hook, { url, boxes, problem, save, close });
        },
        onkeydown: (event) => {
          if (event.key === "Escape") close();
        },
      },
      el("label", { for: field }, "URL"),
      url,
      el(
        "fieldset",
        {},
        el("legend", {}, "Events"),
        ...boxes.map((box) => el("label", { className: "check" }, box, ` ${box.value}`)),
      ),
      problem,
      el(
        "div",
        { className: "row-actions" },
        save,
        el("button", { type: "button", className: "secondary", onclick: () => close() }, "Cancel"),
      ),
    );
    row.replaceChildren(el("td", { colspan: this.columns }, form));
    url.focus();
  }

  /** Send what the editor changed (nothing changed: it just closes); the webhook's row as
   * answered replaces it. A refused URL or events, or a URL another webhook has, is said in
   * the form, which stays open. */
  async saveEdit(hook, { url, boxes, problem, save, close }) {
    const say = (text) => {
      problem.textContent = text;
      problem.hidden = !text;
    };
    say("");
    const ticked = boxes.filter((box) => box.checked).map((box) => box.value);
    if (ticked.length === 0) {
      say("Tick at least one event. To get every job event, tick all four.");
      boxes[0].focus();
      return;
    }
    const changes = {};
    const newUrl = url.value.trim();
    if (newUrl !== hook.url) changes.url = newUrl;
    if (!sameEvents(ticked, hook.events)) changes.events = ticked;
    if (Object.keys(changes).length === 0) {
      close();
      return;
    }
    clearError();
    save.disabled = true;
    let updated;
    try {
      updated = await request(`${this.url}/${encodeURIComponent(hook.id)}`, { method: "PATCH", json: changes });
    } catch (error) {
      if (SHOWN_IN_FORM.has(error?.status)) {
        say(describeError(error));
        (changes.url !== undefined ? url : boxes[0]).focus();
      } else if (error?.name !== "AbortError") {
        showError(error);
      }
      return;
    } finally {
      save.disabled = false;
    }
    const row = await this.replaceRow(updated);
    row?.querySelector('[data-testid="webhook-edit"]')?.focus();
    showStatus(`Webhook saved: ${updated.url} gets ${eventsText(updated.events)}.`);
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
      await this.toggleDeliveries(hook, row, row.querySelector('[data-testid="deliveries-toggle"]'));
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
      toggle?.setAttribute("aria-expanded", "false");
      return;
    }
    const cell = el("td", { colspan: this.columns });
    row.after(el("tr", { "data-testid": "webhook-deliveries", dataset: { deliveriesOf: hook.id } }, cell));
    toggle?.setAttribute("aria-expanded", "true");
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
