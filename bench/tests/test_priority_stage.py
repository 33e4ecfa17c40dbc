"""The priority stage against the shared Triton: four windows recorded as the schema says.

The stage drives the detection service's own micro-batcher in this process, so it needs only
Triton (the shared `triton` fixture), not a whole stack. No timing is asserted: the ratios
are reported, not judged; what is checked is that every window measured something, that the
other loops ran only in the busy windows, and that the section renders.
"""

import asyncio
import json
from pathlib import Path

import jsonschema
import pytest

from bench.config import BenchConfig
from bench.images import load_images
from bench.report import render_markdown
from bench.stages import priority
from bench.tests.factories import document, stage_context

SCHEMA = json.loads((Path(__file__).parents[1] / "result.schema.json").read_text())
CONFIG = BenchConfig.preset(quick=True).with_overrides(
    stages=("priority",), warmup_s=0.3, measure_s=1.0, max_requests=200, budget_s=120.0
)

pytestmark = pytest.mark.slow


def test_four_windows_are_measured_recorded_and_rendered(triton) -> None:
    ctx = stage_context(CONFIG, load_images(CONFIG.images), budget_s=120.0)

    # Few loops, so that a caller's image queued behind them in one line still comes back
    # within the test's one-second window on a 2-core machine.
    section = asyncio.run(priority.run(ctx, triton_url=triton.grpc_url, loops=3))

    assert not ctx.skipped, ctx.skipped
    assert section is not None
    jsonschema.validate(section, SCHEMA["properties"]["priority"])
    windows = {window["condition"]: window for window in section["windows"]}
    assert list(windows) == ["idle", "one_line", "two_lanes", "neighbour"]
    assert all(window["caller_requests"] >= 1 for window in windows.values())
    assert windows["idle"]["others_ips"] == 0
    assert all(windows[busy]["others_ips"] > 0 for busy in ("one_line", "two_lanes", "neighbour"))
    assert section["loops"] == 3

    whole = document([])
    whole["priority"] = section
    jsonschema.validate(whole, SCHEMA)
    text = render_markdown(whole)
    assert "## Callers against other work: the micro-batcher at c=1 beside other loops" in text
    assert "| neighbour |" in text
