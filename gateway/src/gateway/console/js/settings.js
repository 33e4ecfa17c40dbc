// The caller's settings (GET/PATCH /users/me/settings): whether a finished batch job sends an
// email. The job-report and welcome emails link here ("turn that off in your settings").

import { request } from "./api.js";
import { byId, guarded, showStatus } from "./dom.js";

const SETTINGS = "api/v1/users/me/settings";

export class SettingsView {
  constructor() {
    this.form = byId("settings-form");
    this.notifications = byId("settings-notifications");
    this.form.addEventListener("submit", (event) => {
      event.preventDefault();
      this.save();
    });
  }

  async load() {
    this.form.dataset.loaded = "false";
    await guarded(async () => {
      this.show(await request(SETTINGS));
    });
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

  /** Forget the shown values (after sign-out). */
  reset() {
    this.notifications.checked = false;
    this.form.dataset.loaded = "false";
  }
}
