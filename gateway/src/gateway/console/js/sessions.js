// The Settings page's card of signed-in sessions (ADR 0035): where and when the account
// logged in (GET /users/me/sessions, most recently active first), a button that logs out one
// of the others (DELETE /users/me/sessions/{id}) and one that logs out all of them (DELETE
// /users/me/sessions). The session this page uses has no button: "Log out" at the top ends it.

import { request } from "./api.js";
import { byId, el, formatDate, guarded, plural, showStatus } from "./dom.js";

const SESSIONS = "api/v1/users/me/sessions";

/** A session's device and address in words, for the row's button and the status line. */
function described(session) {
  const device = session.user_agent || "an unknown device";
  return session.client_ip ? `${device} at ${session.client_ip}` : device;
}

export class SessionsCard {
  constructor() {
    this.card = byId("sessions-card");
    this.body = byId("sessions-body");
    this.endOthersButton = byId("sessions-end-others");
    this.endOthersButton.addEventListener("click", () => this.endOthers());
  }

  async load() {
    this.card.dataset.loaded = "false";
    await guarded(async () => {
      const { items } = await request(SESSIONS);
      this.render(items);
    });
  }

  render(sessions) {
    this.body.replaceChildren(...sessions.map((session) => this.row(session)));
    // Only this page's own session left: there is nothing else to log out.
    this.endOthersButton.disabled = sessions.every((session) => session.current);
    this.card.dataset.loaded = "true";
  }

  row(session) {
    const action = session.current
      ? el("strong", {}, "This session")
      : el(
          "button",
          {
            type: "button",
            className: "danger",
            "aria-label": `End the session of ${described(session)}`,
            onclick: (event) => this.end(session, event.currentTarget),
          },
          "End",
        );
    return el(
      "tr",
      { "data-testid": "session-row", "data-current": String(session.current) },
      el("td", { "data-label": "Logged in" }, session.started_at ? formatDate(session.started_at) : "Unknown"),
      el("td", { "data-label": "Last active" }, formatDate(session.last_active_at)),
      el("td", { "data-label": "Where (IP)" }, session.client_ip || "Unknown"),
      el("td", { "data-label": "Device" }, session.user_agent || "Unknown"),
      el("td", { "data-label": "Session" }, action),
    );
  }

  async end(session, button) {
    const ended = await guarded(async () => {
      await request(`${SESSIONS}/${encodeURIComponent(session.id)}`, { method: "DELETE", as: "none" });
      return true;
    }, button);
    if (!ended) return;
    showStatus(`Session ended: ${described(session)} is logged out.`);
    await this.load();
  }

  async endOthers() {
    const answer = await guarded(() => request(SESSIONS, { method: "DELETE" }), this.endOthersButton);
    if (!answer) return;
    showStatus(
      answer.ended === 0
        ? "No other session was logged in."
        : `Logged out ${plural(answer.ended, "other session")}: only this one stays logged in.`,
    );
    await this.load();
  }

  /** Forget the shown sessions (after sign-out). */
  reset() {
    this.body.replaceChildren();
    this.card.dataset.loaded = "false";
  }
}
