"""Ground truth made from a video job's own answer, for the tests that score it (ADR 0056).

A job scored against its own tracks must score a perfect tracking, and the same labels with
identities exchanged the numbers MOTChallenge's definitions give: the expected scores are
known exactly without a hand-labelled video.
"""

import io
import zipfile
from collections.abc import Mapping, Sequence
from typing import Any

# (frame index, track id) of a tracked object -> the identity its label gives it.
Identities = Mapping[tuple[int, int], int]


def tracked_objects(frames: Sequence[Mapping[str, Any]]) -> list[tuple[int, dict[str, Any]]]:
    """(frame index, object) of every object with a track id, from the second frame on (no
    track is confirmed in the first), as `GET /jobs/{id}/frames` lists them."""
    return [
        (frame["frame_index"], found)
        for frame in frames
        if frame["frame_index"] >= 1
        for found in frame["detections"]
        if found["track_id"] is not None
    ]


def own_identities(objects: Sequence[tuple[int, Mapping[str, Any]]]) -> dict[tuple[int, int], int]:
    """Each tracked object labelled with its own track id (from 1, as MOT ids are)."""
    return {(frame, found["track_id"]): found["track_id"] + 1 for frame, found in objects}


def cvat_mot_zip(
    objects: Sequence[tuple[int, Mapping[str, Any]]], identities: Identities | None = None
) -> bytes:
    """`objects` as CVAT's MOT 1.1 export lays a video's labels out: gt/labels.txt naming the
    classes, gt/gt.txt a row per object (`frame, id, left, top, width, height, considered,
    class, visibility`; frames from 1, the class as its line of labels.txt). `identities`
    (default: `own_identities`) says which labelled identity each object is."""
    identity = own_identities(objects) if identities is None else identities
    names = sorted({found["class"] for _, found in objects})
    rows = []
    for frame, found in objects:
        box = found["bbox"]
        rows.append(
            f"{frame + 1},{identity[frame, found['track_id']]},{box['x1']},{box['y1']},"
            f"{box['x2'] - box['x1']},{box['y2'] - box['y1']},1,"
            f"{names.index(found['class']) + 1},1"
        )
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("gt/labels.txt", "\n".join(names) + "\n")
        archive.writestr("gt/gt.txt", "\n".join(rows) + "\n")
    return buffer.getvalue()
