// Accounts, for admins (ADR 0032): look accounts up by part of their email or by their id
// (GET /users?q=), newest first, a page at a time; suspend or restore one, promote or demote
// it (PATCH /users/{id}/status), and its row then shows the account as the answer has it.
// The nav entry shows only where the access token says `admin` (main.js); the server decides,
// so anyone else who opens `#/accounts` gets its 403 like any other error. An admin is not
// offered to suspend or demote their own account (the server would answer 409 own_account).

import { request } from "./api.js";
import { byId, el, formatDate, guarded, onSubmit, showRows, showStatus } from "./dom.js";
import { Pager } from "./pager.js";
import { tokenClaims } from "./session.js";

export const PAGE_SIZE = 20;
const COLUMNS = 6;

export class AccountsView {
  constructor() {
    this.body = byId("accounts-body");
    this.query = byId("accounts-q");
    // The search the page on show answers: paging keeps it even if the box was edited since.
    this.searched = "";
    this.pager = new Pager({
      previous: "accounts-previous",
      next: "accounts-next",
      range: "accounts-range",
      size: PAGE_SIZE,
      fetchPage: (query, signal) => request("api/v1/users", { query: { ...query, q: this.searched }, signal }),
      render: (items) => this.render(items),
    });
    // A new search starts again from its first page.
    onSubmit(byId("accounts-search"), () => {
      this.searched = this.query.value.trim();
      this.load(0);
    });
  }

  /** Back to an empty first page and no search (after sign-out). */
  reset() {
    this.pager.reset();
    this.searched = "";
    this.query.value = "";
    this.body.replaceChildren();
  }

  /** The page from `offset`; by default the one on show, refreshed. */
  load(offset) {
    return this.pager.load(offset);
  }

  render(accounts) {
    const emptyText = this.searched ? `No account matches “${this.searched}”.` : "No accounts.";
    showRows(this.body, accounts.map((account) => this.row(account)), COLUMNS, emptyText);
  }

  row(account) {
    const own = account.id === tokenClaims().sub;
    return el(
      "tr",
      {
        "data-testid": "account-row",
        "data-user-id": account.id,
        "data-email": account.email,
        "data-active": String(account.is_active),
        "data-admin": String(account.is_admin),
      },
      el("td", { "data-label": "Email", className: "wrap" }, account.email, own ? el("span", { className: "hint" }, " (you)") : null),
      el("td", { "data-label": "Id" }, el("code", {}, account.id)),
      el("td", { "data-label": "State" }, account.is_active ? "Active" : "Suspended"),
      el("td", { "data-label": "Role" }, account.is_admin ? "Admin" : "—"),
      el("td", { "data-label": "Created" }, formatDate(account.created_at)),
      el("td", { className: "row-actions" }, ...this.actions(account, own)),
    );
  }

  /** The row's buttons: Suspend or Restore, Promote or Demote; never Suspend or Demote on `own`. */
  actions(account, own) {
    const email = account.email;
    const buttons = [];
    if (!account.is_active) {
      buttons.push(this.button("Restore", account, { active: true }, { done: `${email} is restored: it can log in again.` }));
    } else if (!own) {
      buttons.push(
        this.button("Suspend", account, { active: false }, {
          danger: true,
          question: `Suspend ${email}? Its sessions end at once, it cannot log in and its API keys stop working until it is restored.`,
          done: `${email} is suspended.`,
        }),
      );
    }
    if (!account.is_admin) {
      buttons.push(this.button("Promote", account, { admin: true }, { done: `${email} is an admin from its next login.` }));
    } else if (!own) {
      buttons.push(
        this.button("Demote", account, { admin: false }, {
          danger: true,
          question: `Withdraw admin rights from ${email}? Its sessions end at once.`,
          done: `${email} is no longer an admin.`,
        }),
      );
    }
    return buttons;
  }

  button(label, account, change, { danger = false, question = null, done }) {
    return el(
      "button",
      {
        type: "button",
        className: danger ? "danger" : "secondary",
        "aria-label": `${label} ${account.email}`,
        onclick: (event) => this.change(account, change, event.currentTarget, { question, done }),
      },
      label,
    );
  }

  /** Send `change` once `question` (if any) is confirmed; the button's row becomes the answer. */
  async change(account, change, button, { question, done }) {
    if (question && !window.confirm(question)) return;
    const updated = await guarded(
      () => request(`api/v1/users/${encodeURIComponent(account.id)}/status`, { method: "PATCH", json: change }),
      button,
    );
    if (!updated) return;
    const fresh = this.row(updated);
    button.closest("tr").replaceWith(fresh);
    // The button pressed is gone with its row: keep the keyboard on the row's next action.
    fresh.querySelector("button")?.focus();
    showStatus(done);
  }
}
