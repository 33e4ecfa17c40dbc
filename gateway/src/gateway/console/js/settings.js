// The caller's settings (GET/PATCH /users/me/settings): whether a finished batch job sends an
// email. The job-report and welcome emails link here ("turn that off in your settings").
// Also where the sign-in address is changed (PATCH /users/me with the password: the change
// waits for the link mailed to the new address, ADR 0033), where the account is deleted
// (DELETE /users/me, with its password and a confirmation), and where its usage shows: images
// this month against the quota, and the last days (GET /users/me/usage). Its two-factor
// authentication card is two-factor.js, its card of signed-in sessions sessions.js.

import { request, requestWithPassword } from "./api.js";
import { byId, guarded, onSubmit, showStatus, submitting } from "./dom.js";
import { setSessionEmail } from "./session.js";
import { SessionsCard } from "./sessions.js";
import { TwoFactorCard } from "./two-factor.js";

const SETTINGS = "api/v1/users/me/settings";

const ACCOUNT = "api/v1/users/me";

const USAGE = "api/v1/users/me/usage?days=7";
const RETENTION = "api/v1/users/me/retention";

export class SettingsView {
  /** `onDeleted(message)` runs once the account is deleted (its sessions have ended). */
  constructor({ onDeleted }) {
    this.form = byId("settings-form");
    this.notifications = byId("settings-notifications");
    this.deleteForm = byId("delete-account-form");
    this.emailForm = byId("email-change-form");
    this.emailSummary = byId("email-change-summary");
    this.usageSummary = byId("usage-summary");
    this.usageBody = byId("usage-body");
    this.retentionSummary = byId("retention-summary");
    this.twoFactor = new TwoFactorCard();
    this.sessions = new SessionsCard();
    this.onDeleted = onDeleted;
    onSubmit(this.form, () => this.save());
    onSubmit(this.deleteForm, () => this.deleteAccount());
    onSubmit(this.emailForm, () => this.changeEmail());
  }

  async load() {
    this.form.dataset.loaded = "false";
    await Promise.all([this.loadAccount(), this.sessions.load()]);
  }

  async loadAccount() {
    await guarded(async () => {
      const [settings, usage, retention, account] = await Promise.all([
        request(SETTINGS),
        request(USAGE),
        request(RETENTION),
        request(ACCOUNT),
      ]);
      this.showUsage(usage);
      this.showRetention(retention);
      this.showAddress(account);
      this.twoFactor.showAccount(account);
      this.show(settings);
    });
  }

  showUsage(usage) {
    const month = usage.month_start.slice(0, 7);
    const count = usage.month_images.toLocaleString("en");
    const allowance =
      usage.monthly_quota === null
        ? "no quota"
        : `quota ${usage.monthly_quota.toLocaleString("en")}, ${usage.remaining.toLocaleString("en")} left`;
    this.usageSummary.textContent =
      `${count} images detected in ${month} (${allowance}); the count starts again on ${usage.renews_on}.`;
    this.usageBody.replaceChildren(
      ...usage.days.map((day) => {
        const row = document.createElement("tr");
        for (const value of [day.date, day.calls, day.jobs, day.images]) {
          const cell = document.createElement("td");
          cell.textContent = String(value);
          row.append(cell);
        }
        return row;
      }),
    );
  }

  /** How long stored work is kept (GET /users/me/retention; ADR 0031). */
  showRetention(retention) {
    const whose = retention.custom ? " (set for your account)" : "";
    this.retentionSummary.textContent =
      retention.days === 0
        ? `Your images, detections and jobs are kept until you delete them${whose}.`
        : `Stored work is deleted with its images ${retention.days} days after it is done: ` +
          `a job from when it finishes, a detection made outside a job from when it is ` +
          `made${whose}.`;
  }

  /** The sign-in address, and a change that waits for its link (ADR 0033). */
  showAddress(account) {
    setSessionEmail(account.email);
    this.emailSummary.textContent = account.pending_email
      ? `You sign in with ${account.email}. A link that makes ${account.pending_email} your ` +
        `address was mailed to it; it works until ${account.pending_email_expires_at.slice(0, 16).replace("T", " ")} UTC.`
      : `You sign in with ${account.email}.`;
  }

  /** Ask for a new address; nothing changes until the link mailed to it is opened, and the
   * answer is the same whether or not another account has the address. */
  async changeEmail() {
    const fields = this.emailForm.elements;
    const account = await submitting(this.emailForm, () =>
      requestWithPassword(
        ACCOUNT,
        { method: "PATCH", json: { email: fields.email.value, current_password: fields.current_password.value } },
        "nothing was changed",
      ),
    );
    if (!account) return;
    this.emailForm.reset();
    this.showAddress(account);
    showStatus(
      account.pending_email
        ? `Check ${account.pending_email}: open the link we mailed there to sign in with it. ` +
            `Until then you sign in with ${account.email}.`
        : `No change of address is waiting: you sign in with ${account.email}.`,
    );
  }

  show(settings) {
    this.notifications.checked = Boolean(settings.notifications_enabled);
    this.form.dataset.loaded = "true";
  }

  async save() {
    const saved = await submitting(this.form, () =>
      request(SETTINGS, {
        method: "PATCH",
        json: { notifications_enabled: this.notifications.checked },
      }),
    );
    if (!saved) return;
    this.show(saved);
    showStatus(
      saved.notifications_enabled
        ? "Settings saved: you get an email when a batch job finishes."
        : "Settings saved: finished batch jobs no longer send you an email.",
    );
  }

  /** Delete the account once its password is typed and the question confirmed; a wrong
   * password is the API's 403 and deletes nothing. */
  async deleteAccount() {
    const password = this.deleteForm.elements.current_password;
    const question =
      "Delete your account and everything it stored, for good? Images, detections, jobs, " +
      "videos, webhooks and API keys go with it; this cannot be undone.";
    if (!window.confirm(question)) return;
    const accepted = await submitting(this.deleteForm, () =>
      requestWithPassword(
        ACCOUNT,
        { method: "DELETE", json: { current_password: password.value } },
        "nothing was deleted",
      ),
    );
    if (!accepted) return;
    this.deleteForm.reset();
    this.onDeleted(accepted.message);
  }

  /** Forget the shown values (after sign-out). */
  reset() {
    this.notifications.checked = false;
    this.form.dataset.loaded = "false";
    this.usageSummary.textContent = "";
    this.usageBody.replaceChildren();
    this.retentionSummary.textContent = "";
    this.emailSummary.textContent = "";
    this.emailForm.reset();
    this.twoFactor.reset();
    this.sessions.reset();
    this.deleteForm.reset();
  }
}
