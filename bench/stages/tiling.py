"""Tiled detection (ADR 0051): what a tile size costs and what it finds, from one run.

One large image through detection-service gRPC `Detect` (one image per call, store=false,
the result cache off as the benchmark's stack runs), without tiles (the whole image alone)
and with `tile_size` 640 (the whole image and every overlapping tile of 640 pixels, each
through the micro-batcher as an image of its own, the objects merged). The image is the
scene detection-service/tests/test_tiling.py detects: bus.jpg of the image set shrunk to 0.4
in a grey 4K frame, so its people are about 15 pixels tall once the frame is letterboxed to
640, and 60 to 90 in a tile.

Why paired rounds at c=1: two figures taken minutes apart on a shared 2-core machine drift;
each round sends the frame both ways back to back (the order alternates, the first round
warms both up and is not counted), and the ratio divides the tiled median by the whole
image's. Reported: the medians and their ratio, the tiles the frame is cut into
(`tiling.tile_count`, as the service counts them), and the objects each answer holds per
class, so the section says what the tiles cost and what they find.
"""

import statistics
import time
import uuid
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

import cv2
import grpc
import numpy as np

from bench.images import Image
from bench.stages import StageContext, logger
from bench.stats import ratio
from detection_service.pipeline.tiling import tile_count
from objectvision.v1 import common_pb2, detection_pb2, detection_pb2_grpc
from objectvision_common.identity import principal_metadata
from objectvision_common.limits import DEFAULT_TILE_OVERLAP

STAGE = "tiling"
WHOLE, TILED = "whole", "tiled"
TILE_SIZE = 640
# The scene of detection-service/tests/test_tiling.py: the source shrunk to SCALE (INTER_AREA)
# and pasted at PLACED_AT into a grey (114) FRAME, JPEG quality 95.
SOURCE = "bus.jpg"
FRAME = (3840, 2160)
SCALE = 0.4
PLACED_AT = (1920, 720)
GREY = 114
JPEG_QUALITY = 95
# Classes the Markdown names first: what the scene holds.
SCENE_CLASSES = ("person", "bus")
# Rounds counted (the warm-up round comes on top): a tiled call takes about 2.5 s on the
# 2-core machine, so the stage lasts about 20 s in full. Quick runs a few.
ROUNDS = {True: 2, False: 5}
# Seconds one round (the frame whole, then tiled) takes at most on the 2-core machine.
_ROUND_S = 4.5
_CALL_TIMEOUT_S = 60.0
_CHANNEL_OPTIONS = [
    ("grpc.max_send_message_length", 64 * 1024 * 1024),
    ("grpc.max_receive_message_length", 64 * 1024 * 1024),
]
PATH = "detection-service gRPC Detect, 1 image per call, store=false, result cache off"


def scene(source: bytes) -> bytes:
    """The frame: `source` shrunk to SCALE and pasted into a grey 4K frame, as JPEG."""
    picture = cv2.imdecode(np.frombuffer(source, np.uint8), cv2.IMREAD_COLOR)
    if picture is None:
        raise ValueError(f"{SOURCE} does not decode")
    small = cv2.resize(picture, None, fx=SCALE, fy=SCALE, interpolation=cv2.INTER_AREA)
    frame = np.full((FRAME[1], FRAME[0], 3), GREY, np.uint8)
    x, y = PLACED_AT
    frame[y : y + small.shape[0], x : x + small.shape[1]] = small
    ok, encoded = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    if not ok:
        raise ValueError("the frame could not be encoded as JPEG")
    return encoded.tobytes()


def _request(frame: bytes, tile_size: int) -> detection_pb2.DetectRequest:
    return detection_pb2.DetectRequest(
        images=[detection_pb2.ImageInput(data=frame, filename="frame.jpg")],
        params=detection_pb2.DetectionParams(tile_size=tile_size),
        store=False,
    )


def _classes(result: detection_pb2.ImageResult) -> dict[str, int]:
    return dict(sorted(Counter(o.class_name for o in result.objects).items()))


async def measure(
    stub: "detection_pb2_grpc.DetectionServiceAsyncStub",
    metadata: tuple[tuple[str, str], ...],
    frame: bytes,
    *,
    rounds: int,
) -> dict[str, Any]:
    """`rounds` paired rounds (and one warm-up before them) of `frame` whole and tiled; a
    cached answer, or a tiled one without the bus, fails the stage (it would measure nothing
    or a scene that is not there)."""
    sizes = {WHOLE: 0, TILED: TILE_SIZE}
    latencies: dict[str, list[float]] = {WHOLE: [], TILED: []}
    seen: dict[str, list[dict[str, int]]] = {WHOLE: [], TILED: []}
    answer: dict[str, detection_pb2.ImageResult] = {}
    for round_ in range(rounds + 1):
        for condition in (TILED, WHOLE) if round_ % 2 else (WHOLE, TILED):
            started = time.perf_counter()
            reply = await stub.Detect(
                _request(frame, sizes[condition]), metadata=metadata, timeout=_CALL_TIMEOUT_S
            )
            elapsed_ms = (time.perf_counter() - started) * 1000
            result = answer[condition] = reply.results[0]
            if result.cached:
                raise RuntimeError("an answer came from the result cache: it must be off")
            if round_:  # the first round warms both up
                latencies[condition].append(elapsed_ms)
                seen[condition].append(_classes(result))
    tiled = answer[TILED]
    if (tiled.width, tiled.height) != FRAME or "bus" not in seen[TILED][-1]:
        raise RuntimeError(
            f"the tiled answer is not the scene: {tiled.width}x{tiled.height}, {seen[TILED][-1]}"
        )
    tiles = tile_count(tiled.width, tiled.height, TILE_SIZE, DEFAULT_TILE_OVERLAP)
    p50 = {condition: round(statistics.median(ms), 1) for condition, ms in latencies.items()}
    objects = {condition: found[-1] for condition, found in seen.items()}
    classes = sorted(set(objects[WHOLE]) | set(objects[TILED]))
    return {
        "path": PATH,
        "image": (
            f"{SOURCE} at {SCALE} in a grey {FRAME[0]}x{FRAME[1]} frame at"
            f" {PLACED_AT}, JPEG {JPEG_QUALITY}"
        ),
        "bytes": len(frame),
        "width": tiled.width,
        "height": tiled.height,
        "tile_size": TILE_SIZE,
        "tile_overlap": DEFAULT_TILE_OVERLAP,
        "tiles": tiles,
        "inferences_per_call": {WHOLE: 1, TILED: tiles + 1},
        "rounds": rounds,
        "p50_ms": p50,
        "tiled_over_whole_p50": ratio(p50[TILED], p50[WHOLE]),
        "objects": objects,
        "more_with_tiles": {
            name: objects[TILED].get(name, 0) - objects[WHOLE].get(name, 0) for name in classes
        },
        # Whether every counted answer of a condition held the same objects per class.
        "answers_agree": all(all(f == found[0] for f in found) for found in seen.values()),
    }


def _source(images: Sequence[Image]) -> Image | None:
    return next((image for image in images if image.name == SOURCE), None)


async def run(ctx: StageContext, *, address: str, secret: str) -> dict[str, Any] | None:
    """The comparison, or None when the image set lacks bus.jpg or the budget is spent."""
    rounds = ROUNDS[ctx.config.quick]
    if not ctx.within_budget(STAGE, seconds=(rounds + 1) * _ROUND_S):
        return None
    source = _source(ctx.images)
    if source is None:
        ctx.skip(STAGE, f"the image set has no {SOURCE} to build the scene from")
        return None
    frame = scene(source.data)
    principal = common_pb2.Principal(user_id=str(uuid.uuid4()), auth_method="jwt")
    metadata = principal_metadata(principal, secret=secret)
    async with grpc.aio.insecure_channel(address, options=_CHANNEL_OPTIONS) as channel:
        stub = detection_pb2_grpc.DetectionServiceStub(channel)
        found = await measure(stub, metadata, frame, rounds=rounds)
    if not found["answers_agree"]:
        ctx.note("tiling: the objects found differed between rounds; the last round's are shown")
    logger.info("tiled vs whole image: %s", found)
    return found


def _counts(objects: Mapping[str, int], classes: Sequence[str]) -> str:
    return ", ".join(f"{name} {objects.get(name, 0)}" for name in classes)


def markdown(section: Mapping[str, Any]) -> list[str]:
    """The result section as Markdown lines for bench/report.py."""
    p50, objects, more = section["p50_ms"], section["objects"], section["more_with_tiles"]
    classes = [*SCENE_CLASSES, *(name for name in more if name not in SCENE_CLASSES)]
    people = more.get("person", 0)
    lines = [
        f"## Tiled detection: tile_size {section['tile_size']} against the whole image alone"
        " (ADR 0051), one run",
        "",
        f"{section['path']}. The frame: {section['image']} ({section['width']}x"
        f"{section['height']}, {section['bytes']} bytes), cut into {section['tiles']} tiles"
        f" (overlap {section['tile_overlap']}): {section['inferences_per_call'][TILED]}"
        f" images inferred per tiled call. c=1, {section['rounds']} paired rounds, median ms:"
        f" whole image {p50[WHOLE]}, tiled {p50[TILED]}.",
        "",
        f"Tiles cost {section['tiled_over_whole_p50']} times the latency and find {people}"
        f" more {'person' if abs(people) == 1 else 'people'}: whole image"
        f" {_counts(objects[WHOLE], classes)}; tiled {_counts(objects[TILED], classes)}.",
        "",
    ]
    if not section["answers_agree"]:
        lines += ["The objects found differed between rounds; the last round's are shown.", ""]
    return lines
