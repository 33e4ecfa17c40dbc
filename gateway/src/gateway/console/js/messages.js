// API failures in plain words. The API's own message is kept where it already speaks to a
// person (validation, conflicts); transport-level failures get a sentence of their own.

const FIELD_NAMES = {
  email: "Email",
  password: "Password",
  name: "Name",
  url: "URL",
  file: "Image",
  files: "Images",
  events: "Events",
  scopes: "Scopes",
  expires_in_days: "Expiry",
  refresh_token: "Session",
  lines: "Counting lines",
  zones: "Counting zones",
  detection_id: "Detection",
  // The classes an image shows pixelated (ADR 0049).
  redact: "Pixelated classes",
  // Each class's own minimum score (ADR 0050).
  class_confidence: "Per-class minimum scores",
  // Tiled detection of small objects (ADR 0051).
  tile_size: "Small objects (tiles)",
  tile_overlap: "Tile overlap",
  // Regions of interest (ADR 0053).
  regions: "Regions of interest",
  // The ground truth a finished batch job is scored against (ADR 0054).
  labels: "Labels file",
};

function capitalise(text) {
  return text ? text.charAt(0).toUpperCase() + text.slice(1) : text;
}

function sentence(text) {
  const trimmed = capitalise(String(text).trim());
  return /[.!?]$/.test(trimmed) ? trimmed : `${trimmed}.`;
}

function seconds(count) {
  return count === 1 ? "1 second" : `${count} seconds`;
}

function validationMessage(error) {
  const details = Array.isArray(error.details) ? error.details : [];
  if (details.length === 0) return sentence(error.message.replace(/^invalid request: /, ""));
  return details
    .map((detail) => {
      const loc = (detail.loc ?? []).filter((part) => part !== "body" && part !== "query");
      const field = FIELD_NAMES[loc[loc.length - 1]] ?? loc.join(".");
      const message = String(detail.msg ?? "is invalid").replace(/^Value error, /, "");
      return sentence(field ? `${field}: ${message}` : message);
    })
    .join(" ");
}

// Codes that mean the same to a person whatever the status they came with (a wrong code is
// 401 at login, 422 when confirming a new app, 403 when turning two-factor off).
const CODE_MESSAGES = {
  second_factor_required: "Enter the code from your authenticator app to finish logging in.",
  invalid_second_factor:
    "That code is not right, or it was used already. Enter the code your authenticator app " +
    "shows now, or an unused recovery code.",
  // A share link that shows nothing (ADR 0048): said to whoever holds it, in its own words.
  share_link_not_found:
    "This link doesn't lead to anything: check that it was copied whole, or ask whoever sent " +
    "it for a new one.",
  share_link_expired: "This link has expired. Ask whoever shared it for a new one.",
  share_link_revoked: "This link was revoked by its owner.",
  share_link_unavailable: "What this link shared is no longer available.",
};

/** A sentence for the user about `error` (an ApiError or anything thrown). */
export function describeError(error) {
  if (!error || typeof error.status !== "number") {
    return "Something went wrong in the page. Reload it and try again.";
  }
  if (Object.hasOwn(CODE_MESSAGES, error.code ?? "")) return CODE_MESSAGES[error.code];
  switch (error.status) {
    case 0:
      return "Can't reach the ObjectVision server. Check your connection and try again.";
    case 401:
      if (error.code === "invalid_token") return "Your session has expired. Please log in again.";
      return error.message ? sentence(error.message) : "Please log in to continue.";
    case 403:
      // A refused password (requestWithPassword): the page names what was wrong.
      if (error.code === "incorrect_password") return sentence(error.message);
      return "You're not allowed to do that with this account.";
    case 404:
      return "That item doesn't exist any more, or belongs to another account.";
    case 409:
      return sentence(error.message || "That conflicts with something that already exists");
    case 413:
      return `That upload is too large. ${sentence(error.message)}`;
    case 415:
      // A video's refusal says what is wrong with it (not a video, its codec).
      if (/\bvideo\b/i.test(error.message ?? "")) {
        return `The service can't use that video. ${sentence(error.message)}`;
      }
      return "That file isn't an image the service can read. Use JPEG, PNG, WebP or BMP.";
    case 422:
      return validationMessage(error);
    case 429:
      return error.retryAfter
        ? `Too many requests. Try again in ${seconds(error.retryAfter)}.`
        : "Too many requests. Wait a moment and try again.";
    case 503:
    case 504:
      return "The service is busy or briefly unavailable. Try again in a few seconds.";
    default:
      if (error.status >= 500) return "The server ran into a problem. Try again shortly.";
      return sentence(error.message || "The request failed");
  }
}
