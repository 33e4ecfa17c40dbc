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
// Below the per-class table, "Mistakes": the confusion matrix's cells off its diagonal
// (`confusions` where `actual` differs from `predicted`; null, shown as "nothing", is a missed
// object or a detection where nothing was labelled), most frequent first as the API lists
// them, at most MISTAKE_ROWS of them and a line that says how many more; hidden with none.
// Nothing is stored: the same file gives the same answer again. A refusal (a bad line, a
// labels file that is neither a zip nor JSON) is shown in the page's alert region.

import { request } from "./api.js";
import { parseClassConfidence } from "./class-confidence.js";
import { byId, el, onSubmit, plural, showRows, submitting } from "./dom.js";

const COLUMNS = 9;
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
const LABEL_FORMATS = { yolo: "YOLO labels", coco: "COCO JSON" };

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
  return (Math.floor(Number(value) * 10_000) / 10_000).toFixed(4).replace(/0{1,2}$/, "");
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

/** The confusions that are mistakes (the class labelled is not the class detected), in the
 * API's order. */
export function mistakes(result) {
  return (result.confusions ?? []).filter((cell) => (cell.actual ?? null) !== (cell.predicted ?? null));
}

/** Sentences on what the scores leave out; none when everything was scored. */
export function evaluationNotes(result) {
  const notes = [];
  const withoutLabels = result.images_without_labels ?? 0;
  if (withoutLabels > 0) {
    notes.push(
      `${plural(withoutLabels, "image")} of the job had no labels: ` +
        `${withoutLabels === 1 ? "it was" : "they were"} scored as holding no objects.`,
    );
  }
  const unmatched = result.unmatched_label_count ?? 0;
  if (unmatched > 0) {
    const listed = result.unmatched_labels ?? [];
    const more = unmatched > listed.length ? ` and ${unmatched - listed.length} more` : "";
    const entries = unmatched === 1 ? "1 label entry names" : `${unmatched} label entries name`;
    notes.push(
      `${entries} no image of this job, so ${unmatched === 1 ? "it was" : "they were"} not scored: ` +
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
    this.result = byId("job-evaluation-result");
    this.summary = byId("job-evaluation-summary");
    this.scores = byId("job-evaluation-scores");
    this.notes = byId("job-evaluation-notes");
    this.body = byId("job-evaluation-body");
    this.mistakes = byId("job-evaluation-mistakes");
    this.mistakesBody = byId("job-evaluation-mistakes-body");
    this.mistakesMore = byId("job-evaluation-mistakes-more");
    this.suggestion = byId("job-evaluation-suggestion");
    this.suggested = byId("job-evaluation-suggested");
    this.use = byId("job-evaluation-use");
    // The suggestion on show, as the Detect view's field writes it ("": none to use).
    this.suggestionText = "";
    // The job on show that can be scored (null: none, or one still running, or a video job).
    this.jobId = null;
    // Bumped whenever the job on show changes: an answer about the previous one is dropped.
    this.generation = 0;
    onSubmit(this.form, () => this.evaluate());
    this.use.addEventListener("click", () => {
      if (this.suggestionText) onUse?.(this.suggestionText);
    });
  }

  /** Offer to score the job `id` (null: hide the section). */
  show(id) {
    if (id !== this.jobId) {
      this.reset();
      this.jobId = id;
    }
    this.section.hidden = !id;
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
    this.body.replaceChildren();
    this.mistakes.hidden = true;
    this.mistakesBody.replaceChildren();
    this.mistakesMore.hidden = true;
    this.mistakesMore.textContent = "";
    this.suggestion.hidden = true;
    this.suggested.textContent = "";
    this.suggestionText = "";
    this.use.hidden = true;
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
    this.render(result);
  }

  render(result) {
    const format = LABEL_FORMATS[result.labels_format] ?? result.labels_format;
    this.summary.textContent =
      `${plural(result.images, "image")} scored against ${format}: ` +
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
      el("dt", {}, "Images scored"),
      el("dd", { "data-testid": "evaluation-score", dataset: { metric: "images" } }, String(result.images)),
    );
    this.notes.replaceChildren(...evaluationNotes(result).map((note) => el("li", {}, note)));
    this.notes.hidden = this.notes.childElementCount === 0;
    showRows(
      this.body,
      (result.classes ?? []).map((row) => this.row(row)),
      COLUMNS,
      "Neither the labels nor the detections hold any object.",
    );
    this.showMistakes(mistakes(result));
    this.showSuggestion(result.suggested_class_confidence);
    this.result.hidden = false;
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

  row(scored) {
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
    );
  }
}
