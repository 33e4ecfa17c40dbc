// Per-class minimum scores (ADR 0050): typed in the Detect view as `person:0.6, car:0.15`,
// sent as the `class_confidence` field. Each listed class's objects are kept from its own
// score in place of the confidence asked for; the server checks the classes against the model
// (an unknown one is its 422), the page only the syntax, so nothing malformed is sent.

// The server's limit (objectvision_common.limits.MAX_CLASS_CONFIDENCES).
const MAX_PAIRS = 100;
const NUMBER = /^(?:\d+(?:\.\d*)?|\.\d+)$/;

/**
 * `person:0.6, car:0.15` as `{text: "person:0.6,car:0.15", minimums: Map}` (keys in lower
 * case, as the server matches names; an id stays its digits); blank text: none (`text` "").
 * A pair that is not `class:score`, a score not above 0 and at most 1, or a class given twice
 * throws, saying which.
 */
export function parseClassConfidence(text) {
  const minimums = new Map();
  const pairs = [];
  for (const part of String(text ?? "").split(",")) {
    const pair = part.trim();
    if (!pair) continue;
    const colon = pair.lastIndexOf(":");
    const name = colon < 0 ? "" : pair.slice(0, colon).trim();
    const value = colon < 0 ? "" : pair.slice(colon + 1).trim();
    if (!name || !NUMBER.test(value)) throw new Error(`“${pair}” is not class:score, e.g. person:0.6`);
    const score = Number(value);
    if (!(score > 0 && score <= 1)) throw new Error(`the score of “${name}” must be above 0 and at most 1`);
    const key = name.toLowerCase();
    if (minimums.has(key)) throw new Error(`the class “${name}” is given twice`);
    minimums.set(key, score);
    pairs.push(`${name}:${value}`);
  }
  if (pairs.length > MAX_PAIRS) throw new Error(`at most ${MAX_PAIRS} classes can have their own minimum score`);
  return { text: pairs.join(","), minimums };
}

/** The minimum score `minimums` gives an object of `className` (or its id), or undefined. */
export function ownMinimum(minimums, className, classId) {
  if (!minimums?.size) return undefined;
  return minimums.get(String(className).toLowerCase()) ?? (classId >= 0 ? minimums.get(String(classId)) : undefined);
}
