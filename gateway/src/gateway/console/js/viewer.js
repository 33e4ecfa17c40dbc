// One image with its detections drawn over it. Boxes are absolutely positioned elements in
// percent of the image's size, so they follow the image at any width; the confidence slider
// and the class filter work on the detections already returned, without another request.
// The slider starts at the threshold the request used: below it the server returned nothing,
// so moving under it offers to run the detection again at the lower threshold.
// The slider stands for the request's `confidence`: a class the request gave its own minimum
// score (ADR 0050, `person:0.6,car:0.15`) was kept from that score in place of it, so the
// slider neither hides its objects (a car at 0.15 stays at 0.25) nor asks to find more.
// Colours come from palette.js, generated from the server's own palette, so a class looks the
// same here as in the annotated image the server draws.
// A stored detection offers "Pixelate people" (ADR 0049): ticked, the image under the boxes is
// the server's with the people it found pixelated (GET /detect/{id}/image?annotated=false&
// redact=person), fetched once with the session as a blob; unticked, the image as it was.
// Someone the model missed is not covered, and the hint beside the toggle says so.
// The regions of interest a detection made here asked for (ADR 0053) are outlined over the
// image, dashed, in percent of its size as the boxes are: what stands outside was not kept.

import { request } from "./api.js";
import { ownMinimum } from "./class-confidence.js";
import { byId, el, plural } from "./dom.js";
import { describeError } from "./messages.js";
import { classColour } from "./palette.js";

// The class "Pixelate people" asks the server to pixelate.
const PEOPLE = "person";

/** What the console asks for when the user has not chosen: the API's own default. */
export const DEFAULT_THRESHOLD = 0.25;

/** The fields the console uses, from a detect response or a stored detection. */
export function normaliseResult(raw) {
  const result = raw.result ?? raw;
  const image = result.image ?? {};
  const detections = result.detections ?? result.objects ?? [];
  return {
    id: raw.detection_id ?? raw.id ?? result.detection_id ?? null,
    filename: raw.filename ?? result.filename ?? image.filename ?? "",
    width: image.width ?? result.width ?? 0,
    height: image.height ?? result.height ?? 0,
    timings: result.timings ?? null,
    cached: Boolean(raw.cached ?? result.cached),
    detections: detections.map((item) => {
      const box = item.bbox ?? item.box ?? item;
      return {
        className: String(item.class ?? item.class_name ?? item.class_id ?? "object"),
        classId: item.class_id ?? -1,
        confidence: Number(item.confidence ?? 0),
        x1: Number(box.x1 ?? 0),
        y1: Number(box.y1 ?? 0),
        x2: Number(box.x2 ?? 0),
        y2: Number(box.y2 ?? 0),
      };
    }),
  };
}

/** The colour of a class's boxes (by its id, or by its name when it has none). */
export function colourFor(classId, className) {
  const seed = classId >= 0 ? classId : [...className].reduce((sum, c) => sum + c.charCodeAt(0), 0);
  return classColour(seed);
}

/** Black or white, whichever reads better on the hex colour `background`. */
export function readableOn(background) {
  const [r, g, b] = [1, 3, 5].map((start) => Number.parseInt(background.slice(start, start + 2), 16) / 255);
  const linear = (c) => (c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4);
  const luminance = 0.2126 * linear(r) + 0.7152 * linear(g) + 0.0722 * linear(b);
  return luminance > 0.18 ? "#111" : "#fff";
}

function overlaps(a, b) {
  return a.left < b.right && b.left < a.right && a.top < b.bottom && b.top < a.bottom;
}

// Where a label may sit, in order of preference: above the box, inside its top, below it,
// inside its bottom (classes in console.css).
const LABEL_PLACES = ["", "label-inside", "label-below", "label-inside-bottom"];

const SVG = "http://www.w3.org/2000/svg";

function percent(value, total) {
  return `${total > 0 ? (100 * value) / total : 0}%`;
}

export class Viewer {
  constructor() {
    this.stage = byId("stage");
    this.image = byId("stage-image");
    this.boxes = byId("boxes");
    this.regions = byId("stage-regions");
    this.slider = byId("confidence");
    this.sliderValue = byId("confidence-value");
    this.classList = byId("class-filter-options");
    this.summary = byId("shown-count");
    this.tableBody = byId("detections-body");
    this.rerunButton = byId("rerun");
    this.thresholdNote = byId("threshold-note");
    this.redaction = byId("stage-redaction");
    this.redactToggle = byId("stage-redact");
    this.redactProblem = byId("stage-redact-error");
    this.result = null;
    this.threshold = DEFAULT_THRESHOLD;
    // The request's per-class minimum scores (class-confidence.js): lower-case name or id -> score.
    this.classMinimums = new Map();
    this.hiddenClasses = new Set();
    // The image as given (not pixelated), its caption, and the pixelated one once fetched.
    this.imageUrl = null;
    this.caption = "";
    this.pixelatedUrl = null;
    // Bumped whenever another result is shown: a late pixelated image of the previous is dropped.
    this.generation = 0;
    this.slider.addEventListener("input", () => this.draw());
    this.redactToggle.addEventListener("change", () => this.showImage());
    // Labels are placed once the image has its size on screen, and again when it changes.
    this.image.addEventListener("load", () => this.layoutLabels());
    new ResizeObserver(() => this.layoutLabels()).observe(this.stage);
  }

  /**
   * Show `result` (normalised) over the image at `imageUrl`; resets the class filter.
   * `threshold` is the minimum confidence the request asked for: the slider starts there.
   * `classMinimums` are the classes it gave their own minimum score: the slider leaves them be.
   * `regions` are the regions of interest it asked for, their corners in percent: outlined.
   */
  show(result, imageUrl, caption, { threshold = DEFAULT_THRESHOLD, classMinimums = new Map(), regions = [] } = {}) {
    this.result = result;
    this.showRegions(regions);
    this.threshold = threshold;
    this.classMinimums = classMinimums;
    this.slider.value = String(threshold);
    this.hiddenClasses = new Set();
    this.forgetPixelated();
    this.imageUrl = imageUrl;
    this.caption = caption;
    // Only a stored detection has an image on the server to pixelate.
    this.redaction.hidden = !result.id;
    this.setImage(imageUrl, false);
    byId("viewer-title").textContent = caption;
    this.buildClassFilter();
    this.draw();
  }

  /** Forget the shown result (after sign-out). */
  clear() {
    this.result = null;
    this.classMinimums = new Map();
    this.forgetPixelated();
    this.imageUrl = null;
    this.redaction.hidden = true;
    this.image.removeAttribute("src");
    this.image.alt = "";
    this.showRegions([]);
    for (const node of [this.boxes, this.classList, this.tableBody, this.summary]) node.replaceChildren();
  }

  /** Outline `polygons` ([[x, y], …] in percent of the image) over it; none: nothing. */
  showRegions(polygons) {
    this.regions.replaceChildren(
      ...polygons.map((corners) => {
        const polygon = document.createElementNS(SVG, "polygon");
        polygon.setAttribute("points", corners.map(([x, y]) => `${x},${y}`).join(" "));
        polygon.dataset.testid = "region";
        return polygon;
      }),
    );
    // An <svg> has no `hidden` property: the attribute, which console.css hides.
    this.regions.toggleAttribute("hidden", polygons.length === 0);
  }

  /** The image's query for a download drawn by the server: pixelated as on show. */
  redactQuery() {
    return this.redactToggle.checked && this.result?.id ? { redact: PEOPLE } : {};
  }

  /** Back to the image as given: the toggle unticked, its pixelated image released. */
  forgetPixelated() {
    this.generation += 1;
    if (this.pixelatedUrl) URL.revokeObjectURL(this.pixelatedUrl);
    this.pixelatedUrl = null;
    this.redactToggle.checked = false;
    this.redactToggle.disabled = false;
    this.sayRedactProblem("");
  }

  sayRedactProblem(text) {
    this.redactProblem.textContent = text;
    this.redactProblem.hidden = !text;
  }

  setImage(url, pixelated) {
    this.image.src = url;
    this.image.dataset.pixelated = String(pixelated);
    const objects = plural(this.result?.detections.length ?? 0, "detected object");
    this.image.alt = `${this.caption}: ${objects}${pixelated ? ", the people found pixelated" : ""}`;
  }

  /** The image as "Pixelate people" asks: the server's pixelated one (fetched once), or as given. */
  async showImage() {
    const id = this.result?.id;
    if (!id) return;
    this.sayRedactProblem("");
    if (!this.redactToggle.checked) {
      this.setImage(this.imageUrl, false);
      return;
    }
    if (!this.pixelatedUrl) {
      const generation = this.generation;
      this.redactToggle.disabled = true;
      let blob;
      try {
        blob = await request(`api/v1/detect/${encodeURIComponent(id)}/image`, {
          query: { annotated: "false", redact: PEOPLE },
          as: "blob",
        });
      } catch (error) {
        if (generation !== this.generation) return;
        this.redactToggle.checked = false;
        this.sayRedactProblem(`The pixelated image could not be loaded. ${describeError(error)}`);
        return;
      } finally {
        if (generation === this.generation) this.redactToggle.disabled = false;
      }
      if (generation !== this.generation) return;
      this.pixelatedUrl = URL.createObjectURL(blob);
    }
    this.setImage(this.pixelatedUrl, true);
  }

  buildClassFilter() {
    const counts = new Map();
    for (const detection of this.result.detections) {
      counts.set(detection.className, (counts.get(detection.className) ?? 0) + 1);
    }
    const classes = [...counts.entries()].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]));
    this.classList.replaceChildren(
      ...classes.map(([name, count]) => {
        const id = `class-${name.replace(/[^a-z0-9]+/gi, "-")}`;
        const checkbox = el("input", {
          type: "checkbox",
          id,
          checked: true,
          "data-testid": "class-toggle",
          "data-class": name,
          onchange: (event) => {
            if (event.target.checked) this.hiddenClasses.delete(name);
            else this.hiddenClasses.add(name);
            this.draw();
          },
        });
        return el("li", {}, checkbox, el("label", { for: id }, `${name} (${count})`));
      }),
    );
    if (classes.length === 0) this.classList.append(el("li", {}, "No objects found."));
  }

  /** The objects the slider and the class filter keep; a class with its own minimum score is
   * kept from that score (the server applied it), whatever the slider says. */
  visibleDetections() {
    const minimum = Number(this.slider.value);
    return this.result.detections.filter(
      (d) =>
        d.confidence >= (ownMinimum(this.classMinimums, d.className, d.classId) ?? minimum) &&
        !this.hiddenClasses.has(d.className),
    );
  }

  /** `; person from 0.6, car from 0.15, their own minimums` when the request gave any. */
  ownMinimumsText() {
    const pairs = [...this.classMinimums.entries()].map(([name, score]) => `${name} from ${score}`);
    if (pairs.length === 0) return "";
    return `; ${pairs.join(", ")}, ${pairs.length === 1 ? "its own minimum" : "their own minimums"}`;
  }

  draw() {
    if (!this.result) return;
    const { width, height } = this.result;
    const minimum = Number(this.slider.value);
    this.sliderValue.textContent = minimum.toFixed(2);
    // Under the request's threshold the server dropped what it found: offer to look again.
    const below = minimum < this.threshold - 1e-9;
    this.rerunButton.hidden = !below;
    this.rerunButton.textContent = `Detect again from ${minimum.toFixed(2)}`;
    this.thresholdNote.textContent = below
      ? `Objects under ${this.threshold.toFixed(2)} were not returned; detect again to see them.`
      : `Detected from confidence ${this.threshold.toFixed(2)}${this.ownMinimumsText()}.`;
    const visible = this.visibleDetections();
    this.boxes.replaceChildren(
      ...visible.map((d) => {
        const label = el("span", { className: "box-label" }, `${d.className} ${d.confidence.toFixed(2)}`);
        const box = el(
          "div",
          {
            className: "box",
            "data-testid": "box",
            "data-class": d.className,
            "data-confidence": d.confidence.toFixed(4),
          },
          label,
        );
        box.style.left = percent(d.x1, width);
        box.style.top = percent(d.y1, height);
        box.style.width = percent(d.x2 - d.x1, width);
        box.style.height = percent(d.y2 - d.y1, height);
        const colour = colourFor(d.classId, d.className);
        box.style.setProperty("--box-colour", colour);
        box.style.setProperty("--label-text", readableOn(colour));
        return box;
      }),
    );
    this.layoutLabels();
    this.tableBody.replaceChildren(
      ...visible.map((d) =>
        el(
          "tr",
          {},
          el("td", {}, d.className),
          el("td", {}, d.confidence.toFixed(2)),
          el("td", {}, `${Math.round(d.x1)}, ${Math.round(d.y1)} – ${Math.round(d.x2)}, ${Math.round(d.y2)}`),
        ),
      ),
    );
    const total = this.result.detections.length;
    const timing = this.result.timings?.total_ms;
    this.summary.textContent =
      `Showing ${visible.length} of ${plural(total, "object")}` +
      (typeof timing === "number" ? ` · detected in ${Math.round(timing)} ms` : "") +
      (this.result.cached ? " · from the result cache" : "");
    this.summary.dataset.shown = String(visible.length);
  }

  /**
   * Keep every label inside the image and off the others: each, most confident first, takes
   * the first place (above, inside, below) that overlaps no label placed before it, and is
   * slid sideways when it would run past an edge. With no free place it stays above its box.
   */
  layoutLabels() {
    const stage = this.stage.getBoundingClientRect();
    if (!stage.width || !stage.height) return;
    const placed = [];
    for (const label of this.boxes.querySelectorAll(".box-label")) {
      const box = label.parentElement;
      label.style.transform = "";
      let chosen = null;
      for (const place of LABEL_PLACES) {
        box.classList.remove(...LABEL_PLACES.filter(Boolean));
        if (place) box.classList.add(place);
        let rect = label.getBoundingClientRect();
        const shift = Math.max(stage.left - rect.left, Math.min(0, stage.right - rect.right));
        label.style.transform = shift ? `translateX(${shift}px)` : "";
        rect = label.getBoundingClientRect();
        const inside = rect.top >= stage.top - 0.5 && rect.bottom <= stage.bottom + 0.5;
        if (inside && !placed.some((other) => overlaps(rect, other))) {
          chosen = rect;
          break;
        }
      }
      if (!chosen) {
        box.classList.remove(...LABEL_PLACES.filter(Boolean));
        const rect = label.getBoundingClientRect();
        const shift = Math.max(stage.left - rect.left, Math.min(0, stage.right - rect.right));
        label.style.transform = shift ? `translateX(${shift}px)` : "";
        chosen = label.getBoundingClientRect();
      }
      placed.push(chosen);
    }
  }
}
