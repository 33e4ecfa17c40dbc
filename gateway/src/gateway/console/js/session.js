// The signed-in session: tokens in memory, mirrored to sessionStorage so a reload keeps the
// user signed in while closing the tab does not (nothing in localStorage or cookies).

const STORAGE_KEY = "objectvision.session";

let current = load();
const listeners = new Set();

function load() {
  try {
    const stored = JSON.parse(sessionStorage.getItem(STORAGE_KEY) ?? "null");
    if (stored && typeof stored.accessToken === "string" && typeof stored.refreshToken === "string") {
      return stored;
    }
  } catch {
    // A corrupt entry is the same as none.
  }
  return null;
}

function persist() {
  if (current) {
    sessionStorage.setItem(STORAGE_KEY, JSON.stringify(current));
  } else {
    sessionStorage.removeItem(STORAGE_KEY);
  }
}

/** The current session `{accessToken, refreshToken, email}`, or null when signed out. */
export function getSession() {
  return current;
}

/**
 * The claims of the session's access token (its payload, base64url JSON), or {} when there
 * is none or it cannot be read. Only for what the page shows (the Accounts entry for an
 * admin): the server checks the token itself on every request.
 */
export function tokenClaims(session = current) {
  const payload = session?.accessToken?.split(".")[1];
  if (!payload) return {};
  try {
    const base64 = payload.replace(/-/g, "+").replace(/_/g, "/");
    const binary = atob(base64.padEnd(base64.length + ((4 - (base64.length % 4)) % 4), "="));
    const bytes = Uint8Array.from(binary, (char) => char.charCodeAt(0));
    const claims = JSON.parse(new TextDecoder().decode(bytes));
    return claims && typeof claims === "object" ? claims : {};
  } catch {
    return {};
  }
}

/** Whether the session's access token says its account is an admin. */
export function isAdmin(session = current) {
  return tokenClaims(session).admin === true;
}

/** Store a token pair from /auth/login or /auth/refresh; `email` is kept for display. */
export function setTokens(pair, email = current?.email ?? "") {
  const reason = current ? "refreshed" : "signed-in";
  current = { accessToken: pair.access_token, refreshToken: pair.refresh_token, email };
  persist();
  listeners.forEach((listener) => listener(current, reason));
}

/** Show `email` as the session's account from now on: its address changed (ADR 0033). */
export function setSessionEmail(email) {
  if (!current || current.email === email) return;
  current = { ...current, email };
  persist();
  listeners.forEach((listener) => listener(current, "email-changed"));
}

/** Forget the session; `reason` tells listeners why ("signed-out" or "expired"; the other
 * reasons are "signed-in", "refreshed" and "email-changed"). */
export function clearSession(reason = "signed-out") {
  if (!current) return;
  current = null;
  persist();
  listeners.forEach((listener) => listener(null, reason));
}

/** Call `listener(session, reason)` on every change; returns a function that stops it. */
export function onSessionChange(listener) {
  listeners.add(listener);
  return () => listeners.delete(listener);
}
