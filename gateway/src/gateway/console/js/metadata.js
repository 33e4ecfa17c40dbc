// The caller's own key-value pairs (ADR 0045) kept with an upload, a job or a stored
// detection: typed in the Detect view as `camera=north-gate; shift=night`, shown back as
// `camera=north-gate · shift=night`. The server checks the limits (key characters, lengths).

/**
 * `key=value` pairs separated by `;` as an object (empty text: none). A pair without `=`, or
 * a key given twice, throws, so nothing is uploaded with metadata other than the one meant.
 */
export function parseMetadata(text) {
  // No prototype: a key such as `__proto__` is an ordinary key here, as it is to the server.
  const metadata = Object.create(null);
  for (const part of String(text ?? "").split(";")) {
    if (!part.trim()) continue;
    const equals = part.indexOf("=");
    const key = equals < 0 ? "" : part.slice(0, equals).trim();
    if (!key) throw new Error(`“${part.trim()}” is not key=value, e.g. camera=north-gate`);
    if (Object.hasOwn(metadata, key)) throw new Error(`the key “${key}” is given twice`);
    metadata[key] = part.slice(equals + 1).trim();
  }
  return metadata;
}

/** Whether `metadata` holds any pair. */
export function hasPairs(metadata) {
  return Object.keys(metadata ?? {}).length > 0;
}

/** Pairs on one line, keys sorted: `a=1 · b=2`. */
export function formatPairs(metadata) {
  return Object.entries(metadata ?? {})
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([key, value]) => `${key}=${value}`)
    .join(" · ");
}
