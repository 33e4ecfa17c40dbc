// API keys: create (the secret is shown once), list and revoke.

import { CredentialsView, removeButton } from "./credentials.js";
import { byId, el, formatDate } from "./dom.js";

export class KeysView extends CredentialsView {
  constructor() {
    super({
      url: "api/v1/users/me/api-keys",
      form: "key-form",
      body: "keys-body",
      secretSlot: "key-secret",
      columns: 5,
      emptyText: "No API keys yet.",
    });
  }

  creation() {
    return { name: byId("key-name").value.trim() };
  }

  introduceSecret(created) {
    return {
      title: `API key “${created.name}” created`,
      explanation: "Copy this key now: it is shown only once. Send it in the X-API-Key header.",
      onDone: () => byId("key-name").focus(),
    };
  }

  revoke(key) {
    return this.remove(key, {
      question: `Revoke the API key “${key.name}”? Programs using it stop working.`,
      done: `API key “${key.name}” revoked.`,
    });
  }

  row(key) {
    return el(
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
          : removeButton("Revoke", `Revoke ${key.name}`, () => this.revoke(key)),
      ),
    );
  }
}
