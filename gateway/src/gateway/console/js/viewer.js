// One image with its detections drawn over it. Boxes are absolutely positioned elements in
// percent of the image's size, so they follow the image at any width; the confidence slider
// and the class filter work on the detections already returned, without another request.
// The slider starts at the threshold the request used: below it the server returned nothing,
// so moving under it offers to run the detection again at the lower threshold.
// Colours come from palette.js, generated from the server's own palette, so a class looks the
// same here as in the annotated image the server draws.

import { byId, el, plural } from "./dom.js";
import { classColour } from "./palette.js";

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

function colourFor(classId, className) {
  const seed = classId >= 0 ? classId : [...className].reduce((sum, c) => sum + c.charCodeAt(0), 0);
  return classColour(seed);
}

/** Black or white, whichever reads better on the hex colour `background`. */
function readableOn(background) {
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

function percent(value, total) {
  return `${total > 0 ? (100 * value) / total : 0}%`;
}

export class Viewer {
  constructor() {
    this.stage = byId("stage");
    this.image = byId("stage-image");
    this.boxes = byId("boxes");
    this.slider = byId("confidence");
    this.sliderValue = byId("confidence-value");
    this.classList = byId("class-filter-options");
    this.summary = byId("shown-count");
    this.tableBody = byId("detections-body");
    this.rerunButton = byId("rerun");
    this.thresholdNote = byId("threshold-note");
    this.result = null;
    this.threshold = DEFAULT_THRESHOLD;
    this.hiddenClasses = new Set();
    this.slider.addEventListener("input", () => this.draw());
    // Labels are placed once the image has its size on screen, and again when it changes.
    this.image.addEventListener("load", () => this.layoutLabels());
    new ResizeObserver(() => this.layoutLabels()).observe(this.stage);
  }

  /**
   * Show `result` (normalised) over the image at `imageUrl`; resets the class filter.
   * `threshold` is the minimum confidence the request asked for: the slider starts there.
   */
  show(result, imageUrl, caption, { threshold = DEFAULT_THRESHOLD } = {}) {
    this.result = result;
    this.threshold = threshold;
    this.slider.value = String(threshold);
    this.hiddenClasses = new Set();
    this.image.src = imageUrl;
    this.image.alt = `${caption}: ${plural(result.detections.length, "detected object")}`;
    byId("viewer-title").textContent = caption;
    this.buildClassFilter();
    this.draw();
  }

  /** Forget the shown result (after sign-out). */
  clear() {
    this.result = null;
    this.image.removeAttribute("src");
    this.image.alt = "";
    for (const node of [this.boxes, this.classList, this.tableBody, this.summary]) node.replaceChildren();
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

  visibleDetections() {
    const minimum = Number(this.slider.value);
    return this.result.detections.filter(
      (d) => d.confidence >= minimum && !this.hiddenClasses.has(d.className),
    );
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
      : `Detected from confidence ${this.threshold.toFixed(2)}.`;
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
