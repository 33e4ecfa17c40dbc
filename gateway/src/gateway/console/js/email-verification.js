// Verified email addresses (ADR 0029). A banner, while the signed-in account's address is
// not verified, offers to send the link again (POST /auth/resend-verification); the email's
// link, `#/verify-email?token=…`, opens signed in or out and confirms the address at once
// (POST /auth/verify-email). Like the reset page, it keeps the token in memory and takes it
// out of the address bar before anything else, so it stays in neither history nor a
// screenshot.

import { refreshSession, request } from "./api.js";
import { byId, guarded, showError, showStatus } from "./dom.js";
import { getSession, setSessionEmail } from "./session.js";

export const VERIFY_VIEWS = ["verify-email"];

const NO_TOKEN = {
  status: 422,
  code: "invalid_verification_token",
  message: "open the link from the email, or ask for a new one",
};

export class EmailVerification {
  constructor() {
    // The address whose state the banner shows, so a re-render does not ask again.
    this.checkedFor = null;
    // Bumped by each look-up and each verification: an answer that a later one overtook is
    // dropped, so a look-up sent before the link was used cannot bring the banner back.
    this.generation = 0;
    this.banner = byId("verify-banner");
    byId("verify-resend").addEventListener("click", (event) => this.resend(event.currentTarget));
  }

  /** Show the banner if the signed-in account's address is not verified; hide it otherwise. */
  async check(session) {
    if (!session) {
      this.checkedFor = null;
      this.banner.hidden = true;
      return;
    }
    if (this.checkedFor === session.email) return;
    this.checkedFor = session.email;
    const generation = ++this.generation;
    let me = null;
    try {
      me = await request("api/v1/users/me");
    } catch {
      return; // The banner is a reminder; a failed look-up leaves it as it was.
    }
    if (generation !== this.generation) return;
    byId("verify-banner-email").textContent = me.email;
    this.banner.hidden = me.email_verified !== false;
  }

  /** Take the token of `#/verify-email?token=…` out of the address bar, then use it. */
  takeToken(query) {
    const token = new URLSearchParams(query).get("token");
    if (!token) {
      if (!byId("verify-result").textContent) showError(NO_TOKEN);
      return;
    }
    window.history.replaceState(null, "", "#/verify-email");
    this.verify(token);
  }

  async verify(token) {
    const result = byId("verify-result");
    result.textContent = "Confirming your email address…";
    const verified = await guarded(() =>
      request("api/v1/auth/verify-email", { method: "POST", json: { token }, auth: false }),
    );
    if (!verified) {
      result.textContent =
        "This link did not work: it may be used already, replaced by a newer one or expired. " +
        "Log in and ask for a new one from the banner at the top of the page.";
      return;
    }
    result.textContent = verified.address_changed
      ? `Thank you: you sign in with ${verified.email} from now on.`
      : `Thank you: ${verified.email} is verified.`;
    this.generation += 1;
    this.banner.hidden = true;
    // A signed-in page shows the new state from now on (this address or another account's).
    this.checkedFor = null;
    // The access token says whether the address was verified when it was minted, and a
    // deployment may detect for verified addresses only: a signed-in page takes a new token
    // now rather than at its next expiry (harmless when it is another account's).
    if (!getSession()) return;
    await refreshSession();
    // A changed address (ADR 0033) is the signed-in account's own name for itself from now
    // on; the page asks which account it is rather than assume the link was its own.
    if (verified.address_changed) {
      const me = await guarded(() => request("api/v1/users/me"));
      if (me) setSessionEmail(me.email);
    }
  }

  async resend(button) {
    const sent = await guarded(
      () => request("api/v1/auth/resend-verification", { method: "POST" }),
      button,
    );
    if (sent) showStatus(`A new link is on its way to ${byId("verify-banner-email").textContent}.`);
  }
}
