// Forgotten passwords (ADR 0021), signed in or out: `#/forgot-password` asks for a link by
// email; `#/reset-password?token=…`, the email's link, sets a new password with it. The page
// keeps the token in memory and takes it out of the address bar at once, so it stays in
// neither the browser's history nor a screenshot.

import { request } from "./api.js";
import { byId, onSubmit, showError, showStatus, submitting } from "./dom.js";

export const PASSWORD_VIEWS = ["forgot-password", "reset-password"];

const NO_TOKEN = {
  status: 422,
  code: "invalid_reset_token",
  message: "open the link from the email, or ask for a new one",
};

export class PasswordResetView {
  /** `onReset()` runs once a new password is set (every session of the account has ended). */
  constructor({ onReset }) {
    this.token = "";
    this.onReset = onReset;
    onSubmit(byId("forgot-form"), (event) => this.ask(event.currentTarget));
    onSubmit(byId("reset-form"), (event) => this.reset(event.currentTarget));
  }

  /** Keep the token of `#/reset-password?token=…` and leave `#/reset-password` in its place. */
  takeToken(query) {
    const token = new URLSearchParams(query).get("token");
    if (!token) return;
    this.token = token;
    window.history.replaceState(null, "", "#/reset-password");
  }

  async ask(form) {
    const email = form.elements.email.value;
    const accepted = await submitting(form, () =>
      request("api/v1/auth/forgot-password", { method: "POST", json: { email }, auth: false }),
    );
    if (!accepted) return;
    form.reset();
    // The same answer whether or not the address has an account: so is the page's.
    showStatus(`If an account has the address ${email}, a link to choose a new password is on its way there.`);
  }

  async reset(form) {
    if (!this.token) {
      showError(NO_TOKEN);
      return;
    }
    const password = form.elements.password.value;
    const done = await submitting(form, async () => {
      await request("api/v1/auth/reset-password", {
        method: "POST",
        json: { token: this.token, new_password: password },
        auth: false,
        as: "none",
      });
      return true;
    });
    if (!done) return;
    form.reset();
    this.token = "";
    this.onReset();
  }
}
