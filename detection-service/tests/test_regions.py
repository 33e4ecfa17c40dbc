"""Regions of interest (ADR 0053): a request keeps only the objects standing in its polygons
(the bottom centre of the box inside), whose corners are fractions of the image's size; with
tiles, only the tiles near the regions are detected. Against real PostgreSQL, Redis and Triton.
"""

import cv2
import grpc
import numpy as np
import pytest

from detection_service.pipeline.annotate import REGION_COLOR, Rendering, render
from objectvision.v1 import detection_pb2

from .conftest import FRAME, PLACED_AT, SCALE
from .test_tiling import _detect

LEFT_HALF = [(0.0, 0.0), (0.5, 0.0), (0.5, 1.0), (0.0, 1.0)]
TOP_TENTH = [(0.0, 0.0), (1.0, 0.0), (1.0, 0.1), (0.0, 0.1)]


def _regions(*polygons) -> list[detection_pb2.Region]:
    return [
        detection_pb2.Region(polygon=[detection_pb2.Point(x=x, y=y) for x, y in polygon])
        for polygon in polygons
    ]


def _seen(objects) -> list[tuple[str, float]]:
    return sorted((o.class_name, round(o.confidence, 4)) for o in objects)


def _standing_left_of(objects, x: float) -> list:
    return [o for o in objects if (o.box.x1 + o.box.x2) / 2 <= x]


def _images_inferred(harness) -> float:
    """Images the harness's micro-batcher has sent to Triton so far."""
    (family,) = harness.service.metrics.batch_size.collect()
    return next(s.value for s in family.samples if s.name == "detection_batch_size_sum")


async def test_only_objects_standing_in_a_region_are_kept(detection, user, bus_jpg):
    everything = await _detect(detection, user, bus_jpg)
    left = await _detect(detection, user, bus_jpg, regions=_regions(LEFT_HALF))
    left_or_top = await _detect(detection, user, bus_jpg, regions=_regions(TOP_TENTH, LEFT_HALF))
    nowhere = await _detect(detection, user, bus_jpg, regions=_regions(TOP_TENTH))

    expected = _standing_left_of(everything.objects, everything.width / 2)
    assert 0 < len(expected) < len(everything.objects)
    assert _seen(left.objects) == _seen(expected)
    assert _seen(left_or_top.objects) == _seen(expected)
    # Every object of bus.jpg stands in its lower half: none in the top tenth.
    assert list(nowhere.objects) == []


@pytest.mark.slow
async def test_with_tiles_only_the_tiles_near_the_regions_are_detected(
    make_harness, user, bus_in_a_4k_frame
):
    harness = await make_harness()
    width, height = FRAME
    x, y = PLACED_AT
    # Around the shrunk bus.jpg (810 x 1080 at SCALE) with a margin, as fractions of the frame.
    right, bottom = x + 810 * SCALE + 40, y + 1080 * SCALE + 40
    around = [
        ((x - 40) / width, (y - 40) / height),
        (right / width, (y - 40) / height),
        (right / width, bottom / height),
        ((x - 40) / width, bottom / height),
    ]

    before = _images_inferred(harness)
    every_tile = await _detect(harness, user, bus_in_a_4k_frame, tile_size=640)
    after_all = _images_inferred(harness)
    near = await _detect(harness, user, bus_in_a_4k_frame, tile_size=640, regions=_regions(around))
    after_near = _images_inferred(harness)

    assert after_all - before == 33  # 32 tiles and the whole frame
    assert 2 <= after_near - after_all < 33 / 2
    # What operators read: the tiles beside the images.
    (tiles,) = harness.service.metrics.tiles.collect()
    tiles_total = next(s.value for s in tiles.samples if s.name == "detection_tiles_total")
    assert tiles_total == 32 + (after_near - after_all - 1)
    assert _seen(near.objects) == _seen(every_tile.objects)
    assert {o.class_name for o in near.objects} == {"bus", "person"}


@pytest.mark.parametrize(
    ("polygon", "says"),
    [
        ([(0.0, 0.0), (1.0, 0.0)], "has 2 corners; a region has 3 to 32"),
        ([(0.0, 0.0), (1.5, 0.0), (1.0, 1.0)], "corners are fractions"),
        ([(0.0, 0.0), (0.5, 0.5), (1.0, 1.0)], "encloses no area"),
    ],
)
async def test_a_region_that_is_not_a_polygon_in_the_image_is_refused(
    detection, user, bus_jpg, polygon, says
):
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await _detect(detection, user, bus_jpg, regions=_regions(polygon))
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert says in refused.value.details()


def test_a_rendering_outlines_its_regions_with_the_boxes_only() -> None:
    image = np.full((200, 300, 3), 90, np.uint8)
    lower_right = ((0.5, 0.5), (1.0, 0.5), (1.0, 1.0), (0.5, 1.0))
    drawn = render(image, [], Rendering(boxes=True, regions=(lower_right,)))
    # Anti-aliased: near the outline's colour, somewhere within a pixel of its path.
    white = np.all(drawn > np.array(REGION_COLOR) - 60, axis=2)
    # The outline runs along the region's top edge (y = 0.5 of 199) from x = 150 to 299,
    # and nowhere in the upper left quarter.
    assert white[98:102, 160:290].any(axis=0).all()
    assert not white[:90, :140].any()
    assert np.array_equal(render(image, [], Rendering(boxes=False, regions=(lower_right,))), image)


async def test_a_stored_detections_annotated_image_outlines_its_regions(
    detection, user, bus_jpg
) -> None:
    reply = await detection.stub.Detect(
        detection_pb2.DetectRequest(
            images=[detection_pb2.ImageInput(data=bus_jpg, filename="bus.jpg")],
            params=detection_pb2.DetectionParams(regions=_regions(LEFT_HALF)),
            store=True,
        ),
        metadata=detection.metadata(user),
        timeout=30,
    )
    detection_id = reply.results[0].detection_id
    chunks = detection.stub.GetAnnotatedImage(
        detection_pb2.GetAnnotatedImageRequest(detection_id=detection_id, annotated=True),
        metadata=detection.metadata(user),
        timeout=60,
    )
    annotated = cv2.imdecode(
        np.frombuffer(b"".join([chunk.data async for chunk in chunks]), np.uint8),
        cv2.IMREAD_COLOR,
    )
    height, width = annotated.shape[:2]
    # The region's right edge, x = half the width, drawn top to bottom in near-white (JPEG):
    # in the photo's rows, above the bus and people, no column there is white by itself.
    edge = annotated[: height // 5, round(0.5 * (width - 1))]
    assert (edge.min(axis=1) > 220).mean() > 0.9
    beside = annotated[: height // 5, round(0.5 * (width - 1)) + 12]
    assert (beside.min(axis=1) > 220).mean() < 0.5
