// Scoring a finished batch job against ground truth (ADR 0054), on the job's page: the
// "Evaluate against labels" section sends a labels file (a zip of YOLO label files, laid out
// as the job's own YOLO export, or a COCO JSON file; the server tells which from the content)
// to POST /detect/jobs/{id}/evaluation as the multipart field `labels`, and shows what it
// answers: the mAP over IoU 0.5 to 0.95, at 0.5 and at 0.75, precision and recall at IoU 0.5,
// how many images were scored, one row per class, and notes on what could not be scored
// (images with no labels, label entries naming no image of the job, classes the model lacks).
// It shows the operating point too: the best F1 at IoU 0.5 and the confidence that reaches
// it, overall and per class, and the per-class minimum scores that reach each class's best
// (`suggested_class_confidence`, the shape of the detect routes' `class_confidence`, ADR 0050),
// which "Use for my next detection" puts in the Detect view's per-class minimum scores.
// Below the per-class table, "Threshold": the answer's `curve` (every class) or a class's, the
// precision, recall and F1 at IoU 0.5 of keeping only the detections scoring at least each
// confidence, from the job's lowest up in hundredths, a point listed only where what is kept
// changes: a step function, drawn as one (a value holds until the next point's confidence), as
// an SVG chart whose three lines differ in dash as well as colour. A range input picks a
// threshold (it starts at the curve's best F1) and a readout says that point's scores; with a
// class picked, "Use this threshold for <class>" puts `<class>:<threshold>` in the Detect
// view's per-class minimum scores as the suggestion's button does (the general confidence is
// another field, so "Every class" offers none). Hidden when the curve is empty: no ground
// truth, no detection, or a server from before curves.
// Below that, "Mistakes": the confusion matrix's cells off its diagonal
// (`confusions` where `actual` differs from `predicted`; null, shown as "nothing", is a missed
// object or a detection where nothing was labelled), most frequent first as the API lists
// them, at most MISTAKE_ROWS of them and a line that says how many more; hidden with none.
// A finished video job's page offers the same section for its sampled frames: the hint says
// which labels a video takes (MOTChallenge's gt.txt, alone or in a zip as CVAT's MOT 1.1 export
// lays it out, or YOLO or COCO entries named by frame number from 0, `frame_000042.txt`), and
// the answer (`job_kind` "video") counts frames where a batch's counts images, and says how
// many sampled frames fell outside the frames the labels cover (`frames_outside_labels`, not
// scored). A tracked job scored against labels with identities (MOT) has `tracking`: a
// "Tracking" part shows its MOTA, IDF1, MOTP, identity switches, fragmentations and how many
// labelled identities were mostly tracked, partly tracked or mostly lost, and the per-class
// table gains MOTA and IDF1 columns ("–" for a class without them).
// A job that ran what another job stored again (`rerun_of`, ADR 0058) offers, once scored, to
// score that job against the same labels file: "Compared with the job this ran again" sets the
// two side by side, the summary's scores (MOTA and IDF1 for two tracked videos) and each class's
// AP50-95, with this job's change.
// Nothing is stored: the same file gives the same answer again. A refusal (a bad line, a
// labels file that is neither a zip nor JSON) is shown in the page's alert region.

import { request } from "./api.js";
import { parseClassConfidence } from "./class-confidence.js";
import { byId, el, guarded, onSubmit, plural, showRows, submitting } from "./dom.js";

const COLUMNS = 9;
// The per-class table's columns added for a tracked video job's answer, after the others.
export const TRACKING_COLUMNS = [
  { key: "mota", label: "MOTA" },
  { key: "idf1", label: "IDF1" },
];
// The most mistakes listed; the rest are counted in a line below the table.
export const MISTAKE_ROWS = 10;
// What a null class in a confusion is shown as: no labelled object, or no detection.
const NOTHING = "nothing";
// A score the API gives as null: a class without ground truth has no AP, one without
// detections no precision.
const NO_SCORE = "–";
// The summary's scores, in the order they are shown.
export const SCORES = [
  { key: "map50_95", label: "mAP50-95" },
  { key: "map50", label: "mAP50" },
  { key: "map75", label: "mAP75" },
  { key: "precision", label: "Precision" },
  { key: "recall", label: "Recall" },
];
const LABEL_FORMATS = { yolo: "YOLO labels", coco: "COCO JSON", mot: "MOTChallenge labels" };
// What the labels file picker says and takes, by the kind of job on show.
const PICKER = {
  batch: { label: "Labels file (.zip or .json)", accept: ".zip,.json", hint: "job-evaluation-hint" },
  video: { label: "Labels file (gt.txt, .zip or .json)", accept: ".txt,.zip,.json", hint: "job-evaluation-video-hint" },
};
// The threshold curve's lines, in the order drawn: each has its own dash as well as its own
// colour (console.css), so they can be told apart without colour; "" is a solid line.
export const CURVE_SERIES = [
  { key: "precision", label: "Precision", dash: "" },
  { key: "recall", label: "Recall", dash: "7 4" },
  { key: "f1", label: "F1", dash: "2 3" },
];
// The chart in its own units (it scales to the width it is given), and its plot's margins:
// the legend above, the y axis's labels to the left, the x axis's below.
const CHART = { width: 400, height: 240, left: 34, right: 12, top: 30, bottom: 36 };
const SVG_NS = "http://www.w3.org/2000/svg";

/** A score from 0 to 1 with three decimals ("0.612"), or "–" for null. */
export function scoreText(value) {
  return value === null || value === undefined ? NO_SCORE : Number(value).toFixed(3);
}

/**
 * A confidence threshold with two to four decimals ("0.41", "0.4123"), rounded down so that
 * the detections scoring it still pass "≥" it, or "–" for null.
 */
export function confidenceText(value) {
  if (value === null || value === undefined) return NO_SCORE;
  const number = Number(value);
  let tenThousandths = Math.floor(number * 10_000);
  // 0.57 × 10 000 is 5699.99…: a step up that reads back as no more than the value still
  // passes "≥" it, and the curve's hundredths would otherwise show as 0.5699.
  if ((tenThousandths + 1) / 10_000 <= number) tenThousandths += 1;
  return (tenThousandths / 10_000).toFixed(4).replace(/0{1,2}$/, "");
}

/**
 * The suggested per-class minimum scores (`{"person": 0.4123}`) as the Detect view's field
 * writes them (`person:0.4123, dog:0.3311`); "" when there are none, or when a class name
 * cannot be written there (a comma in it), so nothing is offered that the field would misread.
 */
export function classConfidenceText(suggested) {
  const entries = Object.entries(suggested ?? {});
  if (entries.length === 0) return "";
  const text = entries.map(([name, value]) => `${name}:${value}`).join(", ");
  try {
    return parseClassConfidence(text).minimums.size === entries.length ? text : "";
  } catch {
    return "";
  }
}

/**
 * The point of `curve` (ascending confidences) in force at the threshold `confidence`: the last
 * whose confidence is at most it, as a point holds until the next one's; null below the first,
 * where the curve says nothing (the job kept nothing scoring less).
 */
export function pointAt(curve, confidence) {
  let found = null;
  for (const point of curve ?? []) {
    if (point.confidence > confidence) break;
    found = point;
  }
  return found;
}

/** The point of `curve` with the best F1, the higher threshold on a tie (as the API picks
 * `f1_confidence`); null for an empty curve. */
export function bestPoint(curve) {
  let best = null;
  for (const point of curve ?? []) {
    if (best === null || point.f1 >= best.f1) best = point;
  }
  return best;
}

/**
 * A change between two scores as the comparison shows it: signed, three decimals ("+0.012",
 * "−0.034", "0.000"), or "–" when either score is null (nothing to score on one side).
 */
export function changeText(before, after) {
  if (before === null || before === undefined || after === null || after === undefined) return NO_SCORE;
  const change = Number(after) - Number(before);
  const text = Math.abs(change).toFixed(3);
  if (text === "0.000") return text;
  return change > 0 ? `+${text}` : `−${text}`;
}

/**
 * The comparison's rows, `{label, before, after}`: the summary's scores, MOTA and IDF1 when
 * both scored tracking, then the AP50-95 of each class either answer scored (the earlier job's
 * classes first, in its order), a class neither has an AP for left out.
 */
export function comparisonRows(before, after) {
  const rows = SCORES.map(({ key, label }) => ({ label, before: before[key] ?? null, after: after[key] ?? null }));
  // Two tracked video jobs: their tracking's headline scores too.
  if (before.tracking && after.tracking) {
    rows.push(
      ...TRACKING_COLUMNS.map(({ key, label }) => ({
        label,
        before: before.tracking[key] ?? null,
        after: after.tracking[key] ?? null,
      })),
    );
  }
  const classes = new Map();
  for (const [side, result] of [["before", before], ["after", after]]) {
    for (const scored of result.classes ?? []) {
      const name = scored.class_name || `class ${scored.class_id}`;
      const row = classes.get(name) ?? { label: `${name} AP50-95`, before: null, after: null };
      row[side] = scored.ap50_95 ?? null;
      classes.set(name, row);
    }
  }
  return [...rows, ...[...classes.values()].filter((row) => row.before !== null || row.after !== null)];
}

/** What the readout says of the threshold `confidence` on `curve`. */
export function thresholdText(curve, confidence) {
  const point = pointAt(curve, confidence);
  if (!point) return "";
  return (
    `At confidence ≥ ${confidenceText(confidence)}: precision ${scoreText(point.precision)}, ` +
    `recall ${scoreText(point.recall)}, F1 ${scoreText(point.f1)}`
  );
}

/**
 * Where the last point of `curve` is drawn to: the next hundredth above it (at most 1). The
 * curve's thresholds are hundredths and it lists a point only where what is kept changes, so
 * the last one holds at least that far; what lies beyond (the same, or nothing kept) it does
 * not say.
 */
export function curveEnd(curve) {
  const last = curve[curve.length - 1].confidence;
  return Math.min(1, (Math.floor(last * 100 + 1e-6) + 1) / 100);
}

/**
 * The SVG path data of `key` (precision, recall or f1) on `curve` as a step function, `x` and
 * `y` mapping a confidence and a score to the chart: level from a point's confidence to the
 * next one's, then straight up or down to the next value.
 */
export function stepPath(curve, key, x, y) {
  if (curve.length === 0) return "";
  const end = curveEnd(curve);
  return curve
    .map((point, index) => {
      const next = index + 1 < curve.length ? curve[index + 1].confidence : end;
      const start = index === 0 ? `M${x(point.confidence)},${y(point[key])}` : `V${y(point[key])}`;
      return `${start} H${x(next)}`;
    })
    .join(" ");
}

/** An SVG element, as `el` makes HTML ones: attributes and text set as text, never markup. */
function svg(tag, attributes = {}, ...children) {
  const node = document.createElementNS(SVG_NS, tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value !== undefined && value !== null && value !== "") node.setAttribute(name, String(value));
  }
  node.append(...children);
  return node;
}

/** A chart coordinate, to a hundredth of its unit: shorter path data, the same drawing. */
function coordinate(value) {
  return Math.round(value * 100) / 100;
}

/** An axis label: a tick's value with no more decimals than it needs ("0.4", "1"). */
function tickText(value) {
  return String(Number(value.toFixed(3)));
}

/** The x axis's ticks from `lowest` to 1: `lowest` itself, then round values a readable step apart. */
function confidenceTicks(lowest) {
  const span = 1 - lowest;
  const step = span > 0.5 ? 0.2 : span > 0.2 ? 0.1 : 0.05;
  const ticks = [lowest];
  for (let index = Math.ceil(lowest / step); index * step <= 1 + 1e-9; index += 1) {
    // Too close to `lowest` and the two labels would overlap.
    if (index * step > lowest + step / 2) ticks.push(index * step);
  }
  return ticks;
}

/** The confusions that are mistakes (the class labelled is not the class detected), in the
 * API's order. */
export function mistakes(result) {
  return (result.confusions ?? []).filter((cell) => (cell.actual ?? null) !== (cell.predicted ?? null));
}

/** What the answer's counts count: a video job's sampled frames, or a batch job's images. */
export function unitOf(result) {
  return result.job_kind === "video" ? "frame" : "image";
}

/** Sentences on what the scores leave out; none when everything was scored. */
export function evaluationNotes(result) {
  const notes = [];
  const unit = unitOf(result);
  const withoutLabels = result.images_without_labels ?? 0;
  if (withoutLabels > 0) {
    notes.push(
      `${plural(withoutLabels, unit)} of the job had no labels: ` +
        `${withoutLabels === 1 ? "it was" : "they were"} scored as holding no objects.`,
    );
  }
  // A video's sampled frames before the first or after the last frame the labels cover.
  const outside = result.frames_outside_labels ?? 0;
  if (outside > 0) {
    notes.push(
      `${plural(outside, "sampled frame")} outside the labelled frames ` +
        `${outside === 1 ? "was" : "were"} not scored.`,
    );
  }
  const unmatched = result.unmatched_label_count ?? 0;
  if (unmatched > 0) {
    const listed = result.unmatched_labels ?? [];
    const more = unmatched > listed.length ? ` and ${unmatched - listed.length} more` : "";
    const entries = unmatched === 1 ? "1 label entry names" : `${unmatched} label entries name`;
    notes.push(
      `${entries} no ${unit} of this job, so ${unmatched === 1 ? "it was" : "they were"} not scored: ` +
        `${listed.join(", ")}${more}.`,
    );
  }
  const unknown = result.unknown_classes ?? [];
  if (unknown.length > 0) {
    const one = unknown.length === 1;
    const names = unknown.map((name) => `“${name}”`).join(", ");
    notes.push(
      `The model has no ${one ? "class" : "classes"} ${names}: ` +
        `${one ? "its" : "their"} labelled objects were not scored.`,
    );
  }
  return notes;
}

/** The labelled identities and how they fared: "3 labelled: 2 mostly tracked, 1 partly tracked,
 * 0 mostly lost". */
function identitiesText(tracking) {
  const tracks = tracking.ground_truth_tracks;
  return (
    `${tracks} labelled: ${tracking.mostly_tracked} mostly tracked, ` +
    `${tracking.partially_tracked} partly tracked, ${tracking.mostly_lost} mostly lost`
  );
}

/**
 * A tracked video job's tracking scores as the "Tracking" part lists them: `{key, label, text}`
 * each, `key` the answer's field (or "identities" for the mostly tracked, partly tracked and
 * mostly lost of the labelled identities); none without `tracking`.
 */
export function trackingScores(tracking) {
  if (!tracking) return [];
  return [
    { key: "mota", label: "MOTA", text: scoreText(tracking.mota) },
    { key: "idf1", label: "IDF1", text: scoreText(tracking.idf1) },
    { key: "motp", label: "MOTP (mean IoU)", text: scoreText(tracking.motp) },
    { key: "id_switches", label: "ID switches", text: String(tracking.id_switches) },
    { key: "fragmentations", label: "Fragmentations", text: String(tracking.fragmentations) },
    { key: "identities", label: "Identities", text: identitiesText(tracking) },
    { key: "misses", label: "Missed objects", text: String(tracking.misses) },
    { key: "false_positives", label: "False detections", text: String(tracking.false_positives) },
  ];
}

/** Whether the answer scored tracking: overall, or for any class. */
export function hasTracking(result) {
  return Boolean(result.tracking) || (result.classes ?? []).some((scored) => Boolean(scored.tracking));
}

/** A confusion's class name, or a muted "nothing" for null. */
function classCell(name) {
  return name === null || name === undefined ? el("span", { className: "muted" }, NOTHING) : name;
}

export class JobEvaluation {
  /** `onUse(text)`: put `text` (`person:0.4123, dog:0.3311`) in the Detect view's per-class
   * minimum scores, for the next detection. */
  constructor({ onUse } = {}) {
    this.section = byId("job-evaluation");
    this.form = byId("job-evaluation-form");
    this.file = byId("job-evaluation-labels");
    this.fileLabel = byId("job-evaluation-labels-label");
    this.hints = { batch: byId("job-evaluation-hint"), video: byId("job-evaluation-video-hint") };
    this.result = byId("job-evaluation-result");
    this.summary = byId("job-evaluation-summary");
    this.scores = byId("job-evaluation-scores");
    this.notes = byId("job-evaluation-notes");
    this.tracking = byId("job-evaluation-tracking");
    this.trackingScores = byId("job-evaluation-tracking-scores");
    this.head = byId("job-evaluation-head");
    this.body = byId("job-evaluation-body");
    this.curve = byId("job-evaluation-curve");
    this.curveClass = byId("job-evaluation-curve-class");
    this.chart = byId("job-evaluation-curve-chart");
    this.threshold = byId("job-evaluation-curve-threshold");
    this.readout = byId("job-evaluation-curve-readout");
    this.curveUse = byId("job-evaluation-curve-use");
    this.mistakes = byId("job-evaluation-mistakes");
    this.mistakesBody = byId("job-evaluation-mistakes-body");
    this.mistakesMore = byId("job-evaluation-mistakes-more");
    this.suggestion = byId("job-evaluation-suggestion");
    this.suggestionIntro = byId("job-evaluation-suggestion-text");
    this.suggested = byId("job-evaluation-suggested");
    this.use = byId("job-evaluation-use");
    this.compare = byId("job-evaluation-compare");
    this.compareRun = byId("job-evaluation-compare-run");
    this.compareTable = this.compare.querySelector("table");
    this.compareHead = byId("job-evaluation-compare-head");
    this.compareBody = byId("job-evaluation-compare-body");
    // The job the one on show ran again (null: none), the labels file last scored and the
    // answer for it: what a comparison sends and sets beside the other job's.
    this.rerunOf = null;
    this.labels = null;
    this.shownResult = null;
    // The suggestion on show, as the Detect view's field writes it ("": none to use).
    this.suggestionText = "";
    // The curves the picker offers, in its order: `{name, label, curve}`, `name` as the Detect
    // view's field takes the class (null for every class), `label` as the picker shows it.
    this.curves = [];
    // The curve on show, where its chart puts a confidence across, and the marker line there
    // for the threshold.
    this.shownCurve = null;
    this.chartX = null;
    this.marker = null;
    // The picked threshold for the picked class, as the Detect view's field writes it ("":
    // every class, or nothing that field can take).
    this.curveUseText = "";
    // The job on show that can be scored (null: none, or one still running), and its kind
    // ("batch" or "video": what labels the picker asks for).
    this.jobId = null;
    this.kind = "batch";
    // Bumped whenever the job on show changes: an answer about the previous one is dropped.
    this.generation = 0;
    onSubmit(this.form, () => this.evaluate());
    this.use.addEventListener("click", () => {
      if (this.suggestionText) onUse?.(this.suggestionText);
    });
    this.chart.setAttribute("viewBox", `0 0 ${CHART.width} ${CHART.height}`);
    this.curveClass.addEventListener("change", () => this.showCurve(Number(this.curveClass.value)));
    this.threshold.addEventListener("input", () => this.showThreshold());
    this.curveUse.addEventListener("click", () => {
      if (this.curveUseText) onUse?.(this.curveUseText);
    });
    this.compareRun.addEventListener("click", () => this.compareWithRerunSource());
  }

  /** Offer to score the job `id` of `kind` ("batch" or "video"; null `id`: hide the section);
   * `rerunOf`: the job it ran again, offered for a comparison once this one is scored. */
  show(id, kind = "batch", rerunOf = null) {
    if (id !== this.jobId) {
      this.reset();
      this.jobId = id;
    }
    this.rerunOf = rerunOf;
    this.showPicker(kind === "video" ? "video" : "batch");
    this.section.hidden = !id;
  }

  /** The picker's label, the files it takes and the hint it points to, for a `kind` of job. */
  showPicker(kind) {
    this.kind = kind;
    const picker = PICKER[kind];
    this.fileLabel.textContent = picker.label;
    this.file.accept = picker.accept;
    this.file.setAttribute("aria-describedby", picker.hint);
    for (const [name, hint] of Object.entries(this.hints)) hint.hidden = name !== kind;
  }

  /** No job on show any more (it left the page, or the account signed out). */
  reset() {
    this.generation += 1;
    this.jobId = null;
    this.section.hidden = true;
    this.form.reset();
    this.clearResult();
  }

  clearResult() {
    this.result.hidden = true;
    this.summary.textContent = "";
    this.scores.replaceChildren();
    this.notes.replaceChildren();
    this.tracking.hidden = true;
    this.trackingScores.replaceChildren();
    this.showTrackingColumns(false);
    this.body.replaceChildren();
    this.curve.hidden = true;
    this.curves = [];
    this.shownCurve = null;
    this.chartX = null;
    this.marker = null;
    this.curveClass.replaceChildren();
    this.chart.replaceChildren();
    this.chart.removeAttribute("aria-label");
    this.readout.textContent = "";
    this.curveUseText = "";
    this.curveUse.hidden = true;
    this.mistakes.hidden = true;
    this.mistakesBody.replaceChildren();
    this.mistakesMore.hidden = true;
    this.mistakesMore.textContent = "";
    this.suggestion.hidden = true;
    this.suggested.textContent = "";
    this.suggestionText = "";
    this.use.hidden = true;
    this.shownResult = null;
    this.clearComparison();
    this.compare.hidden = true;
  }

  clearComparison() {
    this.compareTable.hidden = true;
    this.compareHead.replaceChildren();
    this.compareBody.replaceChildren();
  }

  async evaluate() {
    const jobId = this.jobId;
    const labels = this.file.files[0];
    if (!jobId || !labels) return;
    const generation = this.generation;
    const body = new FormData();
    body.append("labels", labels, labels.name);
    this.clearResult();
    this.form.setAttribute("aria-busy", "true");
    let result;
    try {
      result = await submitting(this.form, () =>
        request(`api/v1/detect/jobs/${encodeURIComponent(jobId)}/evaluation`, { method: "POST", body }),
      );
    } finally {
      this.form.removeAttribute("aria-busy");
    }
    if (!result || generation !== this.generation) return;
    this.labels = labels;
    this.render(result);
  }

  /** Score the job this one ran again against the labels just scored, and set both side by
   * side. */
  async compareWithRerunSource() {
    const source = this.rerunOf;
    const after = this.shownResult;
    if (!source || !after || !this.labels) return;
    const generation = this.generation;
    const body = new FormData();
    body.append("labels", this.labels, this.labels.name);
    this.clearComparison();
    const before = await guarded(
      () => request(`api/v1/detect/jobs/${encodeURIComponent(source)}/evaluation`, { method: "POST", body }),
      this.compareRun,
    );
    if (!before || generation !== this.generation || after !== this.shownResult) return;
    this.compareHead.replaceChildren(
      el("th", { scope: "col" }, "Score"),
      el("th", { scope: "col" }, `Job ${source.slice(0, 8)} (${before.model})`),
      el("th", { scope: "col" }, `This job (${after.model})`),
      el("th", { scope: "col" }, "Change"),
    );
    this.compareBody.replaceChildren(
      ...comparisonRows(before, after).map((row) =>
        el(
          "tr",
          { "data-testid": "evaluation-compare-row" },
          el("th", { scope: "row" }, row.label),
          el("td", {}, scoreText(row.before)),
          el("td", {}, scoreText(row.after)),
          el("td", {}, changeText(row.before, row.after)),
        ),
      ),
    );
    this.compareTable.hidden = false;
  }

  render(result) {
    const format = LABEL_FORMATS[result.labels_format] ?? result.labels_format;
    const unit = unitOf(result);
    this.summary.textContent =
      `${plural(result.images, unit)} scored against ${format}: ` +
      `${plural(result.ground_truth, "labelled object")}, ${plural(result.detections, "detection")}. ` +
      `The job kept only detections with confidence ${Number(result.min_confidence).toFixed(2)} or more: ` +
      "objects it found less surely count as missed.";
    this.scores.replaceChildren(
      ...SCORES.flatMap(({ key, label }) => [
        el("dt", {}, label),
        el("dd", { "data-testid": "evaluation-score", dataset: { metric: key } }, scoreText(result[key])),
      ]),
      ...(result.f1 === null || result.f1 === undefined
        ? []
        : [
            el("dt", {}, "Best F1"),
            el(
              "dd",
              { "data-testid": "evaluation-score", dataset: { metric: "f1" } },
              `${scoreText(result.f1)} at confidence ≥ ${confidenceText(result.f1_confidence)}`,
            ),
          ]),
      // mAP50-95 by COCO's object sizes: low on small objects alone, tiling may help.
      ...(result.sizes ?? []).flatMap((row) => [
        el("dt", {}, `mAP50-95, ${row.size} objects`),
        el(
          "dd",
          { "data-testid": "evaluation-score", dataset: { metric: `map50_95_${row.size}` } },
          row.ground_truth ? `${scoreText(row.map50_95)} (${plural(row.ground_truth, "labelled object")})` : "none labelled",
        ),
      ]),
      el("dt", {}, unit === "frame" ? "Frames scored" : "Images scored"),
      el("dd", { "data-testid": "evaluation-score", dataset: { metric: "images" } }, String(result.images)),
    );
    this.notes.replaceChildren(...evaluationNotes(result).map((note) => el("li", {}, note)));
    this.notes.hidden = this.notes.childElementCount === 0;
    this.showTracking(result.tracking);
    const tracked = hasTracking(result);
    this.showTrackingColumns(tracked);
    showRows(
      this.body,
      (result.classes ?? []).map((row) => this.row(row, tracked)),
      COLUMNS + (tracked ? TRACKING_COLUMNS.length : 0),
      "Neither the labels nor the detections hold any object.",
    );
    this.suggestionIntro.textContent =
      `Detect with these per-class minimums for the best F1 on these ${unit}s:`;
    this.showCurves(result);
    this.showMistakes(mistakes(result));
    this.showSuggestion(result.suggested_class_confidence);
    this.shownResult = result;
    // A job made by running another again can be set beside it (ADR 0058).
    this.compare.hidden = !this.rerunOf;
    this.compareRun.textContent = this.rerunOf
      ? `Score job ${this.rerunOf.slice(0, 8)} against the same labels and compare`
      : "";
    this.result.hidden = false;
  }

  /** The "Tracking" part: the answer's overall tracking scores; hidden without them. */
  showTracking(tracking) {
    this.trackingScores.replaceChildren(
      ...trackingScores(tracking).flatMap(({ key, label, text }) => [
        el("dt", {}, label),
        el("dd", { "data-testid": "evaluation-tracking-score", dataset: { metric: key } }, text),
      ]),
    );
    this.tracking.hidden = !tracking;
  }

  /** The per-class table's MOTA and IDF1 headers, there only for an answer that scored tracking
   * (a hidden header would still be read as a column). */
  showTrackingColumns(shown) {
    for (const header of this.head.querySelectorAll("th[data-tracking]")) header.remove();
    if (!shown) return;
    this.head.append(
      ...TRACKING_COLUMNS.map(({ key, label }) => el("th", { scope: "col", dataset: { tracking: key } }, label)),
    );
  }

  /** The picker's curves (every class's, then each class's that has points) and the first of
   * them; the whole part hidden when the answer's is empty or absent (a server from before
   * curves). */
  showCurves(result) {
    const overall = result.curve ?? [];
    this.curves =
      overall.length === 0
        ? []
        : [
            { name: null, label: "Every class", curve: overall },
            ...(result.classes ?? [])
              .filter((scored) => (scored.curve ?? []).length > 0)
              .map((scored) => ({
                // The Detect view's field takes a class's id where it has no name.
                name: scored.class_name || String(scored.class_id),
                label: scored.class_name || `class ${scored.class_id}`,
                curve: scored.curve,
              })),
          ];
    this.curveClass.replaceChildren(
      ...this.curves.map(({ label }, index) => el("option", { value: String(index) }, label)),
    );
    this.curve.hidden = this.curves.length === 0;
    if (this.curves.length > 0) this.showCurve(0);
  }

  /** The picker's `index`th curve: its chart, and the threshold at its best F1. */
  showCurve(index) {
    const shown = this.curves[index];
    if (!shown) return;
    this.shownCurve = shown;
    const { curve } = shown;
    const lowest = curve[0].confidence;
    const best = bestPoint(curve);
    this.threshold.min = String(lowest);
    this.threshold.max = String(curve[curve.length - 1].confidence);
    // Off the hundredths (a job's own threshold such as 0.253), steps of 0.01 from it would
    // miss every later point: any value then.
    this.threshold.step = Math.abs(lowest * 100 - Math.round(lowest * 100)) < 1e-6 ? "0.01" : "any";
    this.threshold.value = String(best.confidence);
    this.drawChart(shown, best);
    this.showThreshold();
  }

  /** The readout, marker and "Use" button for the range input's threshold. */
  showThreshold() {
    const shown = this.shownCurve;
    if (!shown) return;
    const value = Number(this.threshold.value);
    this.readout.textContent = thresholdText(shown.curve, value);
    this.threshold.setAttribute("aria-valuetext", `confidence ≥ ${confidenceText(value)}`);
    const x = this.chartX?.(value);
    this.marker?.setAttribute("x1", x);
    this.marker?.setAttribute("x2", x);
    this.curveUseText =
      shown.name === null ? "" : classConfidenceText({ [shown.name]: confidenceText(value) });
    this.curveUse.textContent = shown.name === null ? "" : `Use this threshold for ${shown.label}`;
    this.curveUse.hidden = !this.curveUseText;
  }

  /** `shown`'s precision, recall and F1 against confidence, from its first point to 1, with a
   * legend, a few ticks on each axis and a marker line for the threshold. */
  drawChart(shown, best) {
    const { curve } = shown;
    const lowest = curve[0].confidence;
    const plot = {
      left: CHART.left,
      right: CHART.width - CHART.right,
      top: CHART.top,
      bottom: CHART.height - CHART.bottom,
    };
    // A curve whose one point is at 1 still gets a width to be drawn on.
    const span = Math.max(1 - lowest, 0.01);
    const x = (confidence) => coordinate(plot.left + ((confidence - lowest) / span) * (plot.right - plot.left));
    this.chartX = x;
    const y = (score) => coordinate(plot.bottom - score * (plot.bottom - plot.top));
    const label = (attributes, text) => svg("text", { class: "tick", ...attributes }, text);
    const scoreTicks = [0, 0.25, 0.5, 0.75, 1].flatMap((score) => [
      svg("line", { class: "grid", x1: plot.left, x2: plot.right, y1: y(score), y2: y(score) }),
      label(
        { x: plot.left - 5, y: y(score), "text-anchor": "end", "dominant-baseline": "middle" },
        tickText(score),
      ),
    ]);
    const confidenceTicksDrawn = confidenceTicks(lowest).flatMap((confidence) => [
      svg("line", {
        class: "axis",
        x1: x(confidence),
        x2: x(confidence),
        y1: plot.bottom,
        y2: plot.bottom + 4,
      }),
      label({ x: x(confidence), y: plot.bottom + 15, "text-anchor": "middle" }, tickText(confidence)),
    ]);
    const legend = CURVE_SERIES.map(({ key, label: name, dash }, index) =>
      svg(
        "g",
        { class: `series-${key}`, transform: `translate(${plot.left + index * 100} 12)` },
        svg("line", { class: "line", x1: 0, x2: 24, y1: 0, y2: 0, "stroke-dasharray": dash }),
        svg("text", { class: "legend", x: 30, y: 0, "dominant-baseline": "middle" }, name),
      ),
    );
    const lines = CURVE_SERIES.map(({ key, dash }) =>
      svg("path", {
        class: `line series-${key}`,
        "data-series": key,
        d: stepPath(curve, key, x, y),
        "stroke-dasharray": dash,
      }),
    );
    this.marker = svg("line", { class: "marker", y1: plot.top, y2: plot.bottom });
    this.chart.replaceChildren(
      ...scoreTicks,
      svg("line", { class: "axis", x1: plot.left, x2: plot.right, y1: plot.bottom, y2: plot.bottom }),
      ...confidenceTicksDrawn,
      label(
        { x: (plot.left + plot.right) / 2, y: CHART.height - 3, "text-anchor": "middle" },
        "Confidence threshold",
      ),
      ...legend,
      ...lines,
      this.marker,
    );
    const of = shown.name === null ? "every class" : `“${shown.label}”`;
    this.chart.setAttribute(
      "aria-label",
      `Precision, recall and F1 of ${of} against the confidence threshold, from ` +
        `${confidenceText(lowest)} to 1; the best F1, ${scoreText(best.f1)}, is at confidence ≥ ` +
        `${confidenceText(best.confidence)}.`,
    );
  }

  /** The first MISTAKE_ROWS of `cells` as rows, and how many more there are; hidden with none. */
  showMistakes(cells) {
    const shown = cells.slice(0, MISTAKE_ROWS);
    const more = cells.length - shown.length;
    showRows(this.mistakesBody, shown.map((cell) => this.mistakeRow(cell)), 3, "");
    this.mistakesMore.textContent = more > 0 ? `and ${more} more` : "";
    this.mistakesMore.hidden = more === 0;
    this.mistakes.hidden = cells.length === 0;
  }

  mistakeRow(cell) {
    return el(
      "tr",
      { "data-testid": "evaluation-mistake" },
      el("td", { "data-label": "Labelled" }, classCell(cell.actual)),
      el("td", { "data-label": "Detected as" }, classCell(cell.predicted)),
      el("td", { "data-label": "Count" }, String(cell.count)),
    );
  }

  /** Each class's minimum score for its best F1, as the JSON the API gives, and the button
   * that puts them in the Detect view's field. */
  showSuggestion(suggested) {
    const hasAny = Object.keys(suggested ?? {}).length > 0;
    this.suggestion.hidden = !hasAny;
    this.suggested.textContent = hasAny ? JSON.stringify(suggested) : "";
    this.suggestionText = hasAny ? classConfidenceText(suggested) : "";
    this.use.hidden = !this.suggestionText;
  }

  /** A class's row; `tracked`: with its MOTA and IDF1 ("–" for a class without tracking). */
  row(scored, tracked = false) {
    const name = scored.class_name || `class ${scored.class_id}`;
    return el(
      "tr",
      { "data-testid": "evaluation-class", dataset: { classId: scored.class_id } },
      el("td", { "data-label": "Class" }, name),
      el("td", { "data-label": "Ground truth" }, String(scored.ground_truth)),
      el("td", { "data-label": "Detections" }, String(scored.detections)),
      el("td", { "data-label": "AP50-95" }, scoreText(scored.ap50_95)),
      el("td", { "data-label": "AP50" }, scoreText(scored.ap50)),
      el("td", { "data-label": "Precision" }, scoreText(scored.precision)),
      el("td", { "data-label": "Recall" }, scoreText(scored.recall)),
      el("td", { "data-label": "F1" }, scoreText(scored.f1)),
      el("td", { "data-label": "Best confidence" }, confidenceText(scored.f1_confidence)),
      ...(tracked
        ? TRACKING_COLUMNS.map(({ key, label }) => el("td", { "data-label": label }, scoreText(scored.tracking?.[key])))
        : []),
    );
  }
}
