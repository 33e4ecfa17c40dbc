"""The tiling stage without a stack: the scene it builds, the rounds it sends (alternating,
the first not counted), the figures it derives from the answers, and their place in the
result document and the Markdown. No timing is asserted: the figures are reported, not
judged."""

import asyncio
import json
from pathlib import Path

import cv2
import jsonschema
import numpy as np
import pytest

from bench.report import render_markdown
from bench.stages import tiling
from bench.tests.factories import document
from objectvision.v1 import detection_pb2

SCHEMA = json.loads((Path(__file__).parents[1] / "result.schema.json").read_text())
BUS = Path(__file__).resolve().parents[2].parent / "shared/images/bus.jpg"


class FakeService:
    """Answers Detect as the service would for the scene: a person whole, more when tiled."""

    def __init__(self, *, cached: bool = False) -> None:
        self.sent: list[int] = []
        self.cached = cached

    async def Detect(self, request, *, metadata, timeout):  # noqa: N802, ASYNC109
        tile_size = request.params.tile_size
        self.sent.append(tile_size)
        assert not request.store
        await asyncio.sleep(0.02 if tile_size else 0.002)
        names = ["bus", "person", "person", "person", "person"] if tile_size else ["person"]
        return detection_pb2.DetectResponse(
            results=[
                detection_pb2.ImageResult(
                    width=tiling.FRAME[0],
                    height=tiling.FRAME[1],
                    objects=[detection_pb2.DetectedObject(class_name=name) for name in names],
                    cached=self.cached,
                )
            ]
        )


@pytest.mark.skipif(not BUS.exists(), reason="needs ../shared/images/bus.jpg")
def test_the_scene_is_the_bus_shrunk_into_a_grey_4k_frame():
    frame = cv2.imdecode(np.frombuffer(tiling.scene(BUS.read_bytes()), np.uint8), 1)
    assert (frame.shape[1], frame.shape[0]) == tiling.FRAME
    assert abs(int(frame[10, 10, 0]) - tiling.GREY) <= 2
    x, y = tiling.PLACED_AT
    assert abs(int(frame[y - 10, x - 10, 1]) - tiling.GREY) <= 2
    assert frame[y : y + 100, x : x + 100].std() > 10  # the picture, not grey


async def test_rounds_alternate_and_the_figures_fit_the_schema_and_render():
    service = FakeService()

    section = await tiling.measure(service, (), b"frame", rounds=3)

    # A warm-up round, then three counted; each round both ways, the order alternating.
    assert service.sent == [0, 640, 640, 0, 0, 640, 640, 0]
    assert section["tiles"] == 32 and section["inferences_per_call"] == {"whole": 1, "tiled": 33}
    assert section["objects"] == {"whole": {"person": 1}, "tiled": {"bus": 1, "person": 4}}
    assert section["more_with_tiles"] == {"bus": 1, "person": 3}
    assert section["answers_agree"] and section["rounds"] == 3
    assert section["p50_ms"]["tiled"] > section["p50_ms"]["whole"] > 0
    assert section["tiled_over_whole_p50"] > 1
    whole = document([])
    whole["tiling"] = section
    jsonschema.validate(whole, SCHEMA)
    rendered = render_markdown(whole)
    assert "## Tiled detection: tile_size 640 against the whole image alone" in rendered
    assert "cut into 32 tiles (overlap 0.2): 33 images inferred per tiled call" in rendered
    assert "times the latency and find 3 more people" in rendered
    assert "whole image person 1, bus 0; tiled person 4, bus 1." in rendered
    whole["tiling"] = None
    jsonschema.validate(whole, SCHEMA)
    assert "## Tiled detection" not in render_markdown(whole)


async def test_a_cached_answer_fails_the_stage():
    with pytest.raises(RuntimeError, match="result cache"):
        await tiling.measure(FakeService(cached=True), (), b"frame", rounds=1)
