// One image with its detections drawn over it. Boxes are absolutely positioned elements in
// percent of the image's size, so they follow the image at any width; the confidence slider
// and the class filter work on the detections already returned, without another request.

import { byId, el, plural } from "./dom.js";

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

function hueFor(classId, className) {
  const seed = classId >= 0 ? classId : [...className].reduce((sum, c) => sum + c.charCodeAt(0), 0);
  return (seed * 137.508) % 360;
}

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
    this.result = null;
    this.hiddenClasses = new Set();
    this.slider.addEventListener("input", () => this.draw());
  }

  /** Show `result` (normalised) over the image at `imageUrl`; resets the class filter. */
  show(result, imageUrl, caption) {
    this.result = result;
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
    const visible = this.visibleDetections();
    this.boxes.replaceChildren(
      ...visible.map((d) => {
        const label = el("span", { className: "box-label" }, `${d.className} ${d.confidence.toFixed(2)}`);
        const box = el(
          "div",
          {
            className: [
              "box",
              d.y1 / Math.max(height, 1) < 0.06 ? "label-inside" : "",
              d.x1 / Math.max(width, 1) > 0.7 ? "label-end" : "",
            ].join(" ").trim(),
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
        box.style.setProperty("--box-hue", String(hueFor(d.classId, d.className)));
        return box;
      }),
    );
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
      (typeof timing === "number" ? ` · detected in ${Math.round(timing)} ms` : "");
    this.summary.dataset.shown = String(visible.length);
  }
}
