"""Tracking, line counting and zones (ADR 0038, 0039, 0042): what following objects costs,
from one run.

Two parts, each reported as figures and ratios, never judged against a target:

- In process, no server: milliseconds per frame of `track_and_count` (ByteTrack, then one
  supervision `LineZone` per line, a Shapely point-in-polygon test per zone) over synthetic
  frames of 5, 20 and 100 objects that move a few pixels a frame, some of them across two
  counting lines and into two zones. Every frame goes to three trackers, one alone, one with
  a counter of the two lines and one with the two zones, in rotating order, so all see the
  machine at the same moment; the median of the per-frame differences is what the lines, or
  the zones, add.
- End to end, through the stack's detection-service: `DetectStream` untracked against tracked
  with two lines, in alternating windows (untracked, tracked, untracked, tracked) at one
  concurrency, each worker one stream. Every stream sends the same panned sequence (one image
  moved across the picture a few pixels a frame and back again), so tracks live on and objects
  cross the lines as in a camera's pan. Reported: frames/s and p50 per condition, pooled over
  its windows, and tracked/untracked ratios.

Why alternation and ratios: tracking costs a quarter of a millisecond to a few milliseconds a
frame, less than a shared 2-core machine drifts between two runs or even two windows. Why it
matters at all: the tracker runs on detection-service's CPU beside decoding, and a tracked
stream's answers wait for it in order. A tracked window whose answers carry no track id
measured nothing, and an untracked one whose answers do measured the wrong thing: either fails
the stage.
"""

import asyncio
import dataclasses
import random
import statistics
import time
import uuid
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import grpc

from bench.cpu import CpuMeter
from bench.images import SUFFIXES
from bench.loadgen import LoadResult, RequestError, closed_loop
from bench.stages import StageContext, logger, window_estimate_s
from bench.stages.detection import stream_factory
from bench.stages.switching import Window
from bench.stats import percentile, ratio, share
from detection_service.config import InferenceSettings
from detection_service.pipeline.types import DetectedObject
from detection_service.tracking.counting import RegionCounter, track_and_count
from detection_service.tracking.lines import CountingLine
from detection_service.tracking.tracker import ObjectTracker, TrackingSettings
from detection_service.tracking.zones import CountingZone
from objectvision.v1 import common_pb2, detection_pb2, detection_pb2_grpc
from objectvision_common.identity import principal_metadata
from objectvision_devstack.videos import panned

STAGE = "tracking"
UNTRACKED, TRACKED = "untracked", "tracked"
FRAME_RATE = 30.0

# In process: objects per synthetic frame, frames per count (quick, full), and the first
# frames left out of the figures (tracks start, caches fill).
OBJECT_COUNTS = (5, 20, 100)
IN_PROCESS_FRAMES = {True: 200, False: 400}
WARMUP_FRAMES = 10
# The most the in-process part takes on the 2-core machine (about 5 s measured), for the budget.
_IN_PROCESS_ESTIMATE_S = 20.0
# The synthetic scene: a grid of boxes around the centre of a 1280x720 picture, moving right
# and down, across a vertical and a horizontal line through the centre.
SCENE_WIDTH, SCENE_HEIGHT = 1280, 720
SCENE_LINES = (
    CountingLine("gate", (640.0, 0.0), (640.0, 720.0)),
    CountingLine("lane", (0.0, 360.0), (1280.0, 360.0)),
)
# Two zones the grid moves into: the lower right quarter, and a diamond about the centre.
SCENE_ZONES = (
    CountingZone("corner", ((640.0, 360.0), (1280.0, 360.0), (1280.0, 720.0), (640.0, 720.0))),
    CountingZone("diamond", ((640.0, 200.0), (900.0, 360.0), (640.0, 520.0), (380.0, 360.0))),
)
_BOX_WIDTH, _BOX_HEIGHT = 40.0, 30.0
_CELL_WIDTH, _CELL_HEIGHT = 100.0, 60.0
# (class id, name) the synthetic objects take in turn (COCO's).
_CLASSES = ((0, "person"), (2, "car"), (1, "bicycle"))

# End to end: the panned sequence (640x480, as `objectvision_devstack.videos` makes it),
# forward then back, so a stream's frames loop without a jump; and two lines its objects cross
# (in bus.jpg, panned: two people's box centres move from x 205 and 265 to 440 and 500, the
# bus's from 323 to 514).
PAN_FRAMES = 60
PAN_STEP_PX = 4
STREAM_LINES = (
    CountingLine("gate", (280.0, 0.0), (280.0, 480.0)),
    CountingLine("door", (420.0, 0.0), (420.0, 480.0)),
)
# Windows per condition; together they last the configured window.
_WINDOWS = 2
_JPEG_QUALITY = 90
_CHANNEL_OPTIONS = [
    ("grpc.max_send_message_length", 64 * 1024 * 1024),
    ("grpc.max_receive_message_length", 64 * 1024 * 1024),
]


def service_tracking_settings() -> TrackingSettings:
    """detection-service's own defaults (TRACK_ACTIVATION_CONFIDENCE, TRACK_LOST_SECONDS), so
    the in-process tracker is the one a stream gets."""
    fields = InferenceSettings.model_fields
    return TrackingSettings(
        activation_confidence=float(fields["track_activation_confidence"].default),
        lost_seconds=float(fields["track_lost_seconds"].default),
    )


def synthetic_frames(objects: int, frames: int, *, seed: int = 0) -> list[list[DetectedObject]]:
    """`frames` frames of `objects` boxes on a grid about the centre of the picture, each row
    moving right 2 to 4 pixels a frame and every box down 1, with a pixel of jitter: no two
    boxes meet (a row moves as one), and those starting left of or above the centre cross
    `SCENE_LINES`, the nearest within a few dozen frames."""
    noise = random.Random(seed)
    columns = max(1, round(objects**0.5))
    rows = -(-objects // columns)
    # A quarter of a cell up and left of centred: no row or column starts on a line (an odd
    # count would), and one of each starts at most three quarters of a cell before it.
    left = SCENE_WIDTH / 2 - columns * _CELL_WIDTH / 2 + _CELL_WIDTH / 4
    top = SCENE_HEIGHT / 2 - rows * _CELL_HEIGHT / 2 + _CELL_HEIGHT / 4
    starts = [
        (left + (n % columns) * _CELL_WIDTH, top + (n // columns) * _CELL_HEIGHT, n // columns)
        for n in range(objects)
    ]
    scene = []
    for frame in range(frames):
        shown = []
        for n, (x, y, row) in enumerate(starts):
            centre_x = x + frame * (2 + row % 3) + noise.uniform(-1.0, 1.0)
            centre_y = y + frame + noise.uniform(-1.0, 1.0)
            class_id, class_name = _CLASSES[n % len(_CLASSES)]
            shown.append(
                DetectedObject(
                    class_id=class_id,
                    class_name=class_name,
                    confidence=0.6 + 0.3 * (n % 10) / 10,
                    x1=centre_x - _BOX_WIDTH / 2,
                    y1=centre_y - _BOX_HEIGHT / 2,
                    x2=centre_x + _BOX_WIDTH / 2,
                    y2=centre_y + _BOX_HEIGHT / 2,
                )
            )
        scene.append(shown)
    return scene


def _ms(values: Sequence[float]) -> dict[str, float]:
    return {
        "p50": round(statistics.median(values), 4),
        "p99": round(percentile(values, 99), 4),
        "mean": round(statistics.fmean(values), 4),
    }


def measure_in_process(
    object_counts: Sequence[int] = OBJECT_COUNTS, *, frames: int, warmup_frames: int = WARMUP_FRAMES
) -> dict[str, Any]:
    """Per object count: ms per frame of the tracker alone, with `SCENE_LINES` and with
    `SCENE_ZONES`, paired frame by frame (blocking: seconds; run it in a thread)."""
    settings = service_tracking_settings()
    rows = []
    for count in object_counts:
        counters = {
            "tracker": None,
            "lines": RegionCounter(SCENE_LINES, ()),
            "zones": RegionCounter((), SCENE_ZONES),
        }
        trackers = {name: ObjectTracker(settings, frame_rate=FRAME_RATE) for name in counters}
        elapsed: dict[str, list[float]] = {name: [] for name in counters}
        zone_visits: Counter[str] = Counter()
        names = list(counters)
        for index, objects in enumerate(synthetic_frames(count, frames)):
            # Rotate which goes first, so none always finds the caches warmer.
            for name in names[index % 3 :] + names[: index % 3]:
                started = time.perf_counter()
                followed, _ = track_and_count(
                    trackers[name], counters[name], objects, (SCENE_WIDTH, SCENE_HEIGHT)
                )
                taken_ms = (time.perf_counter() - started) * 1000.0
                if index >= warmup_frames:
                    elapsed[name].append(taken_ms)
                if name == "zones":
                    zone_visits.update(zone for obj in followed for zone in obj.zones)
        tracker = _ms(elapsed["tracker"])
        row: dict[str, Any] = {
            "objects": count,
            "frames": len(elapsed["tracker"]),
            "tracker_ms": tracker,
        }
        for name in ("lines", "zones"):
            figures = _ms(elapsed[name])
            row[f"with_{name}_ms"] = figures
            row[f"{name}_add_ms_p50"] = round(
                statistics.median(
                    c - a for c, a in zip(elapsed[name], elapsed["tracker"], strict=True)
                ),
                4,
            )
            row[f"with_{name}_over_tracker"] = {
                "p50": ratio(figures["p50"], tracker["p50"]),
                "p99": ratio(figures["p99"], tracker["p99"]),
            }
        lines_counter = counters["lines"]
        assert lines_counter is not None
        row["crossings"] = _crossings_by_line(lines_counter)
        row["objects_in_zones"] = {zone.name: zone_visits[zone.name] for zone in SCENE_ZONES}
        rows.append(row)
    return {
        "call": "detection_service.tracking.counting.track_and_count",
        "lines": [line.name for line in SCENE_LINES],
        "zones": [zone.name for zone in SCENE_ZONES],
        "rows": rows,
    }


def _crossings_by_line(counter: RegionCounter) -> dict[str, int]:
    """Crossings each way together, per line, over every frame the counter saw."""
    return {
        line: crossed_in + crossed_out
        for line, (crossed_in, crossed_out) in counter.line_totals().items()
    }


async def in_process(ctx: StageContext) -> dict[str, Any] | None:
    """The in-process part of the section, or None when the budget is spent."""
    if not ctx.within_budget(STAGE, seconds=_IN_PROCESS_ESTIMATE_S):
        return None
    frames = IN_PROCESS_FRAMES[ctx.config.quick]
    found = await asyncio.to_thread(measure_in_process, frames=frames)
    for row in found["rows"]:
        logger.info(
            "tracking in process, %3d objects: tracker p50 %.3f ms, with 2 lines p50 %.3f ms,"
            " with 2 zones p50 %.3f ms",
            row["objects"],
            row["tracker_ms"]["p50"],
            row["with_lines_ms"]["p50"],
            row["with_zones_ms"]["p50"],
        )
    return found


def scene_image(folder: Path) -> Path:
    """bus.jpg where the benchmark's image set has it (people and a bus, side by side),
    else its first image."""
    found = sorted(p for p in folder.rglob("*") if p.suffix.lower() in SUFFIXES)
    if not found:
        raise FileNotFoundError(f"no .jpg/.png images under {folder}")
    return next((p for p in found if p.name == "bus.jpg"), found[0])


def panned_sequence(image: Path) -> list[detection_pb2.ImageInput]:
    """The image panned right `PAN_FRAMES` frames and back again, as JPEG frames: looped, the
    objects move back and forth without a jump, so tracks live on and the lines are crossed
    both ways."""
    forward = panned(image, PAN_FRAMES, step=PAN_STEP_PX)
    shots = forward + forward[-2:0:-1]
    inputs = []
    for n, shot in enumerate(shots):
        encoded, data = cv2.imencode(".jpg", shot, [cv2.IMWRITE_JPEG_QUALITY, _JPEG_QUALITY])
        if not encoded:
            raise RuntimeError(f"could not encode frame {n} of {image.name} as JPEG")
        inputs.append(
            detection_pb2.ImageInput(
                data=data.tobytes(), filename=f"pan-{n:03d}.jpg", content_type="image/jpeg"
            )
        )
    return inputs


def _line_message(line: CountingLine) -> detection_pb2.CountingLine:
    return detection_pb2.CountingLine(
        name=line.name,
        start=detection_pb2.Point(x=line.start[0], y=line.start[1]),
        end=detection_pb2.Point(x=line.end[0], y=line.end[1]),
    )


def opening_frame(*, tracked: bool) -> detection_pb2.Frame:
    """What a stream's first frame asks for beyond its image: tracking at `FRAME_RATE` with
    `STREAM_LINES`, or nothing."""
    if not tracked:
        return detection_pb2.Frame()
    return detection_pb2.Frame(
        track=True, frame_rate=FRAME_RATE, lines=[_line_message(line) for line in STREAM_LINES]
    )


@dataclass
class Answers:
    """What one condition's answers said, warm-up included: the check that tracking ran (or
    did not), and the crossings it counted."""

    tracked: bool
    frames: int = 0
    objects: int = 0
    objects_with_track_id: int = 0
    crossings: Counter[str] = field(default_factory=Counter)

    def record(self, reply: detection_pb2.FrameDetections) -> None:
        """Count an answer; an untracked stream's answer with a track id or a crossing is an
        error of its request."""
        objects = reply.result.objects
        with_id = sum(1 for obj in objects if obj.HasField("track_id"))
        if not self.tracked and (with_id or reply.crossings):
            raise RequestError(
                "untracked_answer_tracked", f"{with_id} track ids, {len(reply.crossings)} crossings"
            )
        self.frames += 1
        self.objects += len(objects)
        self.objects_with_track_id += with_id
        self.crossings.update(crossing.line for crossing in reply.crossings)

    def to_json(self) -> dict[str, Any]:
        return {
            "frames": self.frames,
            "objects": self.objects,
            "objects_with_track_id": self.objects_with_track_id,
            "crossings": dict(sorted(self.crossings.items())),
        }


def _service_cpu_ms_per_frame(results: Sequence[LoadResult], process: str) -> float | None:
    """CPU `process` spent per answered frame over `results`; None where unmetered."""
    spent = 0.0
    frames = 0
    for result in results:
        if result.cpu_start is None or result.cpu_end is None:
            return None
        spent += CpuMeter.delta(result.cpu_start, result.cpu_end).get(process, 0.0)
        frames += len(result.latencies_ms)
    return round(1000.0 * spent / frames, 3) if frames and spent else None


def compare(
    windows: Sequence[Window],
    answers: Mapping[str, Answers],
    *,
    concurrency: int,
    sequence_frames: int,
    service_process: str = "detection",
) -> dict[str, Any]:
    """The stream part of the section from the alternating windows of both conditions."""
    by_condition = {
        condition: [w for w in windows if w.condition == condition]
        for condition in (UNTRACKED, TRACKED)
    }
    untracked = by_condition[UNTRACKED]
    throughput: dict[str, float] = {}
    p50: dict[str, float] = {}
    for condition, chosen in by_condition.items():
        work = sum(w.result.work_images for w in chosen)
        seconds = sum(w.result.window_s for w in chosen)
        throughput[condition] = round(work / seconds, 2) if seconds else 0.0
        p50[condition] = round(
            statistics.median(ms for w in chosen for ms in w.result.latencies_ms), 2
        )
    return {
        "path": "detection-service gRPC DetectStream, one stream per worker, one frame in flight",
        "concurrency": concurrency,
        "sequence_frames": sequence_frames,
        "frame_rate": FRAME_RATE,
        "lines": [line.name for line in STREAM_LINES],
        "windows": [w.summary() for w in windows],
        "throughput_fps": throughput,
        "p50_ms": p50,
        "tracked_over_untracked": {
            "throughput": ratio(throughput[TRACKED], throughput[UNTRACKED]),
            "p50": ratio(p50[TRACKED], p50[UNTRACKED]),
        },
        # How far the machine moved between the first and the last untracked window, as a
        # share of their pooled throughput: a ratio within this of 1 is the run's noise.
        "untracked_drift": round(
            abs(untracked[-1].result.throughput - untracked[0].result.throughput)
            / throughput[UNTRACKED],
            3,
        )
        if throughput[UNTRACKED]
        else None,
        "service_cpu_ms_per_frame": {
            condition: _service_cpu_ms_per_frame([w.result for w in chosen], service_process)
            for condition, chosen in by_condition.items()
        },
        "answers": {condition: found.to_json() for condition, found in answers.items()},
    }


async def stream(
    ctx: StageContext, *, address: str, secret: str, concurrency: int
) -> dict[str, Any] | None:
    """The end-to-end part of the section, or None when the budget is spent."""
    full = ctx.settings(concurrency)
    settings = dataclasses.replace(full, measure_s=full.measure_s / _WINDOWS)
    if not ctx.within_budget(STAGE, seconds=2 * _WINDOWS * window_estimate_s(settings)):
        return None
    frames = await asyncio.to_thread(panned_sequence, scene_image(ctx.config.images))
    principal = common_pb2.Principal(user_id=str(uuid.uuid4()), auth_method="jwt")
    answers = {UNTRACKED: Answers(tracked=False), TRACKED: Answers(tracked=True)}
    windows: list[Window] = []
    async with grpc.aio.insecure_channel(address, options=_CHANNEL_OPTIONS) as channel:
        stub = detection_pb2_grpc.DetectionServiceStub(channel)
        for _ in range(_WINDOWS):
            for condition in (UNTRACKED, TRACKED):
                # Signed per window: a signature expires in minutes.
                metadata = principal_metadata(principal, secret=secret)
                factory = stream_factory(
                    stub,
                    frames,
                    metadata,
                    opening=opening_frame(tracked=answers[condition].tracked),
                    on_answer=answers[condition].record,
                    # Workers start at different frames, so the streams are not in lockstep.
                    stride=max(1, len(frames) // 7),
                )
                result = await closed_loop(factory, settings, meter=ctx.meter)
                result.require_clean(f"tracking {condition}")
                window = Window(condition, result)
                logger.info(
                    "tracking %-9s c=%d %7.1f frames/s  p50 %7.1f ms",
                    condition,
                    concurrency,
                    result.throughput,
                    window.p50_ms,
                )
                windows.append(window)
    if not answers[TRACKED].objects_with_track_id:
        raise RuntimeError(
            f"tracked streams answered {answers[TRACKED].objects} objects and not one track id:"
            " tracking did not run, so this measured nothing"
        )
    return compare(windows, answers, concurrency=concurrency, sequence_frames=len(frames))


def markdown(section: Mapping[str, Any]) -> list[str]:
    """The section as Markdown lines for bench/report.py: a table per part that ran."""
    out = ["## Tracking, line counting and zones: what following objects costs, one run", ""]
    if measured := section.get("in_process"):
        rows = measured["rows"]
        out += [
            f"In process (`track_and_count`, no server), {rows[0]['frames']} synthetic frames"
            " per row, boxes moving a few pixels a frame, some across two lines"
            f" ({', '.join(measured['lines'])}) and into two zones"
            f" ({', '.join(measured['zones'])}); ms per frame, tracker alone against tracker"
            " and lines, and tracker and zones, on the same frames:",
            "",
            "| objects | tracker p50 | tracker p99 | + 2 lines p50 | + 2 lines p99 |"
            " lines add (paired p50) | crossings | + 2 zones p50 | + 2 zones p99 |"
            " zones add (paired p50) | objects in zones |",
            "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
            *(
                f"| {row['objects']} | {row['tracker_ms']['p50']:.3f}"
                f" | {row['tracker_ms']['p99']:.3f} | {row['with_lines_ms']['p50']:.3f}"
                f" | {row['with_lines_ms']['p99']:.3f} | {row['lines_add_ms_p50']:.3f}"
                f" | {sum(row['crossings'].values())} | {row['with_zones_ms']['p50']:.3f}"
                f" | {row['with_zones_ms']['p99']:.3f} | {row['zones_add_ms_p50']:.3f}"
                f" | {sum(row['objects_in_zones'].values())} |"
                for row in rows
            ),
            "",
        ]
    if compared := section.get("stream"):
        ratios = compared["tracked_over_untracked"]
        cpu = compared["service_cpu_ms_per_frame"]
        tracked = compared["answers"][TRACKED]
        crossings = ", ".join(f"{line} {n}" for line, n in tracked["crossings"].items()) or "none"
        windows = {
            condition: ", ".join(
                str(w["throughput_fps"]) for w in compared["windows"] if w["condition"] == condition
            )
            for condition in (UNTRACKED, TRACKED)
        }
        out += [
            f"{compared['path']}, c={compared['concurrency']}, a"
            f" {compared['sequence_frames']}-frame panned sequence looped, windows alternating:",
            "",
            "| stream | frames/s | p50 ms | frames/s per window | service CPU ms/frame |",
            "| --- | ---: | ---: | --- | ---: |",
            *(
                f"| {label} | {compared['throughput_fps'][condition]}"
                f" | {compared['p50_ms'][condition]} | {windows[condition]}"
                f" | {'-' if cpu[condition] is None else cpu[condition]} |"
                for condition, label in (
                    (UNTRACKED, UNTRACKED),
                    (TRACKED, f"tracked + {len(compared['lines'])} lines"),
                )
            ),
            "",
            f"Tracked/untracked: throughput {ratios['throughput']}, p50 {ratios['p50']}; the"
            f" untracked windows alone differ by {share(compared.get('untracked_drift'))} of"
            " their throughput (a ratio within that of 1 is this run's noise). Tracked answers:"
            f" {tracked['objects_with_track_id']} of {tracked['objects']} objects with a track"
            f" id; crossings {crossings}.",
            "",
        ]
    return out
