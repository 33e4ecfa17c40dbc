"""Which object in this frame is which in the last: ByteTrack over one video's detections.

ByteTrack (Zhang et al., 2022), as the `trackers` library implements it, matches each frame's
boxes to the tracks so far by IoU against a Kalman prediction of where each track has moved,
first the confident boxes, then the doubtful ones (an occluded person's lower confidence does
not end their track). It needs nothing but the boxes, so it runs after inference, on the
detection service's CPU: under half a millisecond a frame of twenty objects (ADR 0038).

A tracker holds one video's state and must see its frames in order, the empty ones too: the
stream's ordered answers and the video worker's writer feed it. Every object comes back with
its id once its track is confirmed (from the second frame it is seen in) and without one
before; nothing is dropped, unlike the library's own output, which keeps only tracked boxes
when asked to. Ids count from 0 within one video.

`trackers` and `supervision` (which loads SciPy) are imported when a tracker is built, not
with this module: the realtime role imports it for its tracked streams, and must start where
only untracked ones are served without those libraries (the GPU box of bench/gpu.sh).
"""

from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from detection_service.pipeline.types import DetectedObject

# ByteTrack's frame counts are given for 30 frames a second and scaled to the real rate.
_REFERENCE_FRAME_RATE = 30.0
DEFAULT_FRAME_RATE = _REFERENCE_FRAME_RATE


@dataclass(frozen=True)
class TrackingSettings:
    """How eagerly tracks start and how long they outlive their object's absence."""

    # A box at least this confident may start a track (less confident ones only continue one).
    activation_confidence: float
    # How long a track whose object is out of sight keeps its id.
    lost_seconds: float


class ObjectTracker:
    """One video's tracks; not shared between videos or threads."""

    def __init__(self, settings: TrackingSettings, *, frame_rate: float) -> None:
        import supervision as sv
        from trackers import ByteTrackTracker

        self._detections = sv.Detections
        self._tracker = ByteTrackTracker(
            frame_rate=frame_rate or DEFAULT_FRAME_RATE,
            lost_track_buffer=max(1, round(settings.lost_seconds * _REFERENCE_FRAME_RATE)),
            track_activation_threshold=settings.activation_confidence,
            minimum_consecutive_frames=1,
        )

    def follow(self, objects: Sequence[DetectedObject]) -> list[DetectedObject]:
        """The next frame's objects, each with its track id where it has one."""
        boxes = np.array([(o.x1, o.y1, o.x2, o.y2) for o in objects], dtype=np.float32)
        detections = self._detections(
            xyxy=boxes.reshape(-1, 4),
            confidence=np.array([o.confidence for o in objects], dtype=np.float32),
            class_id=np.array([o.class_id for o in objects], dtype=np.int64),
            data={"index": np.arange(len(objects))},
        )
        tracked = self._tracker.update(detections)
        ids: dict[int, int] = {}
        if len(tracked) and tracked.tracker_id is not None:
            ids = {
                int(index): int(track)
                for index, track in zip(tracked.data["index"], tracked.tracker_id, strict=True)
                if track >= 0
            }
        return [replace(o, track_id=ids.get(n)) for n, o in enumerate(objects)]
