// Two-factor authentication with an authenticator app (ADR 0034).
// The login form asks for the app's code only once the server says the account needs one
// (401 `second_factor_required`), then sends the same login again with it: there is no
// state on the server between the two requests. The Settings page's card turns it on
// (password, then the QR code and the app's first code, which answers the recovery codes,
// shown this once), renews the recovery codes and turns it off (password and a code).

import { request, requestWithPassword } from "./api.js";
import { byId, el, guarded, onSubmit, showStatus, submitting } from "./dom.js";

const LOGIN = "api/v1/auth/login";
const TWO_FACTOR = "api/v1/users/me/two-factor";

/** The login form's code field: hidden until the server asks for a code. */
export class LoginCode {
  constructor(form) {
    this.field = byId("login-code-field");
    this.input = byId("login-code");
    // Another address may need no code: the field waits for the server to ask again.
    form.elements.email.addEventListener("input", () => this.reset());
  }

  /** Log in with `credentials` ({email, password}) and the code, once one is asked for;
   * undefined when the server asks for a code (the field is shown for it). */
  async logIn(credentials) {
    const json = this.field.hidden ? credentials : { ...credentials, second_factor_code: this.input.value.trim() };
    try {
      return await request(LOGIN, { method: "POST", json, auth: false });
    } catch (error) {
      if (error?.code === "invalid_second_factor") this.input.select();
      if (error?.code !== "second_factor_required") throw error;
      this.ask();
      return undefined;
    }
  }

  ask() {
    this.field.hidden = false;
    this.input.required = true;
    this.input.focus();
    showStatus("Enter the code from your authenticator app (or a recovery code) to finish logging in.");
  }

  reset() {
    this.field.hidden = true;
    this.input.required = false;
    this.input.value = "";
  }
}

/**
 * The Settings card. Its `data-state` says what it shows: "off" (the password form that
 * turns it on), "enrolling" (the QR code, the secret and the form for the app's first code),
 * "codes" (recovery codes just made) or "on" (the form that renews the codes or turns it off).
 */
export class TwoFactorCard {
  constructor() {
    this.card = byId("two-factor-card");
    this.summary = byId("two-factor-summary");
    this.startForm = byId("two-factor-start-form");
    this.confirmForm = byId("two-factor-confirm-form");
    this.manageForm = byId("two-factor-manage-form");
    this.recovery = byId("two-factor-recovery");
    this.recoveryList = byId("two-factor-recovery-list");
    this.qr = byId("two-factor-qr");
    this.secret = byId("two-factor-secret");
    onSubmit(this.startForm, () => this.start());
    onSubmit(this.confirmForm, () => this.confirm());
    onSubmit(this.manageForm, (event) => {
      if (event.submitter?.value === "disable") this.disable(event.submitter);
      else this.renewCodes(event.submitter);
    });
    byId("two-factor-recovery-done").addEventListener("click", () => this.show("on"));
  }

  /** What the account says (GET /users/me); anything shown before is forgotten. */
  showAccount(account) {
    this.show(account.two_factor_enabled ? "on" : "off");
  }

  show(state) {
    this.card.dataset.state = state;
    this.startForm.hidden = state !== "off";
    this.confirmForm.hidden = state !== "enrolling";
    this.recovery.hidden = state !== "codes";
    this.manageForm.hidden = state !== "on";
    this.summary.textContent =
      state === "off"
        ? "Off: your password alone logs you in. Turn it on to also need a code from an authenticator app on your phone."
        : state === "enrolling"
          ? "Not on yet: add the key to your authenticator app, then enter the code it shows."
          : "On: logging in asks for a code from your authenticator app.";
    // The secret and the codes are shown once: nothing of them stays in a hidden part.
    if (state !== "enrolling") {
      this.qr.removeAttribute("src");
      this.secret.textContent = "";
    }
    if (state !== "codes") this.recoveryList.replaceChildren();
    for (const form of [this.startForm, this.confirmForm, this.manageForm]) {
      if (form.hidden) form.reset();
    }
  }

  async start() {
    const fields = this.startForm.elements;
    const enrollment = await submitting(this.startForm, () =>
      requestWithPassword(
        TWO_FACTOR,
        { method: "POST", json: { current_password: fields.current_password.value } },
        "two-factor authentication is still off",
      ),
    );
    if (!enrollment) return;
    this.show("enrolling");
    this.qr.src = enrollment.qr_svg;
    this.secret.textContent = enrollment.secret;
    this.confirmForm.elements.code.focus();
  }

  async confirm() {
    const fields = this.confirmForm.elements;
    const answer = await submitting(this.confirmForm, () =>
      request(`${TWO_FACTOR}/confirm`, { method: "POST", json: { code: fields.code.value.trim() } }),
    );
    if (!answer) return;
    this.showCodes(answer.recovery_codes);
    showStatus("Two-factor authentication is on: logging in asks for a code from your app from now on.");
  }

  async renewCodes(button) {
    const sent = await this.sendPasswordAndCode(
      button,
      `${TWO_FACTOR}/recovery-codes`,
      { method: "POST" },
      "your recovery codes are unchanged",
    );
    if (!sent) return;
    this.showCodes(sent.answer.recovery_codes);
    showStatus("New recovery codes: the earlier ones no longer work.");
  }

  async disable(button) {
    const sent = await this.sendPasswordAndCode(
      button,
      TWO_FACTOR,
      { method: "DELETE", as: "none" },
      "two-factor authentication is still on",
    );
    if (!sent) return;
    this.show("off");
    showStatus("Two-factor authentication is off: your password alone logs you in.");
  }

  /** Send the manage form's password and code to `path`; `{answer}` once the server took
   * them (a 204's answer is null), undefined when it refused (the page shows why). */
  sendPasswordAndCode(button, path, options, unchanged) {
    const fields = this.manageForm.elements;
    const json = { current_password: fields.current_password.value, code: fields.code.value.trim() };
    return guarded(async () => ({ answer: await requestWithPassword(path, { ...options, json }, unchanged) }), button);
  }

  showCodes(codes) {
    this.show("codes");
    this.recoveryList.replaceChildren(...codes.map((code) => el("li", {}, el("code", {}, code))));
    this.recovery.focus();
  }

  /** Forget everything shown (after sign-out). */
  reset() {
    this.show("off");
    this.startForm.reset();
    this.summary.textContent = "";
    this.card.dataset.state = "";
  }
}
