// Regions of interest (ADR 0053): typed in the Detect view as polygons in percent of the image,
// `0,50, 100,50, 100,100, 0,100; 60,0, 100,0, 100,40` (corners as x,y pairs, polygons
// separated by `;`), sent as the `regions` field, the API's JSON array of polygons whose
// corners are fractions of the image's width and height. Only the objects whose box's bottom
// centre stands inside one of them are kept. The page checks what the API would refuse (the
// shape, the range, the counts, an area), so nothing malformed is sent.

// The server's limits (objectvision_common.limits.MAX_REGIONS, MAX_REGION_POINTS).
const MAX_REGIONS = 16;
const MAX_CORNERS = 32;
const MIN_CORNERS = 3;
const NUMBER = /^[+-]?(?:\d+(?:\.\d*)?|\.\d+)$/;

/** A percentage as the API's fraction, without float noise (33.3 -> 0.333). */
function fraction(percent) {
  return Number((percent / 100).toFixed(6));
}

/** Twice the signed area of `corners` ([[x, y], …]): 0 when they lie on one line. */
function doubleArea(corners) {
  return corners.reduce((sum, [x, y], index) => {
    const [nextX, nextY] = corners[(index + 1) % corners.length];
    return sum + x * nextY - nextX * y;
  }, 0);
}

/**
 * `0,0, 50,0, 50,100, 0,100; …` as `{json, polygons}`: `json` the `regions` field
 * (`[[[0,0],[0.5,0],[0.5,1],[0,1]]]`), `polygons` the corners in percent; blank text: none
 * (`json` "", no polygons). A polygon that is not 3 to 32 x,y pairs of numbers from 0 to 100,
 * or encloses no area, or more than 16 polygons, throws, saying which.
 */
export function parseRegionsOfInterest(text) {
  const polygons = [];
  for (const entry of String(text ?? "").split(";")) {
    const written = entry.trim();
    if (!written) continue;
    // Commas between the numbers; a space alone also does (`0,0 50,0 50,100`, as SVG writes them).
    const parts = written.split(/\s*,\s*|\s+/);
    const bad = parts.find((part) => !NUMBER.test(part));
    if (bad !== undefined) {
      throw new Error(
        `“${written}” is not corners written x,y in percent of the image, e.g. 0,50, 100,50, 100,100` +
          (bad ? ` (“${bad}” is not a number)` : " (a number is missing between commas)"),
      );
    }
    const numbers = parts.map(Number);
    const outside = numbers.find((value) => value < 0 || value > 100);
    if (outside !== undefined) {
      throw new Error(`“${written}”: ${outside} is outside the image; corners are percentages, 0 to 100`);
    }
    if (numbers.length % 2 !== 0) throw new Error(`“${written}” has an x without its y: give x,y pairs`);
    const corners = [];
    for (let index = 0; index < numbers.length; index += 2) corners.push([numbers[index], numbers[index + 1]]);
    if (corners.length < MIN_CORNERS || corners.length > MAX_CORNERS) {
      throw new Error(
        `“${written}” has ${corners.length === 1 ? "1 corner" : `${corners.length} corners`}; ` +
          `a region has ${MIN_CORNERS} to ${MAX_CORNERS}`,
      );
    }
    if (doubleArea(corners) === 0) throw new Error(`the corners of “${written}” enclose no area`);
    polygons.push(corners);
  }
  if (polygons.length > MAX_REGIONS) {
    throw new Error(`at most ${MAX_REGIONS} regions, separated by ;, can be given (${polygons.length} were)`);
  }
  const regions = polygons.map((corners) => corners.map(([x, y]) => [fraction(x), fraction(y)]));
  return { json: regions.length ? JSON.stringify(regions) : "", polygons };
}
