// Every call to the REST API goes through `request`: it adds the access token, refreshes the
// session once on a 401 and retries, and turns error bodies into ApiError.

import { clearSession, getSession, setTokens } from "./session.js";

/** A failed call: the API's `{"error": {code, message, request_id}}` plus the HTTP status. */
export class ApiError extends Error {
  constructor(status, code, message, { requestId = null, retryAfter = null, details = null } = {}) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.code = code;
    this.requestId = requestId;
    this.retryAfter = retryAfter;
    this.details = details;
  }
}

/** An API path resolved against the page, so the console also works under a path prefix. */
export function apiUrl(path, query = {}) {
  const url = new URL(path.replace(/^\//, ""), document.baseURI);
  for (const [name, value] of Object.entries(query)) {
    if (value !== undefined && value !== null && value !== "") url.searchParams.set(name, value);
  }
  return url;
}

async function toApiError(response) {
  const retryAfter = Number.parseInt(response.headers.get("Retry-After") ?? "", 10);
  const extra = {
    requestId: response.headers.get("X-Request-ID"),
    retryAfter: Number.isFinite(retryAfter) ? retryAfter : null,
  };
  try {
    const body = await response.json();
    if (body && typeof body.error === "object" && body.error !== null) {
      const { code, message, request_id: requestId, details } = body.error;
      return new ApiError(response.status, code ?? "error", message ?? response.statusText, {
        ...extra,
        requestId: requestId ?? extra.requestId,
        details: details ?? null,
      });
    }
  } catch {
    // Not JSON (a proxy's error page): fall through to the status alone.
  }
  return new ApiError(response.status, "http_error", response.statusText || "request failed", extra);
}

async function send(path, { method = "GET", json, body, query, headers: extra = {}, auth = true, signal }, token) {
  const headers = { Accept: "application/json", ...extra };
  if (json !== undefined) {
    headers["Content-Type"] = "application/json";
    body = JSON.stringify(json);
  }
  if (auth && token) headers.Authorization = `Bearer ${token}`;
  try {
    return await fetch(apiUrl(path, query), { method, headers, body, signal });
  } catch (error) {
    if (error.name === "AbortError") throw error;
    throw new ApiError(0, "network_error", "the server could not be reached");
  }
}

/** The file name of `Content-Disposition: attachment; filename="…"`, or "". */
export function attachmentName(header) {
  const match = /filename="?([^";]+)"?/i.exec(header ?? "");
  return match ? match[1] : "";
}

let refreshing = null;

/** Exchange the refresh token for a new pair; concurrent 401s share one refresh. */
export function refreshSession() {
  if (!refreshing) {
    refreshing = (async () => {
      const session = getSession();
      if (!session) return false;
      const response = await send(
        "api/v1/auth/refresh",
        { method: "POST", json: { refresh_token: session.refreshToken }, auth: false },
        null,
      );
      if (!response.ok) {
        clearSession("expired");
        return false;
      }
      setTokens(await response.json());
      return true;
    })().finally(() => {
      refreshing = null;
    });
  }
  return refreshing;
}

/**
 * Call the API. `as` picks what comes back: "json" (default), "blob", "file" (`{blob,
 * filename}`, the name from Content-Disposition) or "none". `headers` adds request headers
 * (a credential that must stay out of the URL, such as a share link's token).
 * An authenticated call that gets 401 refreshes the session once and is sent again.
 */
export async function request(path, options = {}) {
  const { as = "json", auth = true } = options;
  const tokenSent = getSession()?.accessToken ?? null;
  let response = await send(path, options, tokenSent);
  if (response.status === 401 && auth && tokenSent) {
    // Another call may have refreshed already; otherwise refresh now.
    const latest = getSession()?.accessToken;
    const renewed = latest && latest !== tokenSent ? true : await refreshSession();
    if (renewed) response = await send(path, options, getSession()?.accessToken);
  }
  if (!response.ok) {
    const error = await toApiError(response);
    if (response.status === 401 && auth && tokenSent) clearSession("expired");
    throw error;
  }
  if (as === "none" || response.status === 204) return null;
  if (as === "blob") return response.blob();
  if (as === "file") {
    return { blob: await response.blob(), filename: attachmentName(response.headers.get("Content-Disposition")) };
  }
  return response.json();
}

/**
 * `request` for a change that takes the account's password again. The API's 403 for a wrong
 * one says only "not allowed": it becomes "That is not your password: <unchanged>." (a 403
 * with a code of its own, such as `invalid_second_factor`, stays as it is).
 */
export async function requestWithPassword(path, options, unchanged) {
  try {
    return await request(path, options);
  } catch (error) {
    if (error?.status !== 403 || error.code !== "permission_denied") throw error;
    throw new ApiError(403, "incorrect_password", `that is not your password: ${unchanged}`, {
      requestId: error.requestId,
    });
  }
}

/** The WebSocket URL for an API path (ws: or wss: to match the page). */
export function socketUrl(path) {
  const url = apiUrl(path);
  url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
  return url;
}
