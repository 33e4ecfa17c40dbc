"""The int8-against-fp32 comparison keeps its place in the result document and the Markdown."""

import json
from pathlib import Path

import jsonschema
import pytest

from bench.report import render_markdown
from bench.tests.factories import PAIRED, document, point

SCHEMA = json.loads((Path(__file__).parents[1] / "result.schema.json").read_text())
COMPARED = {
    "models": {"yolov8n": "fp32", "yolov8n-int8": "int8"},
    "path": "detection-service gRPC Detect, 1 image per call, result cache off",
    "rounds": 10,
    "p50_ms_c1": {"yolov8n": 86.06, "yolov8n-int8": 85.48},
    "concurrency": 8,
    "throughput_ips": {"yolov8n": 11.71, "yolov8n-int8": 11.42},
    "p50_ms": {"yolov8n": 733.45, "yolov8n-int8": 739.26},
    "errors": {"yolov8n": 0, "yolov8n-int8": 0},
    "int8_over_fp32": {"p50_c1": 0.993, "throughput": 0.975, "p50": 1.008},
}


def _document(models: dict | None) -> dict:
    found = document([point("gateway", 1, 10.0, 90.0)], paired=PAIRED)
    return {**found, "models": models}


def test_the_comparison_matches_the_schema_and_may_be_absent():
    jsonschema.validate(_document(COMPARED), SCHEMA)
    jsonschema.validate(_document(None), SCHEMA)
    broken = {**COMPARED, "int8_over_fp32": "faster"}
    with pytest.raises(jsonschema.ValidationError) as raised:
        jsonschema.validate(_document(broken), SCHEMA)
    assert "int8_over_fp32" in list(raised.value.absolute_path)


def test_the_markdown_gives_both_figures_and_their_ratios():
    text = render_markdown(_document(COMPARED))
    assert "## Models: yolov8n-int8 against yolov8n (fp32), one run" in text
    assert "fp32 86.06, int8 85.48 (int8/fp32 0.993)" in text
    assert "int8/fp32 throughput 0.975, p50 1.008" in text
    assert "## Models" not in render_markdown(_document(None))
