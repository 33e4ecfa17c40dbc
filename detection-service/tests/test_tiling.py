"""Tiled detection (ADR 0051): a request's `tile_size` has a large image also detected in
overlapping tiles at the model's full resolution, so people too small for the letterboxed
whole image are found, each once, in the image's own pixels. Against real PostgreSQL, Redis
and Triton serving the model; the grid and the merge also on their own.
"""

import uuid

import cv2
import grpc
import numpy as np
import pytest

from detection_service.pipeline import tiling
from detection_service.pipeline.types import DetectionOptions
from objectvision.v1 import detection_pb2

from .conftest import FRAME, PLACED_AT, jpeg


async def _detect(detection, user, data: bytes, **params) -> detection_pb2.ImageResult:
    reply = await detection.stub.Detect(
        detection_pb2.DetectRequest(
            images=[detection_pb2.ImageInput(data=data, filename="frame.jpg")],
            params=detection_pb2.DetectionParams(**params),
        ),
        metadata=detection.metadata(user),
        timeout=60,
    )
    return reply.results[0]


def _iou(a: detection_pb2.BoundingBox, b: tuple[float, float, float, float]) -> float:
    width = max(0.0, min(a.x2, b[2]) - max(a.x1, b[0]))
    height = max(0.0, min(a.y2, b[3]) - max(a.y1, b[1]))
    inter = width * height
    union = (a.x2 - a.x1) * (a.y2 - a.y1) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union


def _people(result: detection_pb2.ImageResult) -> list[detection_pb2.DetectedObject]:
    return [o for o in result.objects if o.class_name == "person"]


# The 4K frame's tests run 33 inferences each on the CPU: in the slow tier (make test-slow, CI).
@pytest.mark.slow
async def test_tiles_find_the_people_a_large_frame_makes_too_small_and_place_them_in_it(
    detection, user, bus_in_a_4k_frame, small_bus
):
    whole_only = await _detect(detection, user, bus_in_a_4k_frame)
    tiled = await _detect(detection, user, bus_in_a_4k_frame, tile_size=640)
    # The same picture at the size the tiles see it, detected on its own.
    reference = await _detect(detection, user, jpeg(small_bus))

    assert (tiled.width, tiled.height) == FRAME
    assert len(_people(tiled)) >= len(_people(whole_only)) + 2
    x, y = PLACED_AT
    sure = [o for o in reference.objects if o.confidence >= 0.5]
    assert {o.class_name for o in sure} == {"bus", "person"}
    for expected in sure:
        placed = (
            expected.box.x1 + x,
            expected.box.y1 + y,
            expected.box.x2 + x,
            expected.box.y2 + y,
        )
        matches = [
            o
            for o in tiled.objects
            if o.class_name == expected.class_name and _iou(o.box, placed) >= 0.85
        ]
        assert len(matches) == 1, (expected, list(tiled.objects))
    # The bus crosses tile edges: its pieces are merged into the one bus.
    assert sum(o.class_name == "bus" for o in tiled.objects) == 1
    # Nothing is found in the grey around it.
    height, width = small_bus.shape[:2]
    for found in tiled.objects:
        assert x - 8 <= found.box.x1 and found.box.x2 <= x + width + 8, found
        assert y - 8 <= found.box.y1 and found.box.y2 <= y + height + 8, found


async def test_an_image_that_fits_in_one_tile_is_detected_as_without_tiles(
    detection, user, bus_jpg
):
    plain = await _detect(detection, user, bus_jpg)
    one_tile = await _detect(detection, user, bus_jpg, tile_size=1080)

    def seen(result):
        return sorted(
            (o.class_name, round(o.confidence, 4), round(o.box.x1, 1)) for o in result.objects
        )

    assert seen(one_tile) == seen(plain)


@pytest.mark.slow
async def test_the_result_cache_tells_tiled_and_whole_image_requests_apart(
    make_harness, user, bus_jpg
):
    cached = await make_harness(RESULT_CACHE_TTL_SECONDS=600)
    note = f"tiling {uuid.uuid4()}".encode()
    unique = bus_jpg[:2] + b"\xff\xfe" + (len(note) + 2).to_bytes(2, "big") + note + bus_jpg[2:]

    whole = await _detect(cached, user, unique)
    tiled = await _detect(cached, user, unique, tile_size=512)
    tiled_again = await _detect(cached, user, unique, tile_size=512)
    other_overlap = await _detect(cached, user, unique, tile_size=512, tile_overlap=0.4)

    assert not whole.cached and not tiled.cached and not other_overlap.cached
    assert tiled_again.cached
    assert [o.box.x1 for o in tiled_again.objects] == [o.box.x1 for o in tiled.objects]


@pytest.mark.parametrize(
    ("params", "says"),
    [
        ({"tile_size": 64}, "tile_size must be between 128 and 4096"),
        ({"tile_size": 5000}, "tile_size must be between 128 and 4096"),
        ({"tile_size": 640, "tile_overlap": 0.7}, "tile_overlap must be above 0 and at most 0.5"),
        ({"tile_overlap": 0.3}, "tile_overlap needs a tile_size"),
        ({"tile_size": 128}, "tiles; at most 64 are detected per image"),
    ],
)
async def test_tiling_out_of_range_or_into_too_many_tiles_is_refused_before_any_inference(
    detection, user, bus_in_a_4k_frame, params, says
):
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await _detect(detection, user, bus_in_a_4k_frame, **params)
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert says in refused.value.details()


@pytest.mark.slow
async def test_tiles_holding_more_than_twice_an_images_most_pixels_are_refused(
    make_harness, user, bus_in_a_4k_frame
):
    """1500-pixel tiles half overlapping cut the 4K frame into 10 tiles of 22.5 megapixels in
    all: more than twice the 10 megapixels this deployment accepts in an image."""
    strict = await make_harness(MAX_IMAGE_PIXELS=10_000_000)

    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await _detect(strict, user, bus_in_a_4k_frame, tile_size=1500, tile_overlap=0.5)
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "would hold 22500000 pixels; at most 20000000" in refused.value.details()
    assert len((await _detect(strict, user, bus_in_a_4k_frame, tile_size=1500)).objects) >= 1


def test_tiles_cover_the_image_overlapping_and_end_flush_with_its_edges():
    image = np.arange(1000 * 700 * 3, dtype=np.uint32).astype(np.uint8).reshape(700, 1000, 3)

    tiles = tiling.cut(image, 400, 0.25)

    assert tiling.tile_count(1000, 700, 400, 0.25) == len(tiles) == 3 * 2
    assert sorted({t.x for t in tiles}) == [0, 300, 600]
    assert sorted({t.y for t in tiles}) == [0, 300]
    covered = np.zeros((700, 1000), bool)
    for tile in tiles:
        pixels = cv2.imdecode(np.frombuffer(tile.png, np.uint8), cv2.IMREAD_COLOR)
        assert pixels.shape == (tile.height, tile.width, 3) == (400, 400, 3)
        assert np.array_equal(pixels, image[tile.y : tile.y + 400, tile.x : tile.x + 400])
        covered[tile.y : tile.y + 400, tile.x : tile.x + 400] = True
    assert covered.all()
    assert tiling.tiled_pixels(1000, 700, 400, 0.25) == sum(t.width * t.height for t in tiles)
    assert tiling.tile_count(400, 300, 400, 0.25) == 1
    assert tiling.tiled_pixels(400, 300, 400, 0.25) == 400 * 300


def test_a_piece_of_an_object_seen_whole_is_dropped_and_the_sharper_box_wins():
    image = (1000, 1000)
    # The whole image: a person, and a blurred box of a small person a tile sees sharply.
    whole = np.array([[100, 100, 300, 400, 0.9, 0], [610, 605, 650, 700, 0.4, 0]], np.float32)
    right = tiling.Tile(x=250, y=0, width=400, height=400, png=b"")
    # In the right tile's pixels: the part of the person its left edge cuts, and a car.
    in_right = np.array([[0, 110, 50, 395, 0.95, 0], [200, 50, 260, 90, 0.7, 2]], np.float32)
    lower = tiling.Tile(x=500, y=500, width=400, height=400, png=b"")
    in_lower = np.array([[112, 108, 148, 196, 0.85, 0]], np.float32)

    rows = tiling.merge(whole, [(right, in_right), (lower, in_lower)], image, 100)

    assert np.allclose(
        rows[:, :5],
        [[100, 100, 300, 400, 0.9], [612, 608, 648, 696, 0.85], [450, 50, 510, 90, 0.7]],
    )
    assert [int(row[5]) for row in rows] == [0, 0, 2]
    assert len(tiling.merge(whole, [(right, in_right), (lower, in_lower)], image, 2)) == 2


def test_the_pieces_of_an_object_no_tile_holds_whole_are_put_together():
    image = (1000, 1000)
    left = tiling.Tile(x=0, y=0, width=400, height=400, png=b"")
    right = tiling.Tile(x=300, y=0, width=400, height=400, png=b"")
    # A bus from x=250 to x=450: cut by the left tile's right edge and the right tile's left.
    in_left = np.array([[250, 40, 400, 160, 0.6, 5]], np.float32)
    in_right = np.array([[0, 42, 150, 158, 0.7, 5]], np.float32)

    rows = tiling.merge(
        np.zeros((0, 6), np.float32), [(left, in_left), (right, in_right)], image, 100
    )

    assert len(rows) == 1
    assert rows[0][:4].tolist() == pytest.approx([250, 40, 450, 160])
    assert int(rows[0][5]) == 5


def test_tiling_options_survive_a_jobs_stored_json_and_leave_other_options_json_unchanged():
    plain = DetectionOptions(confidence=0.25, iou=0.45, max_detections=300)
    tiled = DetectionOptions(
        confidence=0.25, iou=0.45, max_detections=300, tile_size=640, tile_overlap=0.2
    )

    assert "tile_size" not in plain.to_json()
    assert DetectionOptions.from_json(tiled.to_json()) == tiled
    assert DetectionOptions.from_json(plain.to_json()) == plain
