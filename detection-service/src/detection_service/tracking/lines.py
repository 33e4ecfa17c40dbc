"""Counting the tracked objects that cross lines drawn across the picture (ADR 0039).

A caller names line segments ("gate", "lane 2") in frame pixels; each tracked object whose box
centre moves from one side of a segment to the other, within the segment's span, is one
crossing, "in" or "out" by the side it reached. Supervision's `LineZone` decides the sides
and the crossings per track id, and its `LineZoneAnnotator` draws each line with its running
totals on the annotated video; this module keeps one zone per line and turns what it reports
into crossings with the object's class.

Why the box centre and not its four corners (the library's default): a large object near the
camera (a bus) may never have all four corners past a line that ends inside the picture, and
the centre is where a person would say the object is. Why tracked objects only: a crossing is
the same object on both sides, which only a track id says.

A counter holds one video's state, sees its frames in order, the empty ones too, and is
deterministic: fed the same frames it reports the same crossings, so a worker that resumes a
video job counts its committed frames again without storing them twice.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

import numpy as np

from detection_service.pipeline.types import DetectedObject
from detection_service.tracking.regions import Point, check_inside, check_names, check_numbers
from objectvision_common.errors import InvalidArgument
from objectvision_common.limits import MAX_COUNTING_LINES

_KIND = "counting line"


@dataclass(frozen=True)
class CountingLine:
    """A named segment from `start` to `end`, in frame pixels."""

    name: str
    start: Point
    end: Point

    def to_json(self) -> dict[str, object]:
        return {"name": self.name, "start": list(self.start), "end": list(self.end)}

    @classmethod
    def from_json(cls, value: dict[str, object]) -> "CountingLine":
        start, end = value["start"], value["end"]
        assert isinstance(start, list) and isinstance(end, list)
        return cls(
            name=str(value["name"]),
            start=(float(start[0]), float(start[1])),
            end=(float(end[0]), float(end[1])),
        )


class CrossingDirection(StrEnum):
    # Seen from the line's start looking towards its end: from the right-hand side to the
    # left-hand side is "in", the other way "out".
    IN = "in"
    OUT = "out"


@dataclass(frozen=True)
class LineCrossing:
    """One tracked object crossing one line, in the frame the crossing is seen in."""

    line: str
    track_id: int
    class_id: int
    class_name: str
    direction: CrossingDirection

    def to_json(self) -> dict[str, object]:
        return {
            "line": self.line,
            "track_id": self.track_id,
            "class_id": self.class_id,
            "class_name": self.class_name,
            "direction": self.direction.value,
        }

    @classmethod
    def from_json(cls, value: dict[str, object]) -> "LineCrossing":
        return cls(
            line=str(value["line"]),
            track_id=int(str(value["track_id"])),
            class_id=int(str(value["class_id"])),
            class_name=str(value["class_name"]),
            direction=CrossingDirection(str(value["direction"])),
        )


@dataclass(frozen=True)
class LineCount:
    """How many objects of one class crossed one line each way."""

    line: str
    class_id: int
    class_name: str
    crossed_in: int
    crossed_out: int


def checked_lines(
    lines: Sequence[CountingLine], *, tracked: bool, frame_size: tuple[int, int] | None = None
) -> tuple[CountingLine, ...]:
    """The lines if a job or stream may count them; InvalidArgument saying what is wrong.
    With `frame_size` (a probed video's, or a stream frame's), both ends must lie inside the
    picture."""
    if not lines:
        return ()
    check_names(_KIND, [line.name for line in lines], most=MAX_COUNTING_LINES, tracked=tracked)
    for line in lines:
        check_numbers(_KIND, line.name, (line.start, line.end))
        if line.start == line.end:
            raise InvalidArgument(f"counting line {line.name!r} starts where it ends")
        check_inside(_KIND, line.name, (line.start, line.end), frame_size=frame_size)
    return tuple(lines)


class LineCounter:
    """One video's crossings of its lines; not shared between videos or threads."""

    def __init__(self, lines: Sequence[CountingLine]) -> None:
        # Imported here, as tracking.tracker says why.
        import supervision as sv

        self._detections = sv.Detections
        self.lines = tuple(lines)
        self._zones = [
            sv.LineZone(
                start=sv.Point(*line.start),
                end=sv.Point(*line.end),
                triggering_anchors=(sv.Position.CENTER,),
            )
            for line in self.lines
        ]
        self._annotators = [
            sv.LineZoneAnnotator(
                custom_in_text=f"{line.name} in",
                custom_out_text=f"{line.name} out",
                text_orient_to_line=True,
            )
            for line in self.lines
        ]

    def observe(self, objects: Sequence[DetectedObject]) -> list[LineCrossing]:
        """The crossings the next frame's objects (with their track ids) make, line by line.

        Objects without a track id (not yet confirmed) take no part; an empty frame still
        counts as a frame, so that an object out of sight for long is forgotten."""
        tracked = [o for o in objects if o.track_id is not None]
        detections = self._detections(
            xyxy=np.array([(o.x1, o.y1, o.x2, o.y2) for o in tracked], dtype=np.float32).reshape(
                -1, 4
            ),
            class_id=np.array([o.class_id for o in tracked], dtype=np.int64),
            tracker_id=np.array([o.track_id for o in tracked], dtype=np.int64),
        )
        crossings: list[LineCrossing] = []
        for line, zone in zip(self.lines, self._zones, strict=True):
            crossed_in, crossed_out = zone.trigger(detections)
            for obj, went_in, went_out in zip(tracked, crossed_in, crossed_out, strict=True):
                if went_in or went_out:
                    direction = CrossingDirection.IN if went_in else CrossingDirection.OUT
                    assert obj.track_id is not None
                    crossings.append(
                        LineCrossing(
                            line=line.name,
                            track_id=obj.track_id,
                            class_id=obj.class_id,
                            class_name=obj.class_name,
                            direction=direction,
                        )
                    )
        return crossings

    def totals(self) -> list[tuple[int, int]]:
        """(in, out) of each line over every class, for the frames seen so far."""
        return [(zone.in_count, zone.out_count) for zone in self._zones]

    def draw(self, canvas: np.ndarray) -> np.ndarray:
        """The lines on `canvas` (drawn in place, and returned) with their totals so far."""
        for zone, annotator in zip(self._zones, self._annotators, strict=True):
            canvas = annotator.annotate(canvas, line_counter=zone)
        return canvas
