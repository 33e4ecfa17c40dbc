// API keys: create one with its scopes and lifetime (the secret is shown once), list and revoke.
// The scope names are the form's checkboxes: every list and check here reads them from there.

import { CredentialsView, removeButton } from "./credentials.js";
import { byId, el, formatDate } from "./dom.js";

const NO_SCOPE = "Tick at least one thing the key may do.";

export class KeysView extends CredentialsView {
  constructor() {
    super({
      url: "api/v1/users/me/api-keys",
      form: "key-form",
      body: "keys-body",
      secretSlot: "key-secret",
      columns: 7,
      emptyText: "No API keys yet.",
    });
    // A key that may do nothing is refused by the API; say so before sending it.
    this.form.addEventListener("change", () => this.requireAScope());
    this.form.addEventListener("reset", () => this.scopeBoxes()[0].setCustomValidity(""));
  }

  scopeBoxes() {
    return [...this.form.querySelectorAll("input[name=scopes]")];
  }

  requireAScope() {
    const boxes = this.scopeBoxes();
    boxes[0].setCustomValidity(boxes.some((box) => box.checked) ? "" : NO_SCOPE);
  }

  creation() {
    const scopes = this.scopeBoxes().filter((box) => box.checked).map((box) => box.value);
    const days = byId("key-expiry").value;
    return {
      name: byId("key-name").value.trim(),
      scopes,
      ...(days ? { expires_in_days: Number(days) } : {}),
    };
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

  scopesText(scopes) {
    const all = this.scopeBoxes().map((box) => box.value);
    return all.every((scope) => scopes.includes(scope)) ? "All" : scopes.join(", ");
  }

  status(key) {
    if (key.revoked_at) return `Revoked ${formatDate(key.revoked_at)}`;
    const revoke = removeButton("Revoke", `Revoke ${key.name}`, () => this.revoke(key));
    if (key.expires_at && new Date(key.expires_at) <= new Date()) return el("span", {}, "Expired ", revoke);
    return revoke;
  }

  row(key) {
    return el(
      "tr",
      {
        "data-testid": "key-row",
        "data-name": key.name,
        "data-revoked": String(Boolean(key.revoked_at)),
        "data-scopes": key.scopes.join(" "),
      },
      el("td", { "data-label": "Name" }, key.name),
      el("td", { "data-label": "Prefix" }, el("code", {}, `${key.prefix}…`)),
      el("td", { "data-label": "Scopes" }, this.scopesText(key.scopes)),
      el("td", { "data-label": "Created" }, formatDate(key.created_at)),
      el("td", { "data-label": "Last used" }, key.last_used_at ? formatDate(key.last_used_at) : "Never"),
      el("td", { "data-label": "Expires" }, key.expires_at ? formatDate(key.expires_at) : "Never"),
      el("td", { "data-label": "Status" }, this.status(key)),
    );
  }
}
