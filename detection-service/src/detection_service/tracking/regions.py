"""What counting lines (ADR 0039) and counting zones (ADR 0042) share: the caller names each
one and places it in frame pixels, and both only mean something on tracked frames. One set of
rules, so that a line and a zone are refused for the same faults in the same words."""

import math
from collections.abc import Iterable, Sequence

from objectvision_common.display_text import undisplayable
from objectvision_common.errors import InvalidArgument
from objectvision_common.limits import MAX_COUNTING_NAME_CHARS

Point = tuple[float, float]


def check_names(kind: str, names: Sequence[str], *, most: int, tracked: bool) -> None:
    """InvalidArgument unless the regions (`kind`: "counting line", "counting zone") may be
    counted: tracked frames, at most `most` of them, unique displayable names."""
    if not tracked:
        raise InvalidArgument(f"{kind}s need tracking: ask for track as well")
    if len(names) > most:
        raise InvalidArgument(f"{len(names)} {kind}s; at most {most}")
    seen: set[str] = set()
    for name in names:
        if not name or len(name) > MAX_COUNTING_NAME_CHARS:
            raise InvalidArgument(f"a {kind}'s name is 1 to {MAX_COUNTING_NAME_CHARS} characters")
        problem = undisplayable(name)
        if problem is not None:
            raise InvalidArgument(f"a {kind}'s name must not contain {problem}")
        if name in seen:
            raise InvalidArgument(f"two {kind}s are named {name!r}")
        seen.add(name)


def check_numbers(kind: str, name: str, points: Iterable[Point]) -> None:
    """InvalidArgument unless every coordinate is a finite number."""
    if not all(math.isfinite(value) for point in points for value in point):
        raise InvalidArgument(f"{kind} {name!r} has a coordinate that is no number")


def check_inside(
    kind: str, name: str, points: Iterable[Point], *, frame_size: tuple[int, int] | None
) -> None:
    """Where the frames' size (width, height) is known (a probed video's before any frame,
    a stream's from each detected frame: RegionCounter.check_picture): InvalidArgument unless
    every point lies inside the picture."""
    if frame_size is None:
        return
    width, height = frame_size
    if not all(0 <= x <= width and 0 <= y <= height for x, y in points):
        raise InvalidArgument(f"{kind} {name!r} leaves the {width}x{height} picture")
