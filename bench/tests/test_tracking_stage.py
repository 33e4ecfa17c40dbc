"""The tracking stage: its synthetic scene exercises the tracker and both lines, its stream
comparison pools and divides what its windows measured, and both parts reach the schema and
the Markdown; the stream part itself runs against detection-service's realtime role in front
of the suite's Triton (slow tier).

No timing is asserted: the figures are reported, not judged.
"""

import asyncio
import json
from pathlib import Path

import jsonschema
import pytest

from bench.config import BenchConfig
from bench.gpu_encoded import BENCH_SECRET, RealtimeService
from bench.images import load_images
from bench.loadgen import RequestError
from bench.report import render_markdown
from bench.stages import tracking
from bench.tests.factories import document, stage_context, window
from detection_service.tracking.counting import RegionCounter, track_and_count
from detection_service.tracking.tracker import ObjectTracker
from objectvision.v1 import detection_pb2
from objectvision_devstack.pytest_plugin import served_model_path
from objectvision_devstack.triton import LocalTriton

SCHEMA = json.loads((Path(__file__).parents[1] / "result.schema.json").read_text())
IMAGES = BenchConfig.preset(quick=True).images


def _with_section(section: dict) -> dict:
    whole = document([])
    whole["tracking"] = section
    jsonschema.validate(whole, SCHEMA)
    return whole


def test_the_synthetic_scene_is_tracked_and_crosses_both_lines() -> None:
    """What the in-process figures time must be real work: every box gets a track id once
    confirmed, and the moving grid crosses each line (more of it, the more boxes)."""
    frames = tracking.synthetic_frames(20, 60)
    assert [len(frame) for frame in frames] == [20] * 60
    tracker = ObjectTracker(tracking.service_tracking_settings(), frame_rate=tracking.FRAME_RATE)
    counter = RegionCounter(tracking.SCENE_LINES, ())
    crossed: set[str] = set()
    for objects in frames:
        followed, crossings = track_and_count(
            tracker, counter, objects, (tracking.SCENE_WIDTH, tracking.SCENE_HEIGHT)
        )
        crossed |= {crossing.line for crossing in crossings}
    assert all(obj.track_id is not None for obj in followed)
    assert len({obj.track_id for obj in followed}) == 20
    assert crossed == {line.name for line in tracking.SCENE_LINES}


def test_in_process_rows_pair_the_tracker_with_and_without_lines_and_zones() -> None:
    measured = tracking.measure_in_process((5, 20), frames=70, warmup_frames=10)
    rows = measured["rows"]
    assert [row["objects"] for row in rows] == [5, 20]
    assert all(row["frames"] == 60 for row in rows)
    for row in rows:
        for figures in (row["tracker_ms"], row["with_lines_ms"], row["with_zones_ms"]):
            assert 0 < figures["p50"] <= figures["p99"]
        assert set(row["crossings"]) == {"gate", "lane"}
        assert set(row["objects_in_zones"]) == {"corner", "diamond"}
    # More boxes on the same grid, more of them across the lines and in the zones.
    assert sum(rows[1]["crossings"].values()) > sum(rows[0]["crossings"].values()) > 0
    in_zones = [row["objects_in_zones"] for row in rows]
    assert all(count > 0 for count in in_zones[0].values()), "the grid reaches both zones"
    assert sum(in_zones[1].values()) > sum(in_zones[0].values())

    whole = _with_section({"in_process": measured, "stream": None})
    text = render_markdown(whole)
    assert "## Tracking, line counting and zones: what following objects costs, one run" in text
    assert "| objects | tracker p50 | tracker p99 | + 2 lines p50 |" in text
    assert f"| 20 | {rows[1]['tracker_ms']['p50']:.3f} |" in text


def _answers(tracked: bool, *, frames: int, objects: int, with_id: int) -> tracking.Answers:
    found = tracking.Answers(tracked=tracked, frames=frames, objects=objects)
    found.objects_with_track_id = with_id
    if tracked:
        found.crossings.update({"gate": 3, "door": 1})
    return found


def test_stream_windows_are_pooled_per_condition_and_divided() -> None:
    windows = [
        window("untracked", [100.0, 110.0], frames=40.0, seconds=2.0),
        window("tracked", [104.0, 114.0], frames=38.0, seconds=2.0),
        window("untracked", [120.0, 130.0], frames=44.0, seconds=2.0),
        window("tracked", [124.0, 134.0], frames=40.0, seconds=2.0),
    ]
    answers = {
        "untracked": _answers(False, frames=90, objects=450, with_id=0),
        "tracked": _answers(True, frames=85, objects=425, with_id=400),
    }
    section = tracking.compare(windows, answers, concurrency=4, sequence_frames=118)
    assert section["throughput_fps"] == {"untracked": 21.0, "tracked": 19.5}
    # Pooled latencies 100, 110, 120, 130 and 104, 114, 124, 134: medians 115 and 119.
    assert section["p50_ms"] == {"untracked": 115.0, "tracked": 119.0}
    assert section["tracked_over_untracked"] == {
        "throughput": round(19.5 / 21.0, 3),
        "p50": round(119.0 / 115.0, 3),
    }
    assert [w["condition"] for w in section["windows"]] == [
        "untracked",
        "tracked",
        "untracked",
        "tracked",
    ]
    # Unmetered windows say so rather than claim zero CPU.
    assert section["service_cpu_ms_per_frame"] == {"untracked": None, "tracked": None}

    text = render_markdown(_with_section({"in_process": None, "stream": section}))
    assert "| untracked | 21.0 | 115.0 | 20.0, 22.0 | - |" in text
    assert "| tracked + 2 lines | 19.5 | 119.0 | 19.0, 20.0 | - |" in text
    # The untracked windows alone: 20 and 22 frames/s, 2 apart, of 21 pooled.
    assert section["untracked_drift"] == round(2 / 21, 3)
    assert "Tracked/untracked: throughput 0.929, p50 1.035; the untracked windows alone" in text
    assert "differ by 9.5% of their throughput" in text
    assert "400 of 425 objects with a track id; crossings door 1, gate 3." in text


def test_an_untracked_answer_with_a_track_id_is_an_error() -> None:
    tracked_reply = detection_pb2.FrameDetections(
        sequence=1,
        result=detection_pb2.ImageResult(objects=[detection_pb2.DetectedObject(track_id=0)]),
    )
    with pytest.raises(RequestError) as raised:
        tracking.Answers(tracked=False).record(tracked_reply)
    assert raised.value.kind == "untracked_answer_tracked"
    counted = tracking.Answers(tracked=True)
    counted.record(tracked_reply)
    assert (counted.frames, counted.objects, counted.objects_with_track_id) == (1, 1, 1)


def test_only_a_tracked_stream_opens_with_tracking_and_lines() -> None:
    assert tracking.opening_frame(tracked=False) == detection_pb2.Frame()
    opening = tracking.opening_frame(tracked=True)
    assert opening.track and opening.frame_rate == tracking.FRAME_RATE
    assert [line.name for line in opening.lines] == ["gate", "door"]
    assert (opening.lines[0].start.x, opening.lines[0].end.y) == (280.0, 480.0)


@pytest.mark.slow
@pytest.mark.skipif(not IMAGES.exists(), reason="needs ../shared/images")
def test_tracked_streams_answer_with_track_ids_and_untracked_ones_without(
    triton: LocalTriton, tmp_path: Path
) -> None:
    config = BenchConfig.preset(quick=True).with_overrides(
        stages=("tracking",), warmup_s=0.3, measure_s=2.0, max_requests=200, budget_s=120.0
    )
    ctx = stage_context(config, load_images(IMAGES))
    service = RealtimeService(triton.grpc_url, served_model_path().resolve(), tmp_path, processes=1)
    try:
        service.start(timeout_s=120)
        ctx.meter.add("detection", service.process.pid)
        section = asyncio.run(
            tracking.stream(ctx, address=service.url, secret=BENCH_SECRET, concurrency=2)
        )
    finally:
        service.stop()

    assert not ctx.skipped, ctx.skipped
    assert section is not None
    answers = section["answers"]
    assert answers["untracked"]["frames"] >= 1 and answers["untracked"]["objects"] >= 1
    assert answers["untracked"]["objects_with_track_id"] == 0
    assert answers["untracked"]["crossings"] == {}
    assert answers["tracked"]["objects_with_track_id"] >= 1
    assert all(w["frames"] >= 1 for w in section["windows"])
    assert all(cpu is not None for cpu in section["service_cpu_ms_per_frame"].values())
    assert "| tracked + 2 lines |" in render_markdown(
        _with_section({"in_process": None, "stream": section})
    )
