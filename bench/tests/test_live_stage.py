"""The live stage: its streams speak the WebSocket's protocol (settings, ready, frames
answered in order, end, ended, 1000) and refuse every wrong answer; its windows are pooled and
divided; its section fits the schema and renders. The protocol half runs against a small
WebSocket server standing in for the gateway; the stage itself runs against the benchmark's
own stack (slow tier).

No timing is asserted: the figures are reported, not judged.
"""

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from websockets.asyncio.server import ServerConnection, serve

from bench.config import BenchConfig
from bench.images import Image, load_images
from bench.loadgen import LoadSettings, RequestError, closed_loop
from bench.report import render_markdown
from bench.runner import INVOLVED, _start_stack
from bench.stages import live
from bench.tests.factories import document, stage_context, window

SCHEMA = json.loads((Path(__file__).parents[1] / "result.schema.json").read_text())
TOKEN = "test-token"
IMAGES = [
    Image("bus.jpg", b"bus-frame", "image/jpeg"),
    Image("zidane.jpg", b"person-frame", "image/jpeg"),
]


@dataclass
class Gateway:
    """What the stand-in does wrong (if anything), and what it saw."""

    shift_sequence_at: int | None = None
    frame_error_at: int | None = None
    drop_bus: bool = False
    ended_frames_offset: int = 0
    error_at: int | None = None
    answer_delay_s: float = 0.0
    settings: list[Any] = field(default_factory=list)
    authorization: list[str | None] = field(default_factory=list)
    frames: list[bytes] = field(default_factory=list)
    most_unanswered: int = 0

    def answer(self, sequence: int, frame: bytes) -> dict[str, Any]:
        if sequence == self.frame_error_at:
            return {"type": "frame_error", "sequence": sequence, "message": "not an image"}
        counts = {"bus": 1, "person": 4} if frame.startswith(b"bus") else {"person": 2}
        if self.drop_bus:
            counts.pop("bus", None)
        shifted = sequence + 1 if sequence == self.shift_sequence_at else sequence
        return {"type": "detections", "sequence": shifted, "counts": counts, "detections": []}

    async def handle(self, connection: ServerConnection) -> None:
        self.authorization.append(connection.request.headers.get("Authorization"))
        self.settings.append(json.loads(await connection.recv()))
        await connection.send(
            json.dumps({"type": "ready", "max_frame_bytes": 1000, "max_in_flight": 4})
        )
        unanswered: asyncio.Queue[tuple[int, bytes] | None] = asyncio.Queue()

        async def answer() -> None:
            while (item := await unanswered.get()) is not None:
                await asyncio.sleep(self.answer_delay_s)
                await connection.send(json.dumps(self.answer(*item)))

        answering = asyncio.create_task(answer())
        sequence = 0
        async for message in connection:
            if isinstance(message, str):
                assert json.loads(message) == {"type": "end"}
                await unanswered.put(None)
                await answering
                ended = sequence + self.ended_frames_offset
                await connection.send(json.dumps({"type": "ended", "frames": ended}))
                await connection.close(1000, "stream ended")
                return
            sequence += 1
            if sequence == self.error_at:
                error = {"type": "error", "code": "unavailable", "message": "model away"}
                await connection.send(json.dumps(error))
                await connection.close(1013, "model away")
                break
            self.frames.append(message)
            await unanswered.put((sequence, message))
            self.most_unanswered = max(self.most_unanswered, unanswered.qsize())
        answering.cancel()


@asynccontextmanager
async def stand_in(gateway: Gateway) -> AsyncIterator[str]:
    """The stand-in's ws:// URL while it serves."""
    async with serve(gateway.handle, "127.0.0.1", 0) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        yield f"ws://127.0.0.1:{port}{live.LIVE_PATH}"


HEADERS = {"Authorization": f"Bearer {TOKEN}"}


async def _send_all(gateway: Gateway, frames: int, *, in_flight: int = 1) -> live.Checks:
    """`frames` frames on one stream, `in_flight` senders at once; the checks they passed."""
    checks = live.Checks()
    async with (
        stand_in(gateway) as url,
        live.LiveStream.open(url, HEADERS, timeout_s=5.0) as stream,
    ):
        senders = [
            live.shared_sender(stream, IMAGES, index=n, checks=checks) for n in range(in_flight)
        ]

        async def run(send: Any) -> None:
            for _ in range(frames // in_flight):
                await send()

        await asyncio.gather(*(run(send) for send in senders))
    return checks


def test_the_url_is_the_gateways_with_a_websocket_scheme() -> None:
    assert live.live_url("http://127.0.0.1:8000") == "ws://127.0.0.1:8000/api/v1/ws/detect"
    assert live.live_url("https://api.example.com/v/") == "wss://api.example.com/v/api/v1/ws/detect"


async def test_a_stream_sends_settings_then_frames_and_ends_as_the_protocol_says() -> None:
    gateway = Gateway(answer_delay_s=0.01)
    checks = await _send_all(gateway, 8, in_flight=4)
    assert gateway.authorization == [f"Bearer {TOKEN}"]
    assert gateway.settings == [{}]
    assert len(gateway.frames) == 8
    # Four senders on one stream: frames waited unanswered together (pipelined).
    assert gateway.most_unanswered >= 2
    # Senders 0 and 2 start at bus.jpg, 1 and 3 at zidane.jpg; each sends two frames in turn.
    assert checks.to_json() == {"answers": 8, "checked_frames": 4}
    assert not checks.wrong


@pytest.mark.parametrize(
    ("gateway", "kind"),
    [
        (Gateway(shift_sequence_at=2), "out_of_order"),
        (Gateway(frame_error_at=3), "frame_error"),
        (Gateway(drop_bus=True), "no_bus"),
        # The stream ends early: the frame waiting fails with what the gateway said.
        (Gateway(error_at=2), "live:error"),
    ],
)
async def test_a_wrong_answer_fails_its_frame_and_is_counted(gateway: Gateway, kind: str) -> None:
    with pytest.raises(RequestError) as raised:
        await _send_all(gateway, 4)
    assert raised.value.kind == kind


async def test_a_stream_whose_ended_misses_frames_fails() -> None:
    with pytest.raises(RuntimeError, match="not ended with every frame and 1000"):
        await _send_all(Gateway(ended_frames_offset=-1), 2)


async def test_workers_each_open_end_and_check_a_stream_of_their_own() -> None:
    gateway = Gateway()
    checks = live.Checks()
    async with stand_in(gateway) as url:
        factory = live.stream_factory(url, IMAGES, headers=HEADERS, checks=checks, timeout_s=5.0)
        result = await closed_loop(
            factory, LoadSettings(concurrency=2, warmup_s=0.05, measure_s=0.2, max_requests=50)
        )
    result.require_clean("stand-in")
    assert gateway.settings == [{}, {}]
    assert checks.answers == len(gateway.frames) > 0
    assert not checks.wrong
    checks.raise_if_wrong("stand-in")


def test_wrong_answers_fail_the_window_loudly() -> None:
    checks = live.Checks()
    with pytest.raises(RequestError):
        checks.check_live(IMAGES[0], 1, {"type": "frame_error", "sequence": 1, "message": "x"})
    with pytest.raises(RuntimeError, match="1 of 1 answers wrong"):
        checks.raise_if_wrong("live")
    rest = live.Checks()
    with pytest.raises(RequestError) as raised:
        rest.check_rest(IMAGES[0], {"detections": [{"class": "person"}]})
    assert raised.value.kind == "no_bus"
    rest.check_rest(IMAGES[0], {"detections": [{"class": "bus"}]})
    rest.check_rest(IMAGES[1], {"detections": []})
    assert rest.to_json() == {"answers": 2, "checked_frames": 1}


def _section(rows: list[dict[str, Any]], pipelining: dict[str, Any] | None) -> dict[str, Any]:
    return {
        "rest": "POST /api/v1/detect/image?store=false, multipart, one request at a time",
        "live": "/api/v1/ws/detect, one stream per worker, one frame in flight, settings {}",
        "images": 10,
        "max_frame_bytes": 20971520,
        "max_in_flight": 4,
        "compression": None,
        "rows": rows,
        "pipelining": pipelining,
        "answers": {
            condition: {"answers": 40, "checked_frames": 4}
            for condition in ("rest", "live", "single", "pipelined")
        },
        "answers_verified": True,
    }


def _with_section(section: dict[str, Any]) -> dict[str, Any]:
    whole = document([])
    whole["live"] = section
    jsonschema.validate(whole, SCHEMA)
    return whole


def test_rest_and_live_windows_are_pooled_per_condition_and_divided() -> None:
    windows = [
        window("rest", [100.0, 110.0], frames=20.0, seconds=2.0),
        window("live", [90.0, 100.0], frames=22.0, seconds=2.0),
        window("rest", [120.0, 130.0], frames=24.0, seconds=2.0),
        window("live", [94.0, 104.0], frames=24.0, seconds=2.0),
    ]
    row = live.compare(windows, concurrency=4, involved=["gateway", "triton"])
    assert row["concurrency"] == 4
    assert row["throughput_fps"] == {"rest": 11.0, "live": 11.5}
    # Pooled latencies 100, 110, 120, 130 and 90, 94, 100, 104: medians 115 and 97.
    assert row["p50_ms"] == {"rest": 115.0, "live": 97.0}
    assert row["p95_ms"]["rest"] == pytest.approx(128.5)
    assert row["live_over_rest"]["throughput"] == round(11.5 / 11.0, 3)
    assert row["live_over_rest"]["p50"] == round(97.0 / 115.0, 3)
    # The rest windows alone: 10 and 12 frames/s, 2 apart, of 11 pooled.
    assert row["rest_drift"] == round(2 / 11, 3)
    assert [w["condition"] for w in row["windows"]] == ["rest", "live", "rest", "live"]
    # Unmetered windows say so rather than claim zero CPU.
    assert row["gateway_cpu_ms_per_frame"] == {"rest": None, "live": None}
    assert row["loadgen_busy"] == row["other_load"] == {"rest": None, "live": None}

    pipelined = live.compare_pipelining(
        [
            window("single", [100.0, 100.0], frames=20.0, seconds=2.0),
            window("pipelined", [300.0, 340.0], frames=26.0, seconds=2.0),
            window("single", [100.0, 100.0], frames=20.0, seconds=2.0),
            window("pipelined", [320.0, 360.0], frames=26.0, seconds=2.0),
        ],
        max_in_flight=4,
        involved=["gateway"],
    )
    assert pipelined["throughput_fps"] == {"single": 10.0, "pipelined": 13.0}
    assert pipelined["pipelined_over_single"] == {"throughput": 1.3, "p50": 3.3}
    assert pipelined["single_drift"] == 0.0

    text = render_markdown(_with_section(_section([row], pipelined)))
    assert "## Live detection: the WebSocket against a REST request a frame" in text
    assert "| 4 | REST | 11.0 | 115.0 | 128.5 | 10.0, 12.0 | - | - | - | - | - |" in text
    assert "| 4 | WebSocket | 11.5 | 97.0 |" in text
    assert "c=4: live/REST throughput 1.045, p50 0.843" in text
    assert "the REST windows alone differ by 18.2% of their throughput" in text
    assert "| 1 | 10.0 | 100.0 | 100.0 | 10.0, 10.0 |" in text
    assert "| 4 | 13.0 | 330.0 |" in text
    assert "Pipelined/single: throughput 1.3, p50 3.3" in text
    # A run whose budget left out the pipelined part still fits the schema and renders.
    assert "One stream" not in render_markdown(_with_section(_section([row], None)))


def test_the_stage_is_wired_into_the_run() -> None:
    from bench.records import STAGE_TITLES, STAGES
    from bench.runner import STACK_STAGES

    assert "live" in STAGES and "live" in STACK_STAGES and "live" in STAGE_TITLES
    assert BenchConfig.preset(quick=True).concurrencies_for("live") == (1, 4)
    assert BenchConfig.preset(quick=False).concurrencies_for("live") == (1, 8)
    assert "live" in SCHEMA["properties"]


CONFIG = BenchConfig.preset(quick=True).with_overrides(
    stages=("live",),
    concurrencies=(1, 2),
    warmup_s=0.3,
    measure_s=1.0,
    max_requests=100,
    budget_s=240.0,
)


@pytest.mark.slow
@pytest.mark.skipif(
    not CONFIG.served_model.exists(), reason=f"{CONFIG.served_model} is missing: make model"
)
@pytest.mark.skipif(not CONFIG.images.exists(), reason="needs ../shared/images")
def test_the_stage_runs_through_the_gateway_and_checks_every_answer(tmp_path: Path) -> None:
    images = load_images(CONFIG.images)
    ctx = stage_context(CONFIG, images)
    stack = _start_stack(CONFIG, tmp_path / "stack")
    try:
        for name, process in stack.processes.items():
            ctx.meter.add(name, process.pid)
        section = asyncio.run(
            live.run(ctx, base_url=stack.gateway_url, involved=INVOLVED["gateway"])
        )
        assert not stack.exited()
    finally:
        stack.stop()

    assert not ctx.skipped, ctx.skipped
    assert section is not None
    assert [row["concurrency"] for row in section["rows"]] == [1, 2]
    assert section["pipelining"] is not None
    assert section["pipelining"]["max_in_flight"] == section["max_in_flight"] >= 2
    for condition in ("rest", "live", "single", "pipelined"):
        assert section["answers"][condition]["answers"] >= 1
        assert section["answers"][condition]["checked_frames"] >= 1
    for part in (*section["rows"], section["pipelining"]):
        assert all(cpu is not None for cpu in part["server_cpu_ms_per_frame"].values())
        assert all(cpu is not None for cpu in part["loadgen_cpu_ms_per_frame"].values())
    assert "| 2 | WebSocket |" in render_markdown(_with_section(section))
