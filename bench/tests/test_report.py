"""The result document keeps its schema; the Markdown states targets plainly."""

import json
from pathlib import Path

import jsonschema

from bench.report import render_markdown, write_outputs
from bench.tests.factories import PAIRED, document, point

SCHEMA = json.loads((Path(__file__).parents[1] / "result.schema.json").read_text())


def _document():
    return document(
        [
            point("raw", 1, 20.0, 50.0),
            point("raw", 1, 24.0, 160.0, batch=4),
            point("gateway", 1, 10.0, 90.0),
            point("gateway", 32, 15.0, 2000.0, errors=2),
            point("naive", 32, 14.0, 2200.0),
        ],
        paired=PAIRED,
    )


def test_document_matches_the_schema():
    jsonschema.validate(_document(), SCHEMA)


def test_markdown_says_which_targets_were_missed_and_what_was_not_measured():
    text = render_markdown(_document())
    assert "quick mode" in text
    assert "**missed**" in text  # gateway p50 overhead: 90 - 50 = 40 ms > 15 ms
    assert "not measured" in text  # no detect points
    assert "| 32 | 15.0 |" in text
    assert "grpc:UNAVAILABLE: 2" in text
    assert "failed: boom" in text
    assert "gateway - raw 11.0" in text
    assert "| target | value | goal | result | from | CPU-normalised |" in text


def test_outputs_are_written_with_a_timestamped_copy(tmp_path):
    paths = write_outputs(_document(), tmp_path)
    assert paths["json"].name == "20261125T120000Z-abc1234-quick.json"
    assert json.loads(paths["latest_json"].read_text()) == json.loads(paths["json"].read_text())
    assert paths["markdown"].read_text().startswith("# Benchmark")
    assert not list(tmp_path.glob("*.tmp"))
    written = json.loads(paths["latest_json"].read_text())
    jsonschema.validate(written, SCHEMA)
    # Either the plot exists or the document says why not.
    assert paths["plot"].exists() or any("matplotlib" in n for n in written["notes"])
