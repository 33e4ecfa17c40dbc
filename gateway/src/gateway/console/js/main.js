// The console's entry point: sign-in, navigation between views (the URL hash), and the
// Detect view's uploads (one image detected at once, several submitted as a batch job; an
// image URL is fetched by the server).
// Deep links name what to open in the hash: `#/jobs/<id>` (a batch or video job),
// `#/detections/<id>` (also `#/history/<id>`: one stored detection) and `#/settings`; emails
// and webhooks carry them (notification_service.links). `#/jobs` alone lists the jobs. A link
// opened signed out opens after sign-in.
// `#/forgot-password` and `#/reset-password?token=…` (the reset email's link) open signed in
// or out (password-reset.js); so does `#/verify-email?token=…`, the verification email's link
// (email-verification.js), whose banner reminds a signed-in user of an unverified address.
// `#/shared?token=…`, a share link (ADR 0048), shows the detection or video job (ADR 0052) it
// shares to anyone who holds it, signed in or out (shared.js); the owner makes and revokes
// links in the Share section under a stored detection or on a completed video job's page
// (share-links.js).
// `#/accounts` is the admins' (accounts.js): its nav entry shows only where the access token
// says `admin`, and the server refuses anyone else. An account with two-factor authentication
// logs in with a code too (two-factor.js), asked for once the server wants one.
// A finished batch job's page scores its detections against a labels file the user uploads
// (ADR 0054: mAP, precision, recall, per class; evaluation.js), and so does a finished video
// job's, frame by frame (MOTChallenge's gt.txt, or YOLO or COCO entries named by frame; MOTA
// and IDF1 too for a tracked job); the per-class minimum scores it suggests can be put in the
// Detect view's for the next detection.
// `#/live` detects the camera's picture as it comes (live.js, ADR 0059): the camera and its
// stream run only while that view is on screen.

import { AccountsView } from "./accounts.js";
import { request } from "./api.js";
import { parseClassConfidence } from "./class-confidence.js";
import { parseRegionsOfInterest } from "./regions-of-interest.js";
import {
  byId,
  clearError,
  el,
  guarded,
  onSubmit,
  plural,
  saveFile,
  showError,
  showStatus,
  submitting,
} from "./dom.js";
import { HistoryView } from "./history.js";
import { JobListView } from "./job-list.js";
import { FINAL_STATUSES, JobTracker, jobPercent, normaliseJob, timeLeftText } from "./jobs.js";
import { JobEvaluation } from "./evaluation.js";
import { renderJobExports } from "./exports.js";
import { KeysView } from "./keys.js";
import { LiveView } from "./live.js";
import { hasPairs, parseMetadata } from "./metadata.js";
import { ModelPicker } from "./models.js";
import { PASSWORD_VIEWS, PasswordResetView } from "./password-reset.js";
import { EmailVerification, VERIFY_VIEWS } from "./email-verification.js";
import { clearSession, getSession, isAdmin, onSessionChange, setTokens } from "./session.js";
import { SettingsView } from "./settings.js";
import { ShareLinks } from "./share-links.js";
import { SHARED_VIEWS, SharedView } from "./shared.js";
import { LoginCode } from "./two-factor.js";
import { DEFAULT_THRESHOLD, Viewer, normaliseResult } from "./viewer.js";
import { WebhooksView } from "./webhooks.js";
import { countingRegions, isVideo, renderVideoJob, videoForm } from "./video.js";

const VIEWS = ["detect", "live", "history", "jobs", "keys", "webhooks", "settings", "accounts"];
// Deep links to one object, shown in the Detect view. `#/jobs/<id>` is one job (a route of
// its own, matched before the views); `#/jobs` is the list of them.
const OBJECT_ROUTES = { jobs: "job", detections: "detection", history: "detection" };
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const IMAGE_TYPES = new Set(["image/jpeg", "image/png", "image/webp", "image/bmp"]);
const IMAGE_NAME = /\.(jpe?g|png|webp|bmp)$/i;

const viewer = new Viewer();
const history = new HistoryView({
  onOpen: (id, filename) => openDetection(id, filename),
  // A job made from the history's filters: its page, followed live.
  onJob: (job) => {
    location.hash = `#/jobs/${job.job_id}`;
  },
});
const jobList = new JobListView();
const live = new LiveView();
const keys = new KeysView();
const webhooks = new WebhooksView();
const accounts = new AccountsView();
// The account is gone, and every session of it: this page's too.
const settings = new SettingsView({
  onDeleted: (message) => {
    clearSession("signed-out");
    pendingStatus = message;
    location.hash = "detect";
  },
});
const models = new ModelPicker();
// The models a batch job's images can be run again with (ADR 0058).
const rerunModels = new ModelPicker(byId("rerun-model"));
// The new password ended every session of its account: this page's too, then it asks for a
// login with the new password.
const passwordReset = new PasswordResetView({
  onReset: () => {
    if (getSession()) clearSession("signed-out");
    pendingStatus = "Your password has been changed. Log in with the new one.";
    location.hash = "detect";
  },
});
const emailVerification = new EmailVerification();
const shareLinks = new ShareLinks({ prefix: "share", kind: "detection" });
const jobShareLinks = new ShareLinks({ prefix: "job-share", kind: "job" });
const jobEvaluation = new JobEvaluation({ onUse: (text) => useClassConfidence(text) });
const sharedView = new SharedView();
const input = byId("file-input");
const dropzone = byId("dropzone");
let viewerObjectUrl = null;
let tracker = null;
// What the viewer shows, for the downloads and "detect again": the raw API answer, the
// image (the File uploaded, or the original fetched back) and the threshold asked for.
let shown = null;
// The job on show (its latest state), for "Cancel job" and "Delete job".
let shownJob = null;
// The deep link last opened, so a re-render (sign-in, refresh) does not open it twice.
let openedLink = null;
// A confirmation to show once the navigation under way has happened.
let pendingStatus = "";

// Navigation ---------------------------------------------------------------------------

/** `{view, kind, id}` from the hash: `#history`, `#/settings`, `#/jobs/<id>`… A password
 * page or a shared detection is `{view, query, forAnyone: true}`: it shows whether or not
 * anyone is signed in. */
function currentRoute() {
  const [path, query = ""] = location.hash.replace(/^#\/?/, "").split("?");
  const [name = "", id = ""] = path.split("/");
  if ([...PASSWORD_VIEWS, ...VERIFY_VIEWS, ...SHARED_VIEWS].includes(name)) {
    return { view: name, kind: null, id: null, query, forAnyone: true };
  }
  const kind = OBJECT_ROUTES[name];
  if (kind && UUID.test(id)) return { view: "detect", kind, id: id.toLowerCase() };
  return { view: VIEWS.includes(name) ? name : "detect", kind: null, id: null };
}

/** Put `#/jobs/<id>` (or another deep link) in the address bar without re-rendering. */
function showLink(path) {
  openedLink = path;
  window.history.replaceState(null, "", `#/${path}`);
}

function openLinked(route) {
  const link = `${route.kind === "job" ? "jobs" : "detections"}/${route.id}`;
  if (openedLink === link) return;
  openedLink = link;
  if (route.kind === "job") openJob(route.id);
  else openDetection(route.id, "the detection");
}

function render() {
  const session = getSession();
  const route = currentRoute();
  const view = session || route.forAnyone ? route.view : "auth";
  for (const section of document.querySelectorAll("main > .view")) {
    section.hidden = section.id !== `view-${view}`;
  }
  byId("nav").hidden = !session;
  showAdminEntry(session);
  byId("account").hidden = !session;
  byId("account-email").textContent = session?.email ?? "";
  for (const link of document.querySelectorAll("#nav a")) {
    if (link.dataset.view === view) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  if (view === "detect") models.load();
  // The camera is on only while its view is: leaving it ends the stream.
  if (view === "live") live.open();
  else live.leave();
  if (view === "history") history.load();
  if (view === "jobs") jobList.load();
  if (view === "keys") keys.load();
  if (view === "webhooks") webhooks.load();
  if (view === "settings") settings.load();
  if (view === "accounts") accounts.load();
  if (view === "reset-password") passwordReset.takeToken(route.query);
  if (view === "verify-email") emailVerification.takeToken(route.query);
  if (view === "shared") sharedView.open(route.query);
  else sharedView.close();
  emailVerification.check(session);
  if (session && route.kind) openLinked(route);
}

/** The Accounts entry, for an admin's token only (the server checks every request anyway). */
function showAdminEntry(session) {
  byId("nav-accounts").hidden = !isAdmin(session);
}

function go(view) {
  if (location.hash === `#${view}`) render();
  else location.hash = view;
}

window.addEventListener("hashchange", () => {
  clearError();
  showStatus(pendingStatus);
  pendingStatus = "";
  // A secret shown once does not stay on screen once the user moves on.
  byId("key-secret").replaceChildren();
  byId("webhook-secret").replaceChildren();
  shareLinks.forgetUrl();
  jobShareLinks.forgetUrl();
  if (!currentRoute().kind) openedLink = null;
  render();
  byId("main").focus({ preventScroll: true });
});

/** Take the detection or job on show off the page (signed out, or deleted). */
function closeResults() {
  tracker?.stop();
  tracker = null;
  if (viewerObjectUrl) URL.revokeObjectURL(viewerObjectUrl);
  viewerObjectUrl = null;
  viewer.clear();
  shareLinks.reset();
  jobShareLinks.reset();
  jobEvaluation.reset();
  byId("single-result").hidden = true;
  byId("batch-result").hidden = true;
  dropzone.classList.remove("compact");
  shown = null;
  shownJob = null;
  openedLink = null;
  byId("job-id").textContent = "";
  byId("job-items").replaceChildren();
  for (const url of jobThumbnailUrls) URL.revokeObjectURL(url);
  jobThumbnailUrls = [];
}

/** Nothing of the previous account stays in the page after it signs out. */
function forgetAccountData() {
  closeResults();
  history.reset();
  jobList.reset();
  live.reset();
  settings.reset();
  accounts.reset();
  models.reset();
  rerunModels.reset();
  for (const id of ["keys-body", "webhooks-body", "key-secret", "webhook-secret", "job-items"]) {
    byId(id).replaceChildren();
  }
}

onSessionChange((session, reason) => {
  // A refreshed token says whether the account is an admin now.
  showAdminEntry(session);
  if (reason === "refreshed") return;
  if (reason === "email-changed") {
    byId("account-email").textContent = session.email;
    return;
  }
  if (!session) forgetAccountData();
  if (reason === "expired") {
    showError({ status: 401, code: "invalid_token", message: "session expired" });
  }
  render();
});

// Authentication -----------------------------------------------------------------------

function formValues(form) {
  return Object.fromEntries(new FormData(form).entries());
}

const loginCode = new LoginCode(byId("login-form"));

onSubmit(byId("login-form"), async (event) => {
  const form = event.currentTarget;
  const { email, password } = formValues(form);
  const pair = await submitting(form, () => loginCode.logIn({ email, password }));
  if (!pair) return;
  form.reset();
  loginCode.reset();
  showStatus("");
  signIn(pair, email);
});

/**
 * Start the session and show `message`; a deep link opened signed out (an email's link)
 * opens now, anything else goes to the Detect view.
 */
function signIn(pair, email, message = "") {
  const route = currentRoute();
  const stay =
    route.kind || ["settings", "jobs", "live", "accounts"].includes(route.view) || location.hash === "#detect";
  setTokens(pair, email);
  if (stay) {
    showStatus(message);
  } else {
    // Navigating clears the status (hashchange below): the message is shown after it.
    pendingStatus = message;
    location.hash = "detect";
  }
}

onSubmit(byId("signup-form"), async (event) => {
  const form = event.currentTarget;
  const { name, email, password } = formValues(form);
  // Sign-up answers the same whether or not the address already had an account (its owner is
  // told by email instead) and issues no tokens, so the page logs in with what was typed.
  // That succeeds for a new account; if the address was taken, the login is refused and the
  // page hands over to the login form instead of claiming an account was created.
  const button = form.querySelector("button[type=submit]");
  const accepted = await guarded(
    () => request("api/v1/auth/signup", { method: "POST", json: { name, email, password }, auth: false }),
    button,
  );
  if (!accepted) return;
  let pair = null;
  button.disabled = true;
  try {
    pair = await request("api/v1/auth/login", { method: "POST", json: { email, password }, auth: false });
  } catch {
    pair = null;
  } finally {
    button.disabled = false;
  }
  form.reset();
  if (pair) {
    signIn(pair, accepted.email, `Welcome, ${name}: your account is ready.`);
    return;
  }
  byId("login-email").value = accepted.email;
  showStatus(`Sign-up accepted for ${accepted.email}. Log in to continue.`);
  byId("login-password").focus();
});

byId("logout").addEventListener("click", async (event) => {
  const session = getSession();
  if (!session) return;
  await guarded(
    () => request("api/v1/auth/logout", { method: "POST", json: { refresh_token: session.refreshToken }, as: "none" }),
    event.currentTarget,
  );
  // Signed out locally even if the server could not be told: the tokens are gone here.
  clearSession("signed-out");
  showStatus("You have logged out.");
});

byId("error-dismiss").addEventListener("click", clearError);

// Uploads ------------------------------------------------------------------------------

function busy(message) {
  byId("busy").hidden = !message;
  byId("busy-text").textContent = message ?? "";
}

function showViewer(raw, image, caption, threshold, classMinimums = new Map(), regions = []) {
  const result = normaliseResult(raw);
  tracker?.stop();
  tracker = null;
  dropzone.classList.add("compact");
  if (viewerObjectUrl) URL.revokeObjectURL(viewerObjectUrl);
  const imageUrl = URL.createObjectURL(image);
  viewerObjectUrl = imageUrl;
  shown = { raw, result, image, caption, threshold };
  byId("batch-result").hidden = true;
  byId("single-result").hidden = false;
  viewer.show(result, imageUrl, caption || result.filename, { threshold, classMinimums, regions });
  // Only a stored detection (it has an id) can be deleted, or shared.
  byId("delete-detection").hidden = !result.id;
  shareLinks.show(result.id);
  jobShareLinks.reset();
  jobEvaluation.reset();
  if (result.id) showLink(`detections/${result.id}`);
}

/**
 * The Detect view's metadata, kept with what it uploads (ADR 0045); null, after saying what
 * is wrong with it, when it is not `key=value` pairs, so nothing is uploaded without it.
 */
function uploadMetadata() {
  try {
    return parseMetadata(byId("upload-metadata").value);
  } catch (error) {
    showError({ status: 422, code: "validation_error", message: `Metadata: ${error.message}` });
    return null;
  }
}

/**
 * The Detect view's per-class minimum scores (ADR 0050), sent as `class_confidence` with
 * what it uploads when not blank; null, after saying what is wrong with them (and marking the
 * field), when they are not `class:score` pairs, so nothing is sent without them.
 */
function uploadClassConfidence() {
  const field = byId("class-confidence");
  try {
    const parsed = parseClassConfidence(field.value);
    field.removeAttribute("aria-invalid");
    return parsed;
  } catch (error) {
    field.setAttribute("aria-invalid", "true");
    showError({ status: 422, code: "validation_error", message: `Per-class minimum scores: ${error.message}` });
    return null;
  }
}

/**
 * Put `text` (an evaluation's suggested minimum scores, `person:0.4123, dog:0.3311`) in the
 * Detect view's per-class minimum scores, then go to the Detect view with that field focused:
 * the next detection uses them.
 */
function useClassConfidence(text) {
  const field = byId("class-confidence");
  field.value = text;
  field.removeAttribute("aria-invalid");
  const message = "Per-class minimum scores set from the evaluation: your next detection uses them.";
  if (location.hash === "#detect") {
    clearError();
    showStatus(message);
    field.focus();
    return;
  }
  // Navigating clears the status and focuses the main region (hashchange above): the message
  // and the field's focus come after it.
  pendingStatus = message;
  window.addEventListener("hashchange", () => field.focus(), { once: true });
  location.hash = "detect";
}

byId("class-confidence").addEventListener("input", (event) => event.currentTarget.removeAttribute("aria-invalid"));

/**
 * The Detect view's regions of interest (ADR 0053), typed in percent of the image and sent as
 * `regions` (the API's fractions, as JSON) with what it uploads when not blank; null, after
 * saying what is wrong with them (and marking the field), when they are not polygons of x,y
 * pairs from 0 to 100, so nothing is sent without them.
 */
function uploadRegions() {
  const field = byId("regions");
  try {
    const parsed = parseRegionsOfInterest(field.value);
    field.removeAttribute("aria-invalid");
    return parsed;
  } catch (error) {
    field.setAttribute("aria-invalid", "true");
    showError({ status: 422, code: "validation_error", message: `Regions of interest: ${error.message}` });
    return null;
  }
}

byId("regions").addEventListener("input", (event) => event.currentTarget.removeAttribute("aria-invalid"));

/**
 * The Detect view's "Small objects (tiles)" choice (ADR 0051): the side in pixels of the
 * overlapping tiles each detected besides the whole image, sent as `tile_size` with what it
 * uploads (the server's default overlap); "" when Off, so the field is not sent.
 */
function uploadTileSize() {
  return byId("tile-size").value;
}

/** Detect objects in `file` (a File or Blob) from confidence `threshold` up (and each class
 * given its own minimum score from that; in tiles too, when chosen; only in the regions of
 * interest, when given). */
async function detectOne(file, threshold = DEFAULT_THRESHOLD, filename = file.name) {
  const metadata = uploadMetadata();
  if (metadata === null) return;
  const perClass = uploadClassConfidence();
  if (perClass === null) return;
  const interest = uploadRegions();
  if (interest === null) return;
  const form = new FormData();
  form.append("file", file, filename);
  // Sent explicitly, so the slider can start where the server stopped.
  form.append("confidence", threshold.toFixed(2));
  if (models.value()) form.append("model", models.value());
  if (hasPairs(metadata)) form.append("metadata", JSON.stringify(metadata));
  if (perClass.text) form.append("class_confidence", perClass.text);
  const tileSize = uploadTileSize();
  if (tileSize) form.append("tile_size", tileSize);
  if (interest.json) form.append("regions", interest.json);
  busy(`Detecting objects in ${filename}…`);
  try {
    const response = await guarded(() => request("api/v1/detect/image", { method: "POST", body: form }));
    if (response) showViewer(response, file, filename, threshold, perClass.minimums, interest.polygons);
  } finally {
    busy(null);
  }
}

/**
 * Detect objects in the image at `url`, which the server fetches (the page could not: most
 * hosts do not allow it cross-origin). The viewer shows the original the server stored, so
 * "Detect again" uploads those very bytes.
 */
async function detectUrl(url) {
  const metadata = uploadMetadata();
  if (metadata === null) return;
  const perClass = uploadClassConfidence();
  if (perClass === null) return;
  const interest = uploadRegions();
  if (interest === null) return;
  const body = { url, confidence: DEFAULT_THRESHOLD };
  if (models.value()) body.model = models.value();
  if (hasPairs(metadata)) body.metadata = metadata;
  if (perClass.text) body.class_confidence = perClass.text;
  const tileSize = uploadTileSize();
  if (tileSize) body.tile_size = Number(tileSize);
  if (interest.json) body.regions = interest.json;
  busy(`Fetching and detecting ${url}…`);
  try {
    await guarded(async () => {
      const response = await request("api/v1/detect/image", { method: "POST", json: body });
      const image = await request(`api/v1/detect/${encodeURIComponent(response.detection_id)}/image`, {
        query: { annotated: "false" },
        as: "blob",
      });
      showViewer(response, image, response.filename || url, DEFAULT_THRESHOLD, perClass.minimums, interest.polygons);
    });
  } finally {
    busy(null);
  }
}

/**
 * The threshold a stored detection was made with is not stored with it: the API's default
 * unless it kept objects under it, then the lowest confidence it kept (rounded down), so the
 * slider never starts above an object that is there.
 */
function storedThreshold(result) {
  const lowest = Math.min(...result.detections.map((d) => d.confidence));
  return Number.isFinite(lowest) && lowest < DEFAULT_THRESHOLD
    ? Math.floor(lowest * 100) / 100
    : DEFAULT_THRESHOLD;
}

byId("rerun").addEventListener("click", () => {
  if (!shown) return;
  const threshold = Math.max(0, Math.min(1, Number(byId("confidence").value)));
  detectOne(shown.image, threshold, shown.caption || shown.result.filename || "image");
});

function baseName() {
  const name = shown?.caption || shown?.result.filename || "detection";
  return name.replace(/\.[^.]*$/, "") || "detection";
}

byId("download-json").addEventListener("click", () => {
  if (!shown) return;
  const text = `${JSON.stringify(shown.raw, null, 2)}\n`;
  saveFile(new Blob([text], { type: "application/json" }), `${baseName()}.detections.json`);
});

byId("download-image").addEventListener("click", async (event) => {
  const id = shown?.result.id;
  if (!id) {
    showError({ status: 404, code: "not_found", message: "this detection was not stored, so there is no annotated image" });
    return;
  }
  // Drawn by the server (the same colours as here), at the image's full size; the people
  // pixelated too while "Pixelate people" is ticked (ADR 0049).
  const query = { annotated: "true", ...viewer.redactQuery() };
  const blob = await guarded(
    () => request(`api/v1/detect/${encodeURIComponent(id)}/image`, { query, as: "blob" }),
    event.currentTarget,
  );
  if (blob) saveFile(blob, `${baseName()}.annotated.jpg`);
});

/**
 * Delete what is on show once `question` is confirmed, then leave it for an empty Detect view
 * that says `done`.
 */
async function deleteShown(path, question, done, button) {
  if (!window.confirm(question)) return;
  const deleted = await guarded(async () => {
    await request(path, { method: "DELETE", as: "none" });
    return true;
  }, button);
  if (!deleted) return;
  closeResults();
  if (location.hash === "#detect") {
    showStatus(done);
    return;
  }
  pendingStatus = done;
  location.hash = "detect";
}

byId("delete-detection").addEventListener("click", (event) => {
  const id = shown?.result.id;
  if (!id) return;
  const name = shown.caption || shown.result.filename || "this image";
  deleteShown(
    `api/v1/detect/${encodeURIComponent(id)}`,
    `Delete ${name} and its detection for good? It leaves your history and exports.`,
    `Deleted ${name} and its detection.`,
    event.currentTarget,
  );
});

byId("delete-job").addEventListener("click", (event) => {
  const job = shownJob;
  if (!job || !FINAL_STATUSES.has(job.status)) return;
  const what = job.kind === "video" ? "its video, frames and annotated video" : "its images and their detections";
  deleteShown(
    `api/v1/detect/jobs/${encodeURIComponent(job.jobId)}`,
    `Delete this job with ${what} for good? They leave your history and exports.`,
    `Deleted job ${job.jobId} with ${what}.`,
    event.currentTarget,
  );
});

/**
 * Cancel the job on show once confirmed. The answer (the job, now cancelled) ends the
 * following as the socket's `job.cancelled` would. A 409 means it ended meanwhile: the
 * refusal is shown, and the job as it is now.
 */
async function cancelShownJob(button) {
  const job = shownJob;
  const following = tracker;
  if (!job || FINAL_STATUSES.has(job.status)) return;
  const what = job.kind === "video" ? "Frames" : "Images";
  if (!window.confirm(`Cancel this job? ${what} not yet processed will not be; what was done is kept.`)) return;
  clearError();
  button.disabled = true;
  try {
    const cancelled = await request(`api/v1/detect/jobs/${encodeURIComponent(job.jobId)}/cancel`, { method: "POST" });
    if (tracker === following) following?.take(cancelled);
  } catch (error) {
    showError(error);
    if (error?.status === 409 && tracker === following) following?.refresh();
  } finally {
    button.disabled = false;
  }
}

byId("cancel-job").addEventListener("click", (event) => cancelShownJob(event.currentTarget));

/**
 * Run the job on show again with the chosen model (ADR 0058), then follow the new job. Its
 * images (or video) are the ones the job stored, so it may run again while it still runs.
 */
onSubmit(byId("job-rerun"), async (event) => {
  const form = event.currentTarget;
  const job = shownJob;
  if (!job) return;
  clearError();
  const model = rerunModels.value();
  // The button stays disabled while the request is out: one click, one job.
  const rerun = await submitting(form, () =>
    request(`api/v1/detect/jobs/${encodeURIComponent(job.jobId)}/rerun`, {
      method: "POST",
      json: model ? { model } : {},
    }),
  );
  if (rerun) await followJob(rerun);
});

// At most this many of a job's reruns are linked from its page, newest first.
const RERUNS_SHOWN = 10;

/**
 * "Ran again as job <id> (<model>), …": the jobs that ran the job `jobId` again, newest first,
 * each linked, read once as its page opens; hidden with none, or when another job is on show
 * by the time the answer comes.
 */
async function showReruns(jobId) {
  const paragraph = byId("job-reruns");
  paragraph.hidden = true;
  paragraph.replaceChildren();
  let listed;
  try {
    listed = await request("api/v1/detect/jobs", { query: { rerun_of: jobId, limit: RERUNS_SHOWN } });
  } catch {
    // A side note of the page: the job itself is shown whatever became of this.
    return;
  }
  if (listed.items.length === 0 || shownJob?.jobId !== jobId) return;
  const links = listed.items.flatMap((rerun, index) => [
    ...(index ? [", "] : []),
    el("a", { href: `#/jobs/${rerun.job_id}`, "data-testid": "job-rerun-link" }, el("code", {}, rerun.job_id.slice(0, 8))),
    ` (${rerun.model ?? "default model"})`,
  ]);
  const more = listed.total > listed.items.length ? [`, and ${listed.total - listed.items.length} more`] : [];
  paragraph.replaceChildren("Ran again as job ", ...links, ...more, ".");
  paragraph.hidden = false;
}

/** "Ran again from job <id>" with a link to it, for a job made by running another again. */
function renderRerunOf(paragraph, rerunOf) {
  paragraph.hidden = !rerunOf;
  paragraph.replaceChildren(
    ...(rerunOf
      ? ["Ran again from job ", el("a", { href: `#/jobs/${rerunOf}`, "data-testid": "job-rerun-source" }, el("code", {}, rerunOf))]
      : []),
  );
}

function renderJob(job) {
  shownJob = job;
  // A running job is cancelled first (deleting it is a 409); a finished one can be deleted.
  const finished = FINAL_STATUSES.has(job.status);
  byId("cancel-job").hidden = finished;
  byId("delete-job").hidden = !finished;
  const percent = jobPercent(job);
  const progress = byId("job-progress");
  progress.value = percent;
  progress.dataset.percent = String(percent);
  progress.dataset.status = job.status;
  const done = job.processed;
  const failed = job.failed ? `, ${job.failed} failed` : "";
  const state = { pending: "Waiting to start", processing: "Processing", completed: "Done", failed: "Failed", cancelled: "Cancelled" };
  const left = timeLeftText(job.estimatedCompletionAt);
  byId("job-status").textContent =
    `${state[job.status] ?? job.status}: ${done} of ${plural(job.total, job.kind === "video" ? "frame" : "image")}${failed} (${percent} %)` +
    (left ? `, ${left} left` : "");
  renderJobExports(byId("job-exports"), job);
  // Exports cover images (COCO, YOLO, CSV); a video job's frames are read on the page.
  if (job.kind === "video") byId("job-exports").hidden = true;
  byId("batch-title").textContent = job.kind === "video" ? "Video job" : "Batch job";
  renderVideoJob(byId("job-video"), job);
  renderJobMetadata(byId("job-metadata"), job.metadata);
  renderRerunOf(byId("job-rerun-of"), job.rerunOf);
  byId("rerun-model-label").textContent =
    job.kind === "video" ? "Run this video again with" : "Run these images again with";
  rerunModels.load();
  // Only a completed video job has its annotated video to share (ADR 0052); the section is
  // told once, not at each progress message.
  const shareable = job.kind === "video" && job.status === "completed" ? job.jobId : null;
  if (shareable !== jobShareLinks.sharedId) jobShareLinks.show(shareable);
  // A finished batch job's detections, or a finished video job's sampled frames, can be scored
  // against the user's labels (ADR 0054).
  const scorable = (job.kind === "batch" || job.kind === "video") && finished;
  jobEvaluation.show(scorable ? job.jobId : null, job.kind, job.rerunOf);
}

/** The job's own key-value pairs (ADR 0045), as text: they are the caller's, never markup. */
function renderJobMetadata(list, metadata) {
  const pairs = Object.entries(metadata ?? {}).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  list.hidden = pairs.length === 0;
  list.replaceChildren(...pairs.flatMap(([key, value]) => [el("dt", {}, key), el("dd", {}, value)]));
}

// Blob URLs of the batch's thumbnails, released when the list is rebuilt.
let jobThumbnailUrls = [];

/** The annotated image of a finished item, fetched with the session (an <img> cannot). */
async function loadJobThumbnail(detectionId, image) {
  try {
    const blob = await request(`api/v1/detect/${encodeURIComponent(detectionId)}/image`, {
      query: { annotated: "true" },
      as: "blob",
    });
    const url = URL.createObjectURL(blob);
    jobThumbnailUrls.push(url);
    image.src = url;
    image.dataset.loaded = "true";
  } catch {
    image.alt = "Thumbnail unavailable";
  }
}

function renderJobItems(job) {
  for (const url of jobThumbnailUrls) URL.revokeObjectURL(url);
  jobThumbnailUrls = [];
  byId("job-items").replaceChildren(
    ...job.items.map((item) => {
      const status = String(item.status ?? "").toLowerCase().replace(/^job_status_/, "");
      const ok = status === "completed" && item.detection_id;
      // A cancelled job's items that were never reached.
      const skipped = status === "cancelled";
      let thumbnail = el("span", { className: "job-thumbnail", "aria-hidden": "true" });
      if (ok) {
        thumbnail = el("img", {
          className: "job-thumbnail",
          alt: `${item.filename} with its objects outlined`,
          "data-testid": "job-thumbnail",
          width: 64,
          height: 48,
        });
        loadJobThumbnail(item.detection_id, thumbnail);
      }
      return el(
        "li",
        { "data-testid": "job-item", "data-status": status },
        thumbnail,
        el(
          "p",
          {},
          el("span", { className: "filename" }, item.filename ?? "image"),
          ok
            ? el("span", {}, plural(item.object_count ?? 0, "object"))
            : skipped
              ? el("span", { className: "muted" }, "cancelled: not processed")
              : el("span", { className: "error-text" }, `failed: ${item.error || "not processed"}`),
        ),
        ok
          ? el(
              "button",
              {
                type: "button",
                className: "secondary",
                "aria-label": `Open ${item.filename}`,
                onclick: () => openDetection(item.detection_id, item.filename),
              },
              "Open",
            )
          : null,
      );
    }),
  );
}

async function detectBatch(files) {
  const metadata = uploadMetadata();
  if (metadata === null) return;
  const perClass = uploadClassConfidence();
  if (perClass === null) return;
  const interest = uploadRegions();
  if (interest === null) return;
  const form = new FormData();
  for (const file of files) form.append("files", file, file.name);
  if (models.value()) form.append("model", models.value());
  if (hasPairs(metadata)) form.append("metadata", JSON.stringify(metadata));
  if (perClass.text) form.append("class_confidence", perClass.text);
  const tileSize = uploadTileSize();
  if (tileSize) form.append("tile_size", tileSize);
  if (interest.json) form.append("regions", interest.json);
  tracker?.stop();
  byId("single-result").hidden = true;
  byId("job-items").replaceChildren();
  busy(`Uploading ${plural(files.length, "image")}…`);
  let job;
  try {
    job = await guarded(() => request("api/v1/detect/batch", { method: "POST", body: form }));
  } finally {
    busy(null);
  }
  if (!job) return;
  await followJob({ ...job, total: job.total ?? files.length });
}

/** Show a batch job in the Detect view and follow it live until it finishes. */
async function followJob(job) {
  tracker?.stop();
  // Opened afresh: its Share section reads its links again, with no URL of before on show, and
  // no scores of before are shown.
  jobShareLinks.reset();
  jobEvaluation.reset();
  byId("single-result").hidden = true;
  byId("batch-result").hidden = false;
  dropzone.classList.add("compact");
  const jobId = job.job_id ?? job.jobId;
  byId("job-id").textContent = jobId;
  showLink(`jobs/${jobId}`);
  const initial = normaliseJob(job);
  shownJob = initial;
  showReruns(jobId);
  if (FINAL_STATUSES.has(initial.status)) {
    // A finished job (opened from an email): its results at once, nothing to follow.
    tracker = null;
    renderJob(initial);
    renderJobItems(initial);
    return;
  }
  const current = new JobTracker(job, renderJob);
  tracker = current;
  let finished;
  try {
    finished = await current.start();
  } catch (error) {
    if (tracker === current) showError(error);
    return;
  }
  if (tracker !== current) return;
  renderJob(finished);
  renderJobItems(finished);
  if (finished.status === "cancelled") {
    const unit = finished.kind === "video" ? "frame" : "image";
    showStatus(`The job was cancelled after ${plural(finished.processed, unit)}; what was done is kept.`);
    return;
  }
  if (finished.kind === "video") {
    showStatus(
      finished.status === "completed"
        ? `Video finished: ${plural(finished.processed, "frame")} analysed.`
        : `The video job failed: ${finished.error || "see its frames below"}.`,
    );
    return;
  }
  showStatus(
    finished.status === "completed"
      ? `Batch finished: ${plural(finished.processed, "image")} analysed. They are in your history.`
      : "The batch job failed. See the list below for each image.",
  );
}

/** Upload a video as a job, or send its URL for the server to fetch (`video`: a File or a URL
 * string), sampled at the chosen frames per second (its objects tracked, counted crossing
 * lines and in zones, the people pixelated in its annotated video when asked), and follow
 * it. Counting lines or zones that are not in the form's syntax, or given without tracking,
 * are said so before anything is sent. */
async function detectVideo(video) {
  const fps = Number(byId("video-fps").value) || null;
  const track = byId("video-track").checked;
  // "Pixelate people in the annotated video" (ADR 0049).
  const redact = byId("video-redact").checked ? ["person"] : [];
  let regions;
  try {
    regions = countingRegions({ lines: byId("video-lines").value, zones: byId("video-zones").value, track });
  } catch (error) {
    showError({ status: 422, code: "validation_error", message: error.message });
    return;
  }
  const metadata = uploadMetadata();
  if (metadata === null) return;
  const perClass = uploadClassConfidence();
  if (perClass === null) return;
  const interest = uploadRegions();
  if (interest === null) return;
  tracker?.stop();
  byId("single-result").hidden = true;
  byId("job-items").replaceChildren();
  busy(typeof video === "string" ? `Fetching ${video}…` : `Uploading ${video.name}…`);
  let job;
  try {
    const options = {
      fps,
      track,
      ...regions,
      model: models.value(),
      metadata,
      redact,
      classConfidence: perClass.text,
      tileSize: uploadTileSize(),
      regionsOfInterest: interest.json,
    };
    job = await guarded(() => request("api/v1/detect/video", { method: "POST", body: videoForm(video, options) }));
  } finally {
    busy(null);
  }
  if (job) await followJob(job);
}

function handleFiles(fileList) {
  const files = [...fileList];
  const video = files.find(isVideo);
  if (video) {
    clearError();
    showStatus(files.length > 1 ? "A video runs on its own: only the first video was sent." : "");
    detectVideo(video);
    return;
  }
  const images = files.filter((file) => IMAGE_TYPES.has(file.type) || IMAGE_NAME.test(file.name));
  clearError();
  showStatus("");
  if (images.length === 0) {
    showError({ status: 415, code: "unsupported_media_type", message: "" });
    return;
  }
  if (images.length < files.length) {
    showStatus(`Skipped ${plural(files.length - images.length, "file")} that are not JPEG, PNG, WebP or BMP images.`);
  }
  if (images.length === 1) detectOne(images[0]);
  else detectBatch(images);
}

/** A batch job by id (a deep link): its results if it is done, else followed live. */
async function openJob(id) {
  byId("job-items").replaceChildren();
  busy("Loading the batch job…");
  let job;
  try {
    job = await guarded(() => request(`api/v1/detect/jobs/${encodeURIComponent(id)}`));
  } finally {
    busy(null);
  }
  if (job) await followJob(job);
}

async function openDetection(id, filename) {
  if (currentRoute().view !== "detect") go("detect");
  busy(`Loading ${filename}…`);
  try {
    await guarded(async () => {
      const [detection, image] = await Promise.all([
        request(`api/v1/detect/${encodeURIComponent(id)}`),
        request(`api/v1/detect/${encodeURIComponent(id)}/image`, {
          query: { annotated: "false" },
          as: "blob",
        }),
      ]);
      const result = normaliseResult(detection);
      showViewer(detection, image, result.filename || filename, storedThreshold(result));
    });
  } finally {
    busy(null);
  }
}

byId("choose-files").addEventListener("click", () => input.click());
onSubmit(byId("url-form"), () => {
  const url = byId("image-url").value.trim();
  if (!url) return;
  showStatus("");
  detectUrl(url);
});
onSubmit(byId("video-url-form"), () => {
  const url = byId("video-url").value.trim();
  if (!url) return;
  clearError();
  showStatus("");
  detectVideo(url);
});
input.addEventListener("change", () => {
  if (input.files.length) handleFiles(input.files);
  input.value = "";
});
dropzone.addEventListener("dragover", (event) => {
  event.preventDefault();
  event.dataTransfer.dropEffect = "copy";
  dropzone.classList.add("dragging");
});
dropzone.addEventListener("dragleave", () => dropzone.classList.remove("dragging"));
dropzone.addEventListener("drop", (event) => {
  event.preventDefault();
  dropzone.classList.remove("dragging");
  if (event.dataTransfer.files.length) handleFiles(event.dataTransfer.files);
});
// A drop that misses the zone must not navigate away from the console to the image.
window.addEventListener("dragover", (event) => event.preventDefault());
window.addEventListener("drop", (event) => event.preventDefault());

render();
document.documentElement.dataset.ready = "true";
