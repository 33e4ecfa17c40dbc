// Live progress of a batch job: the WebSocket relay of the notification service, with the
// access token as the first message (never in the URL), and polling of GET /detect/jobs/{id}
// as the fallback when the socket cannot be opened or drops, and as a slow safety net.

import { refreshSession, request, socketUrl } from "./api.js";
import { getSession } from "./session.js";

/** Statuses a job never leaves: its results, exports and frames are all there will be. */
export const FINAL_STATUSES = new Set(["completed", "failed", "cancelled"]);
const FINAL_EVENTS = new Set(["job.completed", "job.failed", "job.cancelled"]);
const FAST_POLL_MS = 1000;
const SAFETY_POLL_MS = 5000;
const CLOSE_UNAUTHENTICATED = 4401;
// Poll answers that no retry will change.
const FATAL_STATUSES = new Set([401, 403, 404]);

/** `{jobId, status, total, processed, failed, items}` from a job body or a socket message. */
export function normaliseJob(raw, previous = {}) {
  const status = String(raw.status ?? previous.status ?? "pending").toLowerCase();
  return {
    jobId: raw.job_id ?? raw.jobId ?? raw.id ?? previous.jobId,
    status: status.replace(/^job_status_/, ""),
    total: raw.total ?? previous.total ?? 0,
    processed: raw.processed ?? previous.processed ?? 0,
    failed: raw.failed ?? previous.failed ?? 0,
    items: raw.items ?? previous.items ?? [],
    // "video" jobs carry their video; progress messages do not (the previous one is kept),
    // but those of a counting video job may carry its counts so far.
    kind: raw.kind ?? previous.kind ?? "batch",
    video: raw.video ?? withCountsSoFar(previous.video ?? null, raw),
    error: raw.error ?? previous.error ?? null,
    createdAt: raw.created_at ?? previous.createdAt ?? null,
    // The caller's own key-value pairs given at submission (ADR 0045); never changes.
    metadata: raw.metadata ?? previous.metadata ?? {},
    // The model it runs with, and the job whose stored images or video it ran again (ADR 0058).
    model: raw.model ?? previous.model ?? null,
    rerunOf: raw.rerun_of ?? previous.rerunOf ?? null,
    // The server's estimate of when a processing job ends (null: none yet, or not running).
    // A message without the field (a final event) says nothing of it: the job has ended.
    estimatedCompletionAt: status === "processing" ? (raw.estimated_completion_at ?? previous.estimatedCompletionAt ?? null) : null,
  };
}

/**
 * How long until `estimatedCompletionAt` (an ISO time) from `now` (ms), as a person reads an
 * estimate: "about 40 s", "about 3 min", "about 1 h 20 min"; null without one.
 */
export function timeLeftText(estimatedCompletionAt, now = Date.now()) {
  if (!estimatedCompletionAt) return null;
  const seconds = Math.max(0, (Date.parse(estimatedCompletionAt) - now) / 1000);
  if (Number.isNaN(seconds)) return null;
  if (seconds < 59.5) return `about ${Math.max(1, Math.floor(seconds + 0.5))} s`;
  const minutes = Math.floor(seconds / 60 + 0.5);
  if (minutes < 60) return `about ${minutes} min`;
  const hours = Math.floor(minutes / 60);
  return `about ${hours} h${minutes % 60 ? ` ${minutes % 60} min` : ""}`;
}

/** `video` with the line and zone counts a progress message carries, if it carries any. */
function withCountsSoFar(video, message) {
  if (!video || !(message.line_counts || message.zone_counts)) return video;
  return {
    ...video,
    line_counts: message.line_counts ?? video.line_counts,
    zone_counts: message.zone_counts ?? video.zone_counts,
  };
}

export function jobPercent(job) {
  // A job that ran to its end is full; a cancelled one stopped where it was.
  if (job.status === "completed" || job.status === "failed") return 100;
  if (!job.total) return 0;
  // `processed` counts failed images too (see JobOut): progress is processed / total.
  return Math.min(100, Math.round((100 * job.processed) / job.total));
}

/**
 * Follows one job until it finishes. `onUpdate(job)` gets every change (progress never goes
 * backwards); `finished` resolves with the final job as GET /detect/jobs/{id} returns it, or
 * rejects with the ApiError when the job cannot be read at all (gone, or signed out).
 */
export class JobTracker {
  constructor(job, onUpdate) {
    this.job = normaliseJob(job);
    this.onUpdate = onUpdate;
    this.socket = null;
    this.socketRetried = false;
    this.pollTimer = null;
    this.pollDelay = SAFETY_POLL_MS;
    this.done = false;
    this.finished = new Promise((resolve, reject) => {
      this.resolveFinished = resolve;
      this.rejectFinished = reject;
    });
  }

  start() {
    this.onUpdate(this.job);
    this.openSocket();
    this.schedulePoll(SAFETY_POLL_MS);
    return this.finished;
  }

  stop() {
    this.done = true;
    clearTimeout(this.pollTimer);
    if (this.socket && this.socket.readyState <= WebSocket.OPEN) this.socket.close(1000, "done");
  }

  openSocket() {
    let socket;
    try {
      socket = new WebSocket(socketUrl(`api/v1/ws/jobs/${encodeURIComponent(this.job.jobId)}`));
    } catch {
      this.fallBackToPolling();
      return;
    }
    this.socket = socket;
    socket.addEventListener("open", () => {
      socket.send(JSON.stringify({ token: getSession()?.accessToken ?? "" }));
    });
    socket.addEventListener("message", (event) => {
      let message;
      try {
        message = JSON.parse(event.data);
      } catch {
        return;
      }
      if (message.type === "job.progress") {
        // Progress events carry no status; the first one is a snapshot sent on subscribing,
        // which must not turn a job still waiting for a worker into "processing".
        const status = message.processed > 0 ? "processing" : this.job.status;
        this.update(normaliseJob({ ...message, status }, this.job));
      } else if (FINAL_EVENTS.has(message.type)) {
        this.finish();
      }
    });
    socket.addEventListener("close", async (event) => {
      if (this.done || this.socket !== socket) return;
      if (event.code === CLOSE_UNAUTHENTICATED && !this.socketRetried) {
        // The access token may have expired while the job ran: renew it and reconnect once.
        this.socketRetried = true;
        if (await refreshSession()) {
          this.openSocket();
          return;
        }
      }
      if (event.code !== 1000) this.fallBackToPolling();
    });
  }

  fallBackToPolling() {
    this.socket = null;
    this.schedulePoll(0);
    this.pollDelay = FAST_POLL_MS;
  }

  schedulePoll(delay) {
    if (this.done) return;
    clearTimeout(this.pollTimer);
    this.pollTimer = setTimeout(() => this.poll(), delay);
  }

  async poll() {
    if (this.done) return;
    try {
      this.take(await request(`api/v1/detect/jobs/${encodeURIComponent(this.job.jobId)}`));
      if (this.done) return;
    } catch (error) {
      if (FATAL_STATUSES.has(error?.status)) {
        this.fail(error);
        return;
      }
      // Anything else (network, 503) is retried at the next tick; the socket may deliver.
    }
    this.schedulePoll(this.pollDelay);
  }

  /**
   * The job as the API answered it (a read, or the cancel route's answer): a final status
   * ends the following, anything else is progress.
   */
  take(raw) {
    const job = normaliseJob(raw, this.job);
    if (FINAL_STATUSES.has(job.status)) this.complete(job);
    else this.update(job);
  }

  /** Read the job once now, e.g. after a refused cancel: it may have ended meanwhile. */
  async refresh() {
    if (this.done) return;
    try {
      this.take(await request(`api/v1/detect/jobs/${encodeURIComponent(this.job.jobId)}`));
    } catch (error) {
      if (FATAL_STATUSES.has(error?.status)) this.fail(error);
      // Anything else: the socket and the safety poll still follow the job.
    }
  }

  update(job) {
    if (this.done) return;
    if (job.processed < this.job.processed) {
      job = { ...job, processed: this.job.processed, failed: this.job.failed };
    }
    this.job = job;
    this.onUpdate(job);
  }

  /** The socket said the job ended: read the final job (with its items) once. */
  async finish() {
    if (this.done) return;
    clearTimeout(this.pollTimer);
    try {
      const job = normaliseJob(await request(`api/v1/detect/jobs/${encodeURIComponent(this.job.jobId)}`), this.job);
      if (FINAL_STATUSES.has(job.status)) {
        this.complete(job);
        return;
      }
    } catch {
      // Fall back to polling below.
    }
    this.pollDelay = FAST_POLL_MS;
    this.schedulePoll(FAST_POLL_MS);
  }

  fail(error) {
    if (this.done) return;
    this.stop();
    this.rejectFinished(error);
  }

  complete(job) {
    if (this.done) return;
    this.job = job;
    this.stop();
    this.onUpdate(job);
    this.resolveFinished(job);
  }
}
