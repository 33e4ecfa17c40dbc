// The caller's settings (GET/PATCH /users/me/settings): whether a finished batch job sends an
// email. The job-report and welcome emails link here ("turn that off in your settings").
// Also where the account is deleted (DELETE /users/me, with its password and a confirmation),
// and where its usage shows: images this month against the quota, and the last days
// (GET /users/me/usage).

import { ApiError, request } from "./api.js";
import { byId, guarded, showStatus } from "./dom.js";

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
    this.usageSummary = byId("usage-summary");
    this.usageBody = byId("usage-body");
    this.retentionSummary = byId("retention-summary");
    this.onDeleted = onDeleted;
    this.form.addEventListener("submit", (event) => {
      event.preventDefault();
      this.save();
    });
    this.deleteForm.addEventListener("submit", (event) => {
      event.preventDefault();
      this.deleteAccount();
    });
  }

  async load() {
    this.form.dataset.loaded = "false";
    await guarded(async () => {
      const [settings, usage, retention] = await Promise.all([
        request(SETTINGS),
        request(USAGE),
        request(RETENTION),
      ]);
      this.showUsage(usage);
      this.showRetention(retention);
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

  show(settings) {
    this.notifications.checked = Boolean(settings.notifications_enabled);
    this.form.dataset.loaded = "true";
  }

  async save() {
    const button = this.form.querySelector("button[type=submit]");
    const saved = await guarded(
      () =>
        request(SETTINGS, {
          method: "PATCH",
          json: { notifications_enabled: this.notifications.checked },
        }),
      button,
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
    const accepted = await guarded(async () => {
      try {
        return await request(ACCOUNT, { method: "DELETE", json: { current_password: password.value } });
      } catch (error) {
        // The API's 403 for a wrong password says "not allowed"; here the password is why.
        if (error?.status !== 403) throw error;
        throw new ApiError(403, "incorrect_password", "that is not your password: nothing was deleted", {
          requestId: error.requestId,
        });
      }
    }, this.deleteForm.querySelector("button[type=submit]"));
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
    this.deleteForm.reset();
  }
}
