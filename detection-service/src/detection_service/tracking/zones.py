"""Counting zones: named regions of the picture and who stands in them (ADR 0042).

A caller names polygons in frame pixels ("queue", "loading bay"); every object of a frame is
in each zone whose polygon holds the bottom centre of its box, the point where a person or a
vehicle stands on the ground, so a person's head reaching over a zone's edge does not put them
in it. Shapely tests those points against the polygons (its edges inside), and supervision's
drawing helpers shade each zone with how many are in it on the annotated video.

What a zone is for comes from its objects' membership over the frames: how many tracked
objects visited it, the most in it at once, and how long a visitor stayed. Membership is kept
on each object (`DetectedObject.zones`), stored with its frame, so those are sums over the
committed frames (video/views.py) and a resumed job neither loses nor doubles them.
"""

from collections.abc import Sequence
from dataclasses import dataclass, replace

import cv2
import numpy as np

from detection_service.pipeline.types import DetectedObject
from detection_service.tracking.regions import Point, check_inside, check_names, check_numbers
from objectvision_common.errors import InvalidArgument
from objectvision_common.limits import MAX_COUNTING_ZONES, MAX_ZONE_POINTS

_KIND = "counting zone"


@dataclass(frozen=True)
class CountingZone:
    """A named polygon, its points in frame pixels in drawing order."""

    name: str
    polygon: tuple[Point, ...]

    def to_json(self) -> dict[str, object]:
        return {"name": self.name, "polygon": [list(point) for point in self.polygon]}

    @classmethod
    def from_json(cls, value: dict[str, object]) -> "CountingZone":
        polygon = value["polygon"]
        assert isinstance(polygon, list)
        return cls(
            name=str(value["name"]),
            polygon=tuple((float(x), float(y)) for x, y in polygon),
        )


@dataclass(frozen=True)
class ZoneCount:
    """Who was in one zone, for one class."""

    zone: str
    class_id: int
    class_name: str
    visited: int
    peak: int
    mean_stay_seconds: float


def checked_zones(
    zones: Sequence[CountingZone], *, tracked: bool, frame_size: tuple[int, int] | None = None
) -> tuple[CountingZone, ...]:
    """The zones if a job or stream may count them; InvalidArgument saying what is wrong.
    With `frame_size` (a probed video's, or a stream frame's), every point must lie inside the
    picture."""
    if not zones:
        return ()
    check_names(_KIND, [zone.name for zone in zones], most=MAX_COUNTING_ZONES, tracked=tracked)
    for zone in zones:
        if not 3 <= len(zone.polygon) <= MAX_ZONE_POINTS:
            raise InvalidArgument(
                f"counting zone {zone.name!r} has {len(zone.polygon)} points;"
                f" a zone has 3 to {MAX_ZONE_POINTS}"
            )
        check_numbers(_KIND, zone.name, zone.polygon)
        # Under a pixel: nothing could ever stand in it.
        if cv2.contourArea(np.array(zone.polygon, dtype=np.float32)) < 1:
            raise InvalidArgument(f"counting zone {zone.name!r} encloses no area")
        # A polygon whose edges cross or touch has no inside its corners agree on: a bow tie
        # drawn by clicking corners out of order would count in lobes nobody meant. Shapely
        # is imported only where zones are given, as tracking.tracker imports its libraries:
        # the realtime role starts without it (the GPU box of bench/gpu.sh).
        import shapely

        if not shapely.LinearRing(zone.polygon).is_simple:
            raise InvalidArgument(
                f"counting zone {zone.name!r} has edges that cross:"
                " give its corners in order around it"
            )
        check_inside(_KIND, zone.name, zone.polygon, frame_size=frame_size)
    return tuple(zones)


class ZoneLocator:
    """Which zones each object of a frame stands in; holds no history, so one serves a
    video's frames in any order, and draws the last frame's occupancy.

    Each object's standing point is tested against the polygons themselves, not against a
    mask of them (supervision's `PolygonZone` keeps one as large as the picture up to the
    zone's farthest corner): a zone costs its corners, whatever the picture, so 16
    picture-wide zones on a 40-megapixel stream hold a few kilobytes rather than 640 MB."""

    def __init__(self, zones: Sequence[CountingZone]) -> None:
        # Imported here, as tracking.tracker says why.
        import shapely

        self._shapely = shapely
        self.zones = tuple(zones)
        self._areas = [shapely.Polygon(zone.polygon) for zone in self.zones]
        for area in self._areas:
            shapely.prepare(area)
        self._occupancy = [0] * len(self.zones)

    def locate(self, objects: Sequence[DetectedObject]) -> list[DetectedObject]:
        """The objects, each with the names of the zones it stands in (in the zones' order):
        those whose polygon holds its box's bottom centre, an edge counting as inside."""
        if not objects:
            self._occupancy = [0] * len(self.zones)
            return []
        feet_x = np.array([(o.x1 + o.x2) / 2 for o in objects], dtype=np.float64)
        feet_y = np.array([o.y2 for o in objects], dtype=np.float64)
        inside = [self._shapely.intersects_xy(area, feet_x, feet_y) for area in self._areas]
        self._occupancy = [int(within.sum()) for within in inside]
        return [
            replace(
                obj,
                zones=tuple(
                    zone.name for zone, within in zip(self.zones, inside, strict=True) if within[n]
                ),
            )
            for n, obj in enumerate(objects)
        ]

    def draw(self, canvas: np.ndarray) -> np.ndarray:
        """The zones on `canvas` (in place, and returned), each shaded with its name and how
        many stand in it in the frame located last, as supervision's PolygonZoneAnnotator
        draws them."""
        import supervision as sv

        color = sv.Color.from_hex("#2dd4bf")
        for zone, occupancy in zip(self.zones, self._occupancy, strict=True):
            corners = np.rint(np.array(zone.polygon, dtype=np.float64)).astype(np.int64)
            canvas = sv.draw_filled_polygon(canvas, corners, color=color, opacity=0.15)
            canvas = sv.draw_polygon(canvas, corners, color=color, thickness=2)
            canvas = sv.draw_text(
                canvas,
                f"{zone.name}: {occupancy}",
                text_anchor=sv.get_polygon_center(corners),
                background_color=color,
            )
        return canvas
