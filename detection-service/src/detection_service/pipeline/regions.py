"""Regions of interest (ADR 0053): only the objects standing in one of them are kept.

A fixed camera sees a street beyond the car park it watches, or a neighbour's garden; the
caller keeps what stands in the polygons it cares about. "Standing in" is the bottom centre of
the box inside the polygon, the anchor the counting zones use (ADR 0042), so a person's feet
decide, not their head over a fence. Corners are fractions of the image's width and height,
so one set of regions serves uploads of any size from the same camera.
"""

import math
from collections.abc import Iterable, Sequence

import cv2
import numpy as np

from detection_service.pipeline.types import DetectedObject
from objectvision_common.errors import InvalidArgument
from objectvision_common.limits import MAX_REGION_POINTS, MAX_REGIONS

Polygon = tuple[tuple[float, float], ...]


def checked_regions(regions: Iterable[Sequence[tuple[float, float]]]) -> tuple[Polygon, ...]:
    """The regions as polygons, or InvalidArgument saying what is wrong: more than
    MAX_REGIONS, a polygon of fewer than 3 or more than MAX_REGION_POINTS corners, a corner
    outside 0..1, or one that encloses no area."""
    polygons = tuple(tuple((float(x), float(y)) for x, y in region) for region in regions)
    if len(polygons) > MAX_REGIONS:
        raise InvalidArgument(f"at most {MAX_REGIONS} regions can be given")
    for number, polygon in enumerate(polygons, start=1):
        if not 3 <= len(polygon) <= MAX_REGION_POINTS:
            raise InvalidArgument(
                f"region {number} has {len(polygon)} corners; a region has 3 to {MAX_REGION_POINTS}"
            )
        for x, y in polygon:
            if not (math.isfinite(x) and math.isfinite(y) and 0 <= x <= 1 and 0 <= y <= 1):
                raise InvalidArgument(
                    f"region {number} has the corner ({x:g}, {y:g}); corners are fractions of"
                    " the image's width and height, from 0 to 1"
                )
        if cv2.contourArea(np.array(polygon, dtype=np.float32)) <= 0:
            raise InvalidArgument(f"region {number} encloses no area")
    return polygons


def standing_in(
    objects: Sequence[DetectedObject], regions: Sequence[Polygon], width: int, height: int
) -> list[DetectedObject]:
    """The objects whose box's bottom centre lies in one of the regions (or on its edge), in
    an image of `width` x `height` pixels."""
    scale = np.array((width, height), dtype=np.float32)
    contours = [np.array(polygon, dtype=np.float32) * scale for polygon in regions]

    def inside(obj: DetectedObject) -> bool:
        feet = ((obj.x1 + obj.x2) / 2, obj.y2)
        return any(cv2.pointPolygonTest(contour, feet, False) >= 0 for contour in contours)

    return [obj for obj in objects if inside(obj)]


def bounds(regions: Sequence[Polygon], width: int, height: int) -> tuple[float, ...]:
    """The pixels (x1, y1, x2, y2) all the regions lie in: tiles beyond it need no inference."""
    xs = [x * width for polygon in regions for x, _ in polygon]
    ys = [y * height for polygon in regions for _, y in polygon]
    return min(xs), min(ys), max(xs), max(ys)
