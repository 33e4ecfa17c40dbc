// The Live view (ADR 0059): the camera's picture detected as it comes, over one WebSocket,
// /api/v1/ws/detect, which relays one DetectStream. The access token is the first message
// (never in the URL, as for the job WebSocket), the settings the second; the server's `ready`
// says how many frames may be unanswered at once. Each camera frame is drawn on a canvas off
// the page and sent as a JPEG, unless that many frames are already out: then it is skipped, so
// the boxes follow the newest picture the service keeps up with, never a queue growing behind
// it. Each answer redraws the boxes over the video on a canvas, scaled from the frame's pixels
// to its size on screen, in the Detect view's colours (viewer.js, palette.js).
// Stop, leaving the view or signing out ends the stream: the camera is released at once, then
// `{"type": "end"}` asks for the answers still owed, and the server's `ended` and close follow.
// With "Count a line", a drag across the picture draws a counting line (ADR 0039) in the sent
// frames' pixels; with "Count in a zone", clicks place a zone's corners (ADR 0042), closed on
// its first corner or with Enter. A stream's lines and zones are its settings, so each new one
// opens the stream again with them, the camera kept, and the crossings each way and the
// zone's visitors are added up from the answers.

import { refreshSession, socketUrl } from "./api.js";
import { byId, el, onSubmit, plural } from "./dom.js";
import { describeError } from "./messages.js";
import { ModelPicker } from "./models.js";
import { getSession } from "./session.js";
import { colourFor, readableOn } from "./viewer.js";

const STREAM = "api/v1/ws/detect";
// Frames are sent at most this long on their longer side: the model sees 640 pixels, so a 4K
// camera's full frames would cost bandwidth and encoding time for nothing.
const MAX_SIDE = 1280;
const JPEG_QUALITY = 0.8;
// Answers a second are counted over the last few seconds, so the figure follows a change.
const RATE_WINDOW_MS = 3000;
// After `end`, how long the answers still owed and the server's close may take before the
// page closes the socket itself.
const END_TIMEOUT_MS = 10_000;
const CLOSE_NORMAL = 1000;
const CLOSE_UNAUTHENTICATED = 4401;
// The label drawn above each box, as .box-label in console.css draws the Detect view's.
const LABEL_FONT = "600 12px system-ui, sans-serif";
const LABEL_HEIGHT = 16;
const LABEL_PADDING = 4;
// The counting line: its name in the settings, how it is drawn (white over a dark edge, apart
// from every class colour), and the shortest drag that draws one (shorter is a click).
const LINE_NAME = "line";
const LINE_COLOUR = "#ffffff";
const LINE_EDGE = "#111827";
const MIN_LINE_PX = 12;
// A pointer this near the picture's edge (CSS pixels) is on it.
const EDGE_SNAP_PX = 6;
// The counting zone: its name in the settings, its fill (the picture stays readable through
// it), how near its first corner a click closes it, and the API's most corners.
const ZONE_NAME = "zone";
const ZONE_FILL = "rgba(255, 255, 255, 0.18)";
const CLOSE_ZONE_PX = 10;
// A click this soon (ms) after a zone was closed is a double click's second: it starts none.
const DOUBLE_CLICK_MS = 500;
const MAX_ZONE_CORNERS = 32;

/** A sentence for a camera that could not be opened (getUserMedia's DOMException names). */
function cameraProblem(error) {
  switch (error?.name) {
    case "NotAllowedError":
    case "SecurityError":
      return "The camera was not allowed. Allow this page to use it in the browser's site settings, then start again.";
    case "NotFoundError":
    case "OverconstrainedError":
      return "No camera was found.";
    case "NotReadableError":
    case "AbortError":
      return "The camera could not be started: another program may be using it.";
    default:
      return `The camera could not be opened (${error?.name ?? "unknown error"}).`;
  }
}

/** The server's `error` message, whose text is the whole explanation (a close reason is cut
 * at 123 bytes); refused settings are said field by field, as a refused form is. */
function streamErrorText(message) {
  if (message.code === "validation_error" && Array.isArray(message.details) && message.details.length) {
    const refused = { status: 422, code: message.code, message: String(message.message ?? ""), details: message.details };
    return `Live detection stopped: ${describeError(refused)}`;
  }
  const text = String(message.message || message.code || "the server ended the stream").trim();
  return `Live detection stopped: ${text}${/[.!?]$/.test(text) ? "" : "."}`;
}

/** `#3 person 0.87` with a track id (tracking), `person 0.87` without. */
function labelText(found) {
  const track = found.track_id === null || found.track_id === undefined ? "" : `#${found.track_id} `;
  return `${track}${found.class} ${Number(found.confidence ?? 0).toFixed(2)}`;
}

/** Whether segments ab and cd cross (touching counts): orientation tests, exact on the
 * whole pixels the corners are in. */
function segmentsCross(a, b, c, d) {
  const turn = (p, q, r) => Math.sign((q[0] - p[0]) * (r[1] - p[1]) - (q[1] - p[1]) * (r[0] - p[0]));
  const within = (p, q, r) =>
    Math.min(p[0], q[0]) <= r[0] && r[0] <= Math.max(p[0], q[0]) && Math.min(p[1], q[1]) <= r[1] && r[1] <= Math.max(p[1], q[1]);
  const [d1, d2, d3, d4] = [turn(c, d, a), turn(c, d, b), turn(a, b, c), turn(a, b, d)];
  if (d1 * d2 < 0 && d3 * d4 < 0) return true;
  return (
    (d1 === 0 && within(c, d, a)) || (d2 === 0 && within(c, d, b)) || (d3 === 0 && within(a, b, c)) || (d4 === 0 && within(a, b, d))
  );
}

/** Why `corners` is no zone the API takes (a simple polygon enclosing some area), or "". */
function zoneProblem(corners) {
  if (corners.length < 3) return "A zone needs three corners or more: click them on the picture.";
  const edges = corners.map((corner, i) => [corner, corners[(i + 1) % corners.length]]);
  for (let i = 0; i < edges.length; i += 1) {
    for (let j = i + 1; j < edges.length; j += 1) {
      // Neighbouring edges share a corner; only the first and last are neighbours too.
      if (j === i + 1 || (i === 0 && j === edges.length - 1)) continue;
      if (segmentsCross(...edges[i], ...edges[j])) {
        return "The zone's edges cross: click its corners in order around it. Draw it again.";
      }
    }
  }
  // A bow tie's two halves cancel out: its crossing edges are said first, above.
  let twiceArea = 0;
  for (let i = 0; i < corners.length; i += 1) {
    const [x1, y1] = corners[i];
    const [x2, y2] = corners[(i + 1) % corners.length];
    twiceArea += x1 * y2 - x2 * y1;
  }
  // Under a pixel, as the API counts it: nothing could stand in it.
  if (Math.abs(twiceArea) < 2) return "The zone encloses less than a pixel: draw it again, larger.";
  return "";
}

/** `[[class, count], …]` of a frame's objects, the most numerous first. */
function classCounts(detections) {
  const counts = new Map();
  for (const found of detections) counts.set(String(found.class), (counts.get(String(found.class)) ?? 0) + 1);
  return [...counts].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]));
}

export class LiveView {
  constructor() {
    this.form = byId("live-form");
    this.fields = byId("live-settings");
    this.confidence = byId("live-confidence");
    this.track = byId("live-track");
    this.lineMode = byId("live-line");
    this.lineCounts = byId("live-line-counts");
    this.zoneMode = byId("live-zone");
    this.zoneCounts = byId("live-zone-counts");
    this.classCounts = byId("live-class-counts");
    this.startButton = byId("live-start");
    this.stopButton = byId("live-stop");
    this.errorLine = byId("live-error");
    this.statusLine = byId("live-status");
    this.stage = byId("live-stage");
    this.video = byId("live-video");
    this.overlay = byId("live-overlay");
    this.framesOut = byId("live-frames");
    this.rateOut = byId("live-fps");
    this.latencyOut = byId("live-latency");
    this.countsList = byId("live-counts");
    this.models = new ModelPicker(byId("live-model"));
    // Where each frame is drawn to be encoded; never on the page.
    this.encoder = document.createElement("canvas");
    // One Start's camera, socket and counters (see `start`); null before the first.
    this.run = null;
    // The answer whose boxes are on show, redrawn when the video changes size.
    this.shown = null;
    // The counting line, `{ start: [x, y], end: [x, y] }` in the sent frames' pixels, kept
    // for the next Start; and the one being dragged, drawn as it goes.
    this.line = null;
    this.drag = null;
    // The counting zone, its corners in the sent frames' pixels, kept for the next Start; the
    // corners placed so far of one being drawn, and where the pointer is meanwhile.
    this.zone = null;
    this.corners = null;
    this.pointerAt = null;
    this.zoneClosedAt = -Infinity;
    onSubmit(this.form, () => this.start());
    this.stopButton.addEventListener("click", () => this.stop());
    // Counting needs tracking: a counting box turns it on, and turning it off turns them off.
    for (const mode of [this.lineMode, this.zoneMode]) {
      mode.addEventListener("change", () => {
        if (mode.checked) this.track.checked = true;
      });
    }
    this.track.addEventListener("change", () => {
      if (this.track.checked) return;
      this.lineMode.checked = false;
      this.zoneMode.checked = false;
    });
    this.overlay.addEventListener("pointerdown", (event) => this.beginLine(event));
    this.overlay.addEventListener("pointermove", (event) => this.moveLine(event));
    this.overlay.addEventListener("pointerup", (event) => this.endLine(event));
    this.overlay.addEventListener("pointerleave", () => {
      if (!this.pointerAt) return;
      this.pointerAt = null;
      this.drawBoxes();
    });
    for (const lost of ["pointercancel", "lostpointercapture"]) {
      this.overlay.addEventListener(lost, () => {
        if (!this.drag) return;
        this.drag = null;
        this.drawBoxes();
      });
    }
    // While a zone is being drawn: Enter closes it, Backspace takes its last corner back,
    // Escape drops it.
    document.addEventListener("keydown", (event) => this.zoneKey(event));
    new ResizeObserver(() => this.drawBoxes()).observe(this.video);
  }

  /** The view is on screen: its model list (once per sign-in). */
  open() {
    this.models.load();
  }

  /** The view was left: a stream running ends, as Stop ends it. */
  leave() {
    this.stop();
  }

  /** Signed out: the stream is dropped at once (its token is gone) and nothing of it stays. */
  reset() {
    const run = this.run;
    this.run = null;
    if (run) {
      run.state = "stopped";
      this.releaseCamera(run);
      this.closeSocket(run);
    }
    this.models.reset();
    this.shown = null;
    this.line = null;
    this.drag = null;
    this.zone = null;
    this.corners = null;
    this.pointerAt = null;
    this.drawBoxes();
    this.stage.hidden = true;
    this.video.srcObject = null;
    this.sayError("");
    this.statusLine.hidden = true;
    this.statusLine.textContent = "";
    this.statusLine.dataset.state = "idle";
    this.showButtons("idle");
    this.showReadouts(null);
    this.showRegionCounts(null);
    this.countsList.replaceChildren();
  }

  async start() {
    if (this.run && this.run.state !== "stopped") return;
    this.sayError("");
    const countingLine = this.lineMode.checked;
    const countingZone = this.zoneMode.checked;
    if (!countingLine) this.line = null;
    if (!countingZone) this.zone = null;
    this.corners = null;
    const settings = this.withRegions({
      confidence: Number(this.confidence.value),
      track: this.track.checked || countingLine || countingZone,
    });
    const model = this.models.value();
    if (model) settings.model = model;
    // Everything one Start owns. Each callback checks it is still `this.run`: a late answer
    // or close of a stream already replaced changes nothing on the page.
    const run = {
      state: "starting",
      settings,
      camera: null,
      socket: null,
      ready: false,
      retried: false,
      maxInFlight: 1,
      maxFrameBytes: Infinity,
      // Frames sent (the last one's sequence), unanswered (one being encoded included), and
      // when each unanswered one was sent, for its latency.
      sent: 0,
      inFlight: 0,
      encoding: false,
      sentAt: new Map(),
      answered: 0,
      failed: 0,
      // Crossings of the counting line each way, since it was drawn; the objects in the
      // zone in the last frame answered, and the tracks seen in it since it was drawn.
      crossed: { in: 0, out: 0 },
      inZone: 0,
      zoneVisitors: new Set(),
      // The same per class: class name -> { in, out }, and class name -> its tracks seen in
      // the zone.
      crossedByClass: new Map(),
      visitorsByClass: new Map(),
      answerTimes: [],
      latency: null,
      ended: null,
      error: null,
      endTimer: null,
      // Why the last zone drawn was refused, said again once a stream opening is ready.
      notice: "",
    };
    this.run = run;
    this.shown = null;
    this.drawBoxes();
    this.countsList.replaceChildren();
    this.showReadouts(run);
    this.showRegionCounts(run);
    this.stage.classList.toggle("drawing", countingLine || countingZone);
    this.setState(run, "starting", "Opening the camera…");
    if (!navigator.mediaDevices?.getUserMedia) {
      this.fail(run, "This browser cannot give the page a camera here: the console must be opened over HTTPS.");
      return;
    }
    let camera;
    try {
      camera = await navigator.mediaDevices.getUserMedia({ video: true, audio: false });
    } catch (error) {
      if (this.run === run && run.state === "starting") this.fail(run, cameraProblem(error));
      return;
    }
    if (this.run !== run || run.state !== "starting") {
      for (const track of camera.getTracks()) track.stop();
      return;
    }
    run.camera = camera;
    this.video.srcObject = camera;
    this.stage.hidden = false;
    try {
      await this.video.play();
    } catch {
      // Only a newer srcObject interrupts a muted video's play(): Stop came meanwhile.
    }
    if (this.run !== run || run.state !== "starting") return;
    this.setState(run, "starting", "Connecting…");
    this.connect(run);
  }

  connect(run) {
    let socket;
    try {
      socket = new WebSocket(socketUrl(STREAM));
    } catch {
      this.fail(run, "The live connection could not be opened.");
      return;
    }
    run.socket = socket;
    run.ready = false;
    socket.addEventListener("open", () => {
      socket.send(JSON.stringify({ token: getSession()?.accessToken ?? "" }));
      socket.send(JSON.stringify(run.settings));
    });
    socket.addEventListener("message", (event) => {
      if (run.socket !== socket || typeof event.data !== "string") return;
      let message;
      try {
        message = JSON.parse(event.data);
      } catch {
        return;
      }
      this.take(run, message);
    });
    socket.addEventListener("close", (event) => this.closed(run, socket, event));
  }

  /** One message of the server's. */
  take(run, message) {
    switch (message.type) {
      case "ready":
        run.ready = true;
        run.maxInFlight = Math.max(1, Math.floor(Number(message.max_in_flight)) || 1);
        run.maxFrameBytes = Number(message.max_frame_bytes) || Infinity;
        if (run.state !== "starting") return;
        // A zone refused while the stream was opening again is still said.
        this.setState(run, "running", run.notice || "Live: your camera's picture is being detected.");
        run.notice = "";
        this.nextFrame(run);
        return;
      case "detections":
        this.answered(run, message, true);
        if (this.run !== run) return;
        // The answers owed after Stop still count: the totals are the whole stream's.
        for (const crossing of message.crossings ?? []) {
          if (crossing.direction !== "in" && crossing.direction !== "out") continue;
          run.crossed[crossing.direction] += 1;
          const name = String(crossing.class_name ?? "object");
          const byClass = run.crossedByClass.get(name) ?? { in: 0, out: 0 };
          byClass[crossing.direction] += 1;
          run.crossedByClass.set(name, byClass);
        }
        this.countZone(run, message.detections ?? []);
        this.showRegionCounts(run);
        if (run.state !== "running") return;
        this.shown = message;
        this.drawBoxes();
        this.showCounts(message.detections ?? []);
        return;
      case "frame_error":
        // That frame is lost, not the stream: said, and the next frames go on.
        this.answered(run, message, false);
        if (run.state === "running") {
          this.setState(
            run,
            "running",
            `Frame ${message.sequence} could not be detected: ${message.message ?? "no reason given"} ` +
              `(${plural(run.failed, "frame")} so far).`,
          );
        }
        return;
      case "ended":
        run.ended = Number(message.frames ?? run.answered);
        return;
      case "error":
        // The close that follows ends the stream; this says why.
        run.error = message;
        if (this.run === run) this.sayError(streamErrorText(message));
    }
  }

  /** An answer came (detections or a frame's error): one frame fewer out, and the readouts. */
  answered(run, message, detected) {
    const now = performance.now();
    run.inFlight = Math.max(0, run.inFlight - 1);
    const sentAt = run.sentAt.get(message.sequence);
    run.sentAt.delete(message.sequence);
    if (sentAt !== undefined) run.latency = now - sentAt;
    run.answerTimes.push(now);
    while (run.answerTimes[0] < now - RATE_WINDOW_MS) run.answerTimes.shift();
    if (detected) run.answered += 1;
    else run.failed += 1;
    if (this.run === run) this.showReadouts(run);
  }

  /** Wait for the camera's next frame (the browser's own callback for video frames). */
  nextFrame(run) {
    // One wait at a time: a stream opened again (a new line) may be ready while the old
    // stream's wait is still pending, and two would each send frames.
    if (this.run !== run || run.state !== "running" || run.waitingForFrame) return;
    run.waitingForFrame = true;
    const next = () => {
      run.waitingForFrame = false;
      this.cameraFrame(run);
    };
    if (this.video.requestVideoFrameCallback) this.video.requestVideoFrameCallback(next);
    else requestAnimationFrame(next);
  }

  /** A new camera frame: sent, unless as many frames as the server allows are out (or one is
   * still being encoded); then it is skipped, and the next one may go. */
  cameraFrame(run) {
    if (this.run !== run || run.state !== "running") return;
    this.nextFrame(run);
    if (run.encoding || run.inFlight >= run.maxInFlight) return;
    this.sendFrame(run);
  }

  async sendFrame(run) {
    const { videoWidth, videoHeight } = this.video;
    if (!videoWidth || !videoHeight) return;
    // The size a counting line's pixels are in (sentSize): the server checks it against this.
    [this.encoder.width, this.encoder.height] = this.sentSize();
    this.encoder.getContext("2d").drawImage(this.video, 0, 0, this.encoder.width, this.encoder.height);
    run.encoding = true;
    run.inFlight += 1;
    const blob = await new Promise((resolve) => this.encoder.toBlob(resolve, "image/jpeg", JPEG_QUALITY));
    // The frame is sent as bytes in hand: a WebSocket may read a Blob asynchronously before
    // sending it (Playwright's relay does), and a Stop's `end` sent meanwhile would overtake it.
    let jpeg = null;
    try {
      jpeg = blob ? await blob.arrayBuffer() : null;
    } catch {
      // Not readable: this frame is skipped, as one that could not be encoded.
    }
    run.encoding = false;
    const socket = run.socket;
    if (!jpeg || run.state !== "running" || socket?.readyState !== WebSocket.OPEN) {
      run.inFlight = Math.max(0, run.inFlight - 1);
      return;
    }
    if (jpeg.byteLength > run.maxFrameBytes) {
      // The server would end the stream (1009): this frame is skipped instead, and said.
      run.inFlight = Math.max(0, run.inFlight - 1);
      this.setState(run, "running", `A frame of ${jpeg.byteLength} bytes is over the server's limit of ${run.maxFrameBytes}: skipped.`);
      return;
    }
    socket.send(jpeg);
    run.sent += 1;
    run.sentAt.set(run.sent, performance.now());
  }

  stop() {
    const run = this.run;
    if (!run || run.state === "stopping" || run.state === "stopped") return;
    this.releaseCamera(run);
    const socket = run.socket;
    if (run.ready && socket?.readyState === WebSocket.OPEN) {
      this.setState(run, "stopping", "Stopping: waiting for the answers still owed…");
      socket.send(JSON.stringify({ type: "end" }));
      run.endTimer = setTimeout(() => this.closeSocket(run), END_TIMEOUT_MS);
      return;
    }
    // Not streaming yet: nothing is owed.
    this.finish(run, "Stopped.");
  }

  async closed(run, socket, event) {
    // A socket a new counting line replaced closes on its own time: it changes nothing.
    if (run.socket !== socket || run.state === "stopped") return;
    clearTimeout(run.endTimer);
    if (event.code === CLOSE_UNAUTHENTICATED && !run.ready && !run.retried && run.state === "starting") {
      // The access token may have expired since it was issued: renew it and connect once more.
      run.retried = true;
      const renewed = await refreshSession();
      // A counting line drawn meanwhile has opened the stream again already.
      if (this.run !== run || run.state !== "starting" || run.socket !== socket) return;
      if (renewed) {
        run.error = null;
        this.sayError("");
        this.connect(run);
        return;
      }
    }
    if (run.state === "stopping" && !run.error) {
      // The whole run's frames: `ended` counts only the last stream's, after a new line.
      this.finish(run, `Stopped after ${plural(run.answered, "frame")} detected.`);
      return;
    }
    if (!run.error && this.run === run) {
      const reason = event.reason ? `: ${event.reason}` : "";
      this.sayError(`The live connection closed (code ${event.code}${reason}). Start again to reconnect.`);
    }
    this.finish(run, "", "failed");
  }

  fail(run, text) {
    this.sayError(text);
    this.finish(run, "", "failed");
  }

  /** The end of a run, stopped (`state`) or failed: camera and socket released. */
  finish(run, message, state = "stopped") {
    run.state = "stopped";
    if (state === "failed" && ["invalid_argument", "validation_error"].includes(run.error?.code) && this.run === run) {
      // The server refused the stream's settings, its line or zone with them: the next Start
      // would be refused alike, so they are to be drawn again.
      this.line = null;
      this.zone = null;
    }
    this.drag = null;
    this.corners = null;
    this.pointerAt = null;
    clearTimeout(run.endTimer);
    this.releaseCamera(run);
    this.closeSocket(run);
    if (this.run !== run) return;
    this.shown = null;
    this.drawBoxes();
    this.stage.hidden = true;
    this.showState(run, state, message);
  }

  releaseCamera(run) {
    for (const track of run.camera?.getTracks() ?? []) track.stop();
    run.camera = null;
    if (this.run === run) this.video.srcObject = null;
  }

  closeSocket(run) {
    const socket = run.socket;
    if (socket && socket.readyState <= WebSocket.OPEN) socket.close(CLOSE_NORMAL, "done");
  }

  /** `run` is now in `state` (starting, running or stopping), said in the status line. */
  setState(run, state, message) {
    run.state = state;
    this.showState(run, state, message);
  }

  /** The status line (`data-state`: idle, starting, running, stopping, stopped or failed). */
  showState(run, state, message) {
    if (this.run !== run) return;
    this.statusLine.dataset.state = state;
    this.statusLine.textContent = message;
    this.statusLine.hidden = !message;
    this.showButtons(state);
  }

  showButtons(state) {
    const busy = state === "starting" || state === "running" || state === "stopping";
    this.startButton.disabled = busy;
    this.fields.disabled = busy;
    this.stopButton.disabled = !(state === "starting" || state === "running");
  }

  sayError(text) {
    this.errorLine.textContent = text;
    this.errorLine.hidden = !text;
  }

  /** Frames answered, answers a second over the last seconds, the last answer's latency. */
  showReadouts(run) {
    const answered = run?.answered ?? 0;
    this.framesOut.textContent = String(answered);
    this.framesOut.dataset.count = String(answered);
    const times = run?.answerTimes ?? [];
    const span = times.length > 1 ? times[times.length - 1] - times[0] : 0;
    const rate = span > 0 ? ((times.length - 1) * 1000) / span : null;
    this.rateOut.textContent = rate === null ? "—" : rate.toFixed(1);
    if (rate === null) delete this.rateOut.dataset.rate;
    else this.rateOut.dataset.rate = rate.toFixed(2);
    const latency = run?.latency ?? null;
    this.latencyOut.textContent = latency === null ? "—" : `${Math.round(latency)} ms`;
    if (latency === null) delete this.latencyOut.dataset.ms;
    else this.latencyOut.dataset.ms = String(Math.round(latency));
  }

  /** The line's and the zone's counts, in all and per class. */
  showRegionCounts(run) {
    this.showLineCounts(run);
    this.showZoneCounts(run);
    this.showClassCounts(run);
  }

  /** Per class, the most counted first: `car: 3 in · 1 out · 2 visited`, each part only for
   * a region the stream counts. */
  showClassCounts(run) {
    const line = Boolean(run?.settings.lines?.length);
    const zone = Boolean(run?.settings.zones?.length);
    const names = new Set([...(line ? run.crossedByClass.keys() : []), ...(zone ? run.visitorsByClass.keys() : [])]);
    const rows = [...names].map((name) => {
      const crossed = run.crossedByClass.get(name) ?? { in: 0, out: 0 };
      const visited = run.visitorsByClass.get(name)?.size ?? 0;
      return { name, crossed, visited, total: crossed.in + crossed.out + visited };
    });
    rows.sort((a, b) => b.total - a.total || a.name.localeCompare(b.name));
    this.classCounts.replaceChildren(
      ...rows.map(({ name, crossed, visited }) => {
        const parts = [...(line ? [`${crossed.in} in · ${crossed.out} out`] : []), ...(zone ? [`${visited} visited`] : [])];
        return el(
          "li",
          { "data-testid": "live-class-count", "data-class": name, "data-in": crossed.in, "data-out": crossed.out, "data-visited": visited },
          `${name}: ${parts.join(" · ")}`,
        );
      }),
    );
    this.classCounts.hidden = rows.length === 0;
  }

  /** Crossings of the counting line since it was drawn, `3 in · 1 out`; a hint to draw one
   * while there is none, a dash without counting. */
  showLineCounts(run) {
    const counting = Boolean(run?.settings.lines?.length);
    this.lineCounts.dataset.in = String(counting ? run.crossed.in : 0);
    this.lineCounts.dataset.out = String(counting ? run.crossed.out : 0);
    if (counting) this.lineCounts.textContent = `${run.crossed.in} in · ${run.crossed.out} out`;
    else if (run && this.lineMode.checked) this.lineCounts.textContent = "Drag across the picture to draw the line.";
    else this.lineCounts.textContent = "—";
  }

  /** The line as the settings' `lines` give it. */
  lineSetting() {
    return { name: LINE_NAME, start: this.line.start, end: this.line.end };
  }

  /** The size of the frames sent (the camera's, at most MAX_SIDE on the longer side). */
  sentSize() {
    const { videoWidth, videoHeight } = this.video;
    const scale = Math.min(1, MAX_SIDE / Math.max(videoWidth, videoHeight));
    return [Math.round(videoWidth * scale), Math.round(videoHeight * scale)];
  }

  /** Where a frame of `frameWidth` x `frameHeight` pixels lies on the overlay, in CSS pixels:
   * the video letterboxes its picture inside its box (object-fit: contain). Null before the
   * video has a size. */
  placement(frameWidth, frameHeight) {
    const width = this.video.clientWidth;
    const height = this.video.clientHeight;
    const { videoWidth, videoHeight } = this.video;
    if (!width || !height || !videoWidth || !videoHeight || !frameWidth || !frameHeight) return null;
    const fit = Math.min(width / videoWidth, height / videoHeight);
    return {
      left: (width - videoWidth * fit) / 2,
      top: (height - videoHeight * fit) / 2,
      scaleX: (videoWidth * fit) / frameWidth,
      scaleY: (videoHeight * fit) / frameHeight,
    };
  }

  /** A pointer's place on the overlay in the sent frames' pixels, kept inside the picture. */
  framePoint(event) {
    const [frameWidth, frameHeight] = this.sentSize();
    const place = this.placement(frameWidth, frameHeight);
    if (!place) return null;
    // Within EDGE_SNAP_PX of the picture's edge is on it: a zone drawn to the bottom edge
    // holds those standing there (a box cut by the frame ends on its last row).
    const along = (offset, start, scale, size) => {
      const shown = size * scale;
      if (offset - start <= EDGE_SNAP_PX) return 0;
      if (start + shown - offset <= EDGE_SNAP_PX) return size;
      return Math.round((offset - start) / scale);
    };
    return [
      along(event.offsetX, place.left, place.scaleX, frameWidth),
      along(event.offsetY, place.top, place.scaleY, frameHeight),
    ];
  }

  /** Whether `run` is connecting or running: a new line or zone may replace its stream. */
  drawable(run) {
    return Boolean(run && this.run === run && (run.state === "running" || run.state === "starting"));
  }

  beginLine(event) {
    const run = this.run;
    // The main button only: a right click opens the browser's menu, and places nothing.
    if (event.button !== 0 || !event.isPrimary) return;
    // Only once the stream is connecting or running: a new line or zone replaces its socket.
    if (!run?.socket || !this.drawable(run) || !(this.lineMode.checked || this.zoneMode.checked)) return;
    const point = this.framePoint(event);
    if (!point) return;
    // With "Count a line", a press may become a line's drag; otherwise it is a zone's click.
    this.drag = { start: point, end: point, fromX: event.offsetX, fromY: event.offsetY, line: this.lineMode.checked };
    this.overlay.setPointerCapture(event.pointerId);
  }

  moveLine(event) {
    if (this.drag) {
      this.drag.end = this.framePoint(event) ?? this.drag.end;
      this.drawBoxes();
    } else if (this.corners) {
      this.pointerAt = this.framePoint(event);
      this.drawBoxes();
    }
  }

  /** A drag long enough is the new line, and the stream opens again with it; a click (a
   * shorter one) places the zone's next corner. */
  endLine(event) {
    const drag = this.drag;
    if (!drag) return;
    this.drag = null;
    const run = this.run;
    if (!this.drawable(run)) {
      this.drawBoxes();
      return;
    }
    const end = this.framePoint(event) ?? drag.end;
    const dragged = Math.hypot(event.offsetX - drag.fromX, event.offsetY - drag.fromY);
    if (drag.line && dragged >= MIN_LINE_PX && (end[0] !== drag.start[0] || end[1] !== drag.start[1])) {
      this.line = { start: drag.start, end };
      this.drawBoxes();
      this.restartWithRegions(run, "Counting crossings of the new line: connecting again…");
      return;
    }
    // The second click of a double click on a zone's first corner (which closed it) starts
    // no new zone.
    const afterClosing = !this.corners && performance.now() - this.zoneClosedAt < DOUBLE_CLICK_MS;
    if (dragged < MIN_LINE_PX && this.zoneMode.checked && !afterClosing) {
      this.addCorner(run, drag.start, event.offsetX, event.offsetY);
      return;
    }
    this.drawBoxes();
  }

  /** A click while drawing a zone: its next corner, or, on its first corner, the zone closed. */
  addCorner(run, point, x, y) {
    const corners = this.corners ?? [];
    const last = corners[corners.length - 1];
    // A double click places one corner, not two on the same pixel.
    if (last && last[0] === point[0] && last[1] === point[1]) return;
    const place = this.placement(...this.sentSize());
    if (corners.length >= 3 && place) {
      const [firstX, firstY] = corners[0];
      const onFirst = Math.hypot(place.left + firstX * place.scaleX - x, place.top + firstY * place.scaleY - y);
      if (onFirst <= CLOSE_ZONE_PX) {
        // Closed by a click, refused or not: a double click's second click starts no zone.
        this.zoneClosedAt = performance.now();
        this.closeZone(run);
        return;
      }
    }
    this.corners = [...corners, point];
    this.pointerAt = point;
    if (this.corners.length >= MAX_ZONE_CORNERS) {
      this.closeZone(run);
      return;
    }
    this.drawBoxes();
  }

  /** The zone drawn is closed: if the API would take it, the stream opens again with it;
   * otherwise the status line says why, and it is to be drawn again. */
  closeZone(run) {
    const corners = this.corners ?? [];
    this.corners = null;
    this.pointerAt = null;
    const problem = zoneProblem(corners);
    if (problem) {
      this.drawBoxes();
      run.notice = run.state === "starting" ? problem : "";
      this.showState(run, run.state, problem);
      return;
    }
    this.zone = corners;
    this.drawBoxes();
    this.restartWithRegions(run, "Counting objects in the new zone: connecting again…");
  }

  zoneKey(event) {
    if (!this.corners || !this.drawable(this.run)) return;
    // Keys meant for a focused control (Enter on Stop or a link), or with a modifier, are
    // theirs.
    if (event.defaultPrevented || event.isComposing || event.ctrlKey || event.metaKey || event.altKey) return;
    if (event.target instanceof Element && event.target.closest("a, button, input, select, textarea, [contenteditable]")) return;
    if (event.key === "Enter") this.closeZone(this.run);
    else if (event.key === "Escape") this.corners = null;
    else if (event.key === "Backspace") this.corners = this.corners.length > 1 ? this.corners.slice(0, -1) : null;
    else return;
    event.preventDefault();
    this.drawBoxes();
  }

  /** `settings` with the counting line and zone drawn (tracked), and without any not drawn. */
  withRegions(settings) {
    const { lines, zones, ...rest } = settings;
    const counted = { ...rest };
    if (this.lineMode.checked && this.line) counted.lines = [this.lineSetting()];
    if (this.zoneMode.checked && this.zone) counted.zones = [{ name: ZONE_NAME, polygon: this.zone }];
    if (counted.lines || counted.zones) counted.track = true;
    return counted;
  }

  /** A stream's lines and zones are its settings: the stream is opened again with the new
   * ones, the camera kept, and everything counted from zero (its tracks are new). The old
   * stream is closed at once; its answers still owed are of the old regions. */
  restartWithRegions(run, message) {
    if (!this.drawable(run)) return;
    run.settings = this.withRegions(run.settings);
    // Whatever was refused before these regions is no longer the news once they are ready.
    run.notice = "";
    const old = run.socket;
    run.socket = null;
    if (old && old.readyState <= WebSocket.OPEN) old.close(CLOSE_NORMAL, "new counting regions");
    run.ready = false;
    run.inFlight = run.encoding ? 1 : 0;
    run.sentAt.clear();
    run.sent = 0;
    run.crossed = { in: 0, out: 0 };
    run.inZone = 0;
    run.zoneVisitors = new Set();
    run.crossedByClass = new Map();
    run.visitorsByClass = new Map();
    this.showRegionCounts(run);
    this.setState(run, "starting", message);
    this.connect(run);
  }

  /** An answer's objects in the zone: how many now, and each track seen in it once. */
  countZone(run, detections) {
    if (!run.settings.zones?.length) return;
    const inside = detections.filter((found) => (found.zones ?? []).includes(ZONE_NAME));
    run.inZone = inside.length;
    for (const found of inside) {
      if (found.track_id === null || found.track_id === undefined) continue;
      run.zoneVisitors.add(found.track_id);
      const name = String(found.class ?? "object");
      run.visitorsByClass.set(name, (run.visitorsByClass.get(name) ?? new Set()).add(found.track_id));
    }
  }

  /** Objects in the zone in the last frame answered and tracks seen in it since it was
   * drawn, `2 now · 5 visited`; a hint to draw one while there is none, a dash without. */
  showZoneCounts(run) {
    const counting = Boolean(run?.settings.zones?.length);
    this.zoneCounts.dataset.now = String(counting ? run.inZone : 0);
    this.zoneCounts.dataset.visited = String(counting ? run.zoneVisitors.size : 0);
    if (counting) this.zoneCounts.textContent = `${run.inZone} now · ${run.zoneVisitors.size} visited`;
    else if (run && this.zoneMode.checked) {
      this.zoneCounts.textContent = "Click the zone's corners on the picture, then its first corner again.";
    } else this.zoneCounts.textContent = "—";
  }

  /** `person 4`, `bus 1`: the objects of the last frame answered, per class. */
  showCounts(detections) {
    const counts = classCounts(detections);
    this.countsList.replaceChildren(
      ...counts.map(([name, count]) =>
        el("li", { "data-testid": "live-count", "data-class": name, "data-count": count }, `${name} ${count}`),
      ),
    );
    if (counts.length === 0) this.countsList.append(el("li", { className: "muted" }, "No objects."));
  }

  /**
   * The boxes of the answer on show over the video, at the size it is shown: the frame's
   * pixels (the answer's `image`) scaled to the picture, which a <video> letterboxes inside
   * its box (object-fit: contain). Labels are placed as the Detect view places them: the most
   * confident first, each in the first place (above its box, inside its top, below it, inside
   * its bottom) inside the picture and off the labels placed before, slid inwards at the sides.
   */
  drawBoxes() {
    const canvas = this.overlay;
    const width = this.video.clientWidth;
    const height = this.video.clientHeight;
    const ratio = window.devicePixelRatio || 1;
    canvas.width = Math.round(width * ratio);
    canvas.height = Math.round(height * ratio);
    const answer = this.shown;
    const { videoWidth, videoHeight } = this.video;
    const detections = answer?.detections ?? [];
    canvas.dataset.boxes = String(answer ? detections.length : 0);
    canvas.dataset.labels = answer ? detections.map(labelText).join(", ") : "";
    const context = canvas.getContext("2d");
    context.setTransform(ratio, 0, 0, ratio, 0, 0);
    this.drawRegions(context);
    const place = answer && this.placement(answer.image?.width || videoWidth, answer.image?.height || videoHeight);
    if (!place) return;
    const { left, top, scaleX, scaleY } = place;
    context.lineWidth = 2;
    context.font = LABEL_FONT;
    context.textBaseline = "middle";
    const boxes = detections
      .map((found) => {
        const box = found.bbox ?? {};
        const x = left + Number(box.x1 ?? 0) * scaleX;
        const y = top + Number(box.y1 ?? 0) * scaleY;
        return {
          x,
          y,
          width: (Number(box.x2 ?? 0) - Number(box.x1 ?? 0)) * scaleX,
          height: (Number(box.y2 ?? 0) - Number(box.y1 ?? 0)) * scaleY,
          colour: colourFor(found.class_id ?? -1, String(found.class ?? "object")),
          text: labelText(found),
          confidence: Number(found.confidence ?? 0),
        };
      })
      .sort((a, b) => b.confidence - a.confidence);
    for (const box of boxes) {
      context.strokeStyle = box.colour;
      context.strokeRect(box.x, box.y, box.width, box.height);
    }
    const placed = [];
    for (const box of boxes) {
      const labelWidth = context.measureText(box.text).width + 2 * LABEL_PADDING;
      const labelX = Math.max(0, Math.min(box.x - 1, width - labelWidth));
      const places = [box.y - LABEL_HEIGHT, box.y, box.y + box.height, box.y + box.height - LABEL_HEIGHT];
      const free = places.find(
        (labelY) =>
          labelY >= 0 &&
          labelY + LABEL_HEIGHT <= height &&
          !placed.some(
            (other) =>
              labelX < other.x + other.width &&
              other.x < labelX + labelWidth &&
              labelY < other.y + LABEL_HEIGHT &&
              other.y < labelY + LABEL_HEIGHT,
          ),
      );
      const labelY = free ?? Math.max(0, places[0]);
      placed.push({ x: labelX, y: labelY, width: labelWidth });
      context.fillStyle = box.colour;
      context.fillRect(labelX, labelY, labelWidth, LABEL_HEIGHT);
      context.fillStyle = readableOn(box.colour);
      context.fillText(box.text, labelX + LABEL_PADDING, labelY + LABEL_HEIGHT / 2);
    }
  }

  /** The counting zone (or the corners placed of one being drawn, to the pointer) and line
   * (or the one being dragged), from the sent frames' pixels to the overlay's: white over a
   * dark edge, so that they read over any picture, the zone lightly filled; the boxes are
   * drawn over them. */
  drawRegions(context) {
    const shown = this.run?.state !== "stopped";
    const line = this.drag?.line ? this.drag : this.lineMode.checked && shown ? this.line : null;
    const zone = this.zoneMode.checked && shown ? this.zone : null;
    const corners = this.corners;
    this.overlay.dataset.line = line ? [...line.start, ...line.end].join(",") : "";
    this.overlay.dataset.zone = zone ? zone.flat().join(",") : "";
    this.overlay.dataset.corners = String(corners?.length ?? 0);
    if (!line && !zone && !corners) return;
    const place = this.placement(...this.sentSize());
    if (!place) return;
    const at = ([x, y]) => [place.left + x * place.scaleX, place.top + y * place.scaleY];
    const trace = (points, closed) => {
      context.beginPath();
      points.forEach((point, i) => (i === 0 ? context.moveTo(...at(point)) : context.lineTo(...at(point))));
      if (closed) context.closePath();
    };
    const outline = (points, closed) => {
      context.lineCap = "round";
      context.lineJoin = "round";
      for (const [colour, width] of [[LINE_EDGE, 7], [LINE_COLOUR, 3]]) {
        context.strokeStyle = colour;
        context.lineWidth = width;
        trace(points, closed);
        context.stroke();
      }
    };
    if (zone) {
      context.fillStyle = ZONE_FILL;
      trace(zone, true);
      context.fill();
      outline(zone, true);
    }
    if (corners) {
      outline(this.pointerAt ? [...corners, this.pointerAt] : corners, false);
      for (const corner of corners) {
        context.beginPath();
        context.arc(...at(corner), 4, 0, 2 * Math.PI);
        context.fillStyle = LINE_COLOUR;
        context.fill();
        context.lineWidth = 2;
        context.strokeStyle = LINE_EDGE;
        context.stroke();
      }
    }
    if (line) outline([line.start, line.end], false);
  }
}
