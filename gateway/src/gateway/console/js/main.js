// The console's entry point: sign-in, navigation between views (the URL hash), and the
// Detect view's uploads (one image detected at once, several submitted as a batch job).

import { request } from "./api.js";
import { byId, clearError, el, guarded, plural, showError, showStatus } from "./dom.js";
import { HistoryView } from "./history.js";
import { JobTracker, jobPercent } from "./jobs.js";
import { KeysView } from "./keys.js";
import { clearSession, getSession, onSessionChange, setTokens } from "./session.js";
import { Viewer, normaliseResult } from "./viewer.js";
import { WebhooksView } from "./webhooks.js";

const VIEWS = ["detect", "history", "keys", "webhooks"];
const IMAGE_TYPES = new Set(["image/jpeg", "image/png", "image/webp", "image/bmp"]);
const IMAGE_NAME = /\.(jpe?g|png|webp|bmp)$/i;

const viewer = new Viewer();
const history = new HistoryView({ onOpen: (id, filename) => openDetection(id, filename) });
const keys = new KeysView();
const webhooks = new WebhooksView();
const input = byId("file-input");
const dropzone = byId("dropzone");
let viewerObjectUrl = null;
let tracker = null;

// Navigation ---------------------------------------------------------------------------

function currentView() {
  const name = location.hash.replace(/^#/, "");
  return VIEWS.includes(name) ? name : "detect";
}

function render() {
  const session = getSession();
  const view = session ? currentView() : "auth";
  for (const section of document.querySelectorAll("main > .view")) {
    section.hidden = section.id !== `view-${view}`;
  }
  byId("nav").hidden = !session;
  byId("account").hidden = !session;
  byId("account-email").textContent = session?.email ?? "";
  for (const link of document.querySelectorAll("#nav a")) {
    if (link.dataset.view === view) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  if (view === "history") history.load(history.offset);
  if (view === "keys") keys.load();
  if (view === "webhooks") webhooks.load();
}

function go(view) {
  if (location.hash === `#${view}`) render();
  else location.hash = view;
}

window.addEventListener("hashchange", () => {
  clearError();
  showStatus("");
  // A secret shown once does not stay on screen once the user moves on.
  byId("key-secret").replaceChildren();
  byId("webhook-secret").replaceChildren();
  render();
  byId("main").focus({ preventScroll: true });
});

/** Nothing of the previous account stays in the page after it signs out. */
function forgetAccountData() {
  tracker?.stop();
  tracker = null;
  if (viewerObjectUrl) URL.revokeObjectURL(viewerObjectUrl);
  viewerObjectUrl = null;
  viewer.clear();
  byId("single-result").hidden = true;
  byId("batch-result").hidden = true;
  dropzone.classList.remove("compact");
  history.reset();
  for (const id of ["keys-body", "webhooks-body", "key-secret", "webhook-secret", "job-items"]) {
    byId(id).replaceChildren();
  }
}

onSessionChange((session, reason) => {
  if (reason === "refreshed") return;
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

byId("login-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = event.currentTarget;
  const { email, password } = formValues(form);
  const pair = await guarded(
    () => request("api/v1/auth/login", { method: "POST", json: { email, password }, auth: false }),
    form.querySelector("button[type=submit]"),
  );
  if (!pair) return;
  form.reset();
  showStatus("");
  setTokens(pair, email);
  go("detect");
});

byId("signup-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = event.currentTarget;
  const { name, email, password } = formValues(form);
  // The same answer whether or not the address already had an account (its owner is told by
  // email instead), so the page cannot say "created": it hands over to the login form.
  const accepted = await guarded(
    () => request("api/v1/auth/signup", { method: "POST", json: { name, email, password }, auth: false }),
    form.querySelector("button[type=submit]"),
  );
  if (!accepted) return;
  form.reset();
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

function showViewer(result, imageUrl, caption) {
  dropzone.classList.add("compact");
  if (viewerObjectUrl) URL.revokeObjectURL(viewerObjectUrl);
  viewerObjectUrl = imageUrl;
  byId("batch-result").hidden = true;
  byId("single-result").hidden = false;
  viewer.show(result, imageUrl, caption);
}

async function detectOne(file) {
  const form = new FormData();
  form.append("file", file, file.name);
  busy(`Detecting objects in ${file.name}…`);
  try {
    const response = await guarded(() => request("api/v1/detect/image", { method: "POST", body: form }));
    if (response) showViewer(normaliseResult(response), URL.createObjectURL(file), file.name);
  } finally {
    busy(null);
  }
}

function renderJob(job) {
  const percent = jobPercent(job);
  const progress = byId("job-progress");
  progress.value = percent;
  progress.dataset.percent = String(percent);
  progress.dataset.status = job.status;
  const done = job.processed;
  const failed = job.failed ? `, ${job.failed} failed` : "";
  const state = { pending: "Waiting to start", processing: "Processing", completed: "Done", failed: "Failed" };
  byId("job-status").textContent =
    `${state[job.status] ?? job.status}: ${done} of ${plural(job.total, "image")}${failed} (${percent} %)`;
}

function renderJobItems(job) {
  byId("job-items").replaceChildren(
    ...job.items.map((item) => {
      const status = String(item.status ?? "").toLowerCase().replace(/^job_status_/, "");
      const ok = status === "completed" && item.detection_id;
      return el(
        "li",
        { "data-testid": "job-item", "data-status": status },
        el(
          "p",
          {},
          el("span", { className: "filename" }, item.filename ?? "image"),
          ok
            ? el("span", {}, plural(item.object_count ?? 0, "object"))
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
  const form = new FormData();
  for (const file of files) form.append("files", file, file.name);
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
  byId("batch-result").hidden = false;
  dropzone.classList.add("compact");
  const current = new JobTracker({ ...job, total: job.total ?? files.length }, renderJob);
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
  showStatus(
    finished.status === "completed"
      ? `Batch finished: ${plural(finished.processed, "image")} analysed. They are in your history.`
      : "The batch job failed. See the list below for each image.",
  );
}

function handleFiles(fileList) {
  const files = [...fileList];
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

async function openDetection(id, filename) {
  go("detect");
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
      showViewer(result, URL.createObjectURL(image), result.filename || filename);
    });
  } finally {
    busy(null);
  }
}

byId("choose-files").addEventListener("click", () => input.click());
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
