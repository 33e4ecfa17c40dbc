"""One video's or stream's counting, fed its frames in order after the tracker: crossings of
its lines (ADR 0039) and the zones its objects stand in (ADR 0042). The video worker and the
stream servicer hold one of these, whatever a caller asked for."""

from collections.abc import Sequence

import numpy as np

from detection_service.pipeline.types import DetectedObject
from detection_service.tracking.lines import CountingLine, LineCounter, LineCrossing, checked_lines
from detection_service.tracking.tracker import ObjectTracker
from detection_service.tracking.zones import CountingZone, ZoneLocator, checked_zones


class RegionCounter:
    """The lines and zones of one video or stream; not shared between them or threads."""

    def __init__(self, lines: Sequence[CountingLine], zones: Sequence[CountingZone]) -> None:
        self._lines = LineCounter(lines) if lines else None
        self._zones = tuple(zones)
        self._locator = ZoneLocator(zones) if zones else None
        self._fitting_size: tuple[int, int] | None = None

    @classmethod
    def of(
        cls,
        lines: Sequence[CountingLine],
        zones: Sequence[CountingZone],
        *,
        picture: tuple[int, int] | None = None,
    ) -> "RegionCounter | None":
        """A counter, or None where nothing is to be counted; with `picture` (a probed
        video's width and height, which its regions were checked against when it was
        submitted), ready to count at once."""
        if not (lines or zones):
            return None
        counter = cls(lines, zones)
        counter._fitting_size = picture
        return counter

    def check_picture(self, width: int, height: int) -> None:
        """InvalidArgument unless every line and zone lies inside a `width`x`height` picture.

        A video's regions are checked against its probed size before any frame; a stream
        declares no size, so its regions are checked against each frame's, again whenever the
        size changes (a camera may change resolution): a line off the picture would never count, and
        counts of zero would read as an empty street."""
        size = (width, height)
        if size == self._fitting_size:
            return
        if self._lines is not None:
            checked_lines(self._lines.lines, tracked=True, frame_size=size)
        if self._zones:
            checked_zones(self._zones, tracked=True, frame_size=size)
        self._fitting_size = size

    def observe(
        self, objects: Sequence[DetectedObject]
    ) -> tuple[list[DetectedObject], tuple[LineCrossing, ...]]:
        """The next frame's tracked objects with the zones they stand in, and the crossings
        they make; check_picture comes first: a region off the picture would count nothing,
        and zero would read as an empty street."""
        if self._fitting_size is None:
            raise RuntimeError("a counter's regions are checked against a picture before a frame")
        located = self._locator.locate(objects) if self._locator is not None else list(objects)
        crossings = tuple(self._lines.observe(located)) if self._lines is not None else ()
        return located, crossings

    def line_totals(self) -> dict[str, tuple[int, int]]:
        """(in, out) of each line over every class, for the frames seen so far."""
        if self._lines is None:
            return {}
        return dict(
            zip((line.name for line in self._lines.lines), self._lines.totals(), strict=True)
        )

    def draw(self, canvas: np.ndarray) -> np.ndarray:
        """The zones, then the lines, on `canvas` (in place, and returned)."""
        if self._locator is not None:
            canvas = self._locator.draw(canvas)
        if self._lines is not None:
            canvas = self._lines.draw(canvas)
        return canvas


def track_and_count(
    tracker: ObjectTracker,
    counter: RegionCounter | None,
    objects: Sequence[DetectedObject],
    picture: tuple[int, int],
) -> tuple[list[DetectedObject], tuple[LineCrossing, ...]]:
    """The next frame's objects with their track ids and, with `counter`, their zones and the
    crossings they make, its regions first checked against the frame's `picture` (width,
    height): InvalidArgument if one leaves it. Blocking (the tracker's work): call in a thread,
    for one video's or stream's frames in order."""
    if counter is not None:
        counter.check_picture(*picture)
    followed = tracker.follow(objects)
    return counter.observe(followed) if counter is not None else (followed, ())
