"""The in-process pipeline prepares exactly what the service sends Triton (same letterbox),
so raw and served stages differ by the serving path alone."""

import numpy as np
import pytest

from bench.config import BenchConfig
from bench.images import load_images
from bench.pipeline import Letterbox, decode, letterbox, nms, to_tensor
from objectvision_inference import cpu_pipeline

CONFIG = BenchConfig.preset(quick=True)
needs_images = pytest.mark.skipif(not CONFIG.images.exists(), reason="needs ../shared/images")


@needs_images
def test_letterbox_matches_the_served_pipeline():
    """The bench's own letterbox gives the model the same pixels as the CPU pipeline that
    Triton serves (objectvision_inference.cpu_pipeline), geometry included."""
    for image in load_images(CONFIG.images)[:3]:
        pixels = decode(image.data)
        ours, box = letterbox(pixels)
        theirs = np.empty((640, 640, 3), dtype=np.uint8)
        their_box = cpu_pipeline.letterbox(pixels, theirs)
        np.testing.assert_array_equal(ours, theirs)
        assert (box.width, box.height, box.left, box.top, box.scale) == (
            their_box.width,
            their_box.height,
            their_box.left,
            their_box.top,
            their_box.scale,
        )


def test_letterbox_geometry_of_a_wide_image():
    frame, box = letterbox(np.zeros((360, 1280, 3), dtype=np.uint8))
    assert frame.shape == (640, 640, 3)
    assert box == Letterbox(width=1280, height=360, scale=0.5, left=0, top=230)
    assert (frame[:230] == 114).all() and (frame[230:410] == 0).all() and (frame[410:] == 114).all()


def test_tensor_is_nchw_floats_in_unit_range():
    tensor = to_tensor([np.full((640, 640, 3), 255, dtype=np.uint8)] * 2)
    assert tensor.shape == (2, 3, 640, 640)
    assert tensor.dtype == np.float32
    assert tensor.max() == 1.0


def test_nms_keeps_the_best_of_overlapping_boxes():
    boxes = np.array([[0, 0, 10, 10], [1, 1, 10, 10], [20, 20, 30, 30]], dtype=np.float32)
    scores = np.array([0.8, 0.9, 0.5], dtype=np.float32)
    assert nms(boxes, scores, 0.7).tolist() == [1, 2]
    assert nms(boxes, scores, 0.95).tolist() == [1, 0, 2]
