"""Header sniffing, size limits before decoding, letterbox geometry and annotation (no servers)."""

import contextlib
import struct

import cv2
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from detection_service.imaging.annotate import annotate
from detection_service.imaging.decode import ImageLimits, decode, inspect
from detection_service.imaging.formats import ImageFormat, read_header
from detection_service.imaging.letterbox import INPUT_SIZE, PAD_VALUE, Letterbox, letterbox
from detection_service.postprocess import DetectedObject
from objectvision_common.errors import (
    DomainError,
    InvalidArgument,
    PayloadTooLarge,
    UnsupportedMediaType,
)

LIMITS = ImageLimits(max_bytes=20 * 1024 * 1024, max_pixels=40_000_000)


@pytest.fixture(scope="module")
def bus_bgr(bus_jpg) -> np.ndarray:
    return cv2.imdecode(np.frombuffer(bus_jpg, np.uint8), cv2.IMREAD_COLOR)


def _encode(image: np.ndarray, ext: str, *params: int) -> bytes:
    ok, data = cv2.imencode(ext, image, list(params))
    assert ok
    return data.tobytes()


@pytest.mark.parametrize(
    ("ext", "params", "fmt"),
    [
        (".jpg", (), ImageFormat.JPEG),
        (".png", (), ImageFormat.PNG),
        (".webp", (cv2.IMWRITE_WEBP_QUALITY, 80), ImageFormat.WEBP),
        (".webp", (cv2.IMWRITE_WEBP_QUALITY, 101), ImageFormat.WEBP),
        (".bmp", (), ImageFormat.BMP),
    ],
)
def test_header_gives_format_and_size_without_decoding(bus_bgr, ext, params, fmt):
    data = _encode(bus_bgr, ext, *params)
    header = read_header(data)
    assert (header.format, header.width, header.height) == (fmt, 810, 1080)
    assert decode(data, header).shape == (1080, 810, 3)


def test_webp_extended_header_size():
    vp8x = b"VP8X" + struct.pack("<I", 10) + b"\x10\x00\x00\x00" + (4999).to_bytes(3, "little")
    vp8x += (2999).to_bytes(3, "little")
    data = b"RIFF" + struct.pack("<I", 4 + len(vp8x)) + b"WEBP" + vp8x
    assert read_header(data).format == ImageFormat.WEBP
    assert (read_header(data).width, read_header(data).height) == (5000, 3000)


@pytest.mark.parametrize("ext", [".jpg", ".png", ".webp", ".bmp"])
def test_truncated_images_are_refused(bus_bgr, ext):
    data = _encode(bus_bgr, ext)
    with pytest.raises(InvalidArgument, match="truncated"):
        read_header(data[: len(data) // 2])


@given(cut=st.integers(min_value=0, max_value=10**9))
@settings(max_examples=60, deadline=None)
def test_every_prefix_of_a_jpeg_is_truncated(bus_jpg, cut):
    prefix = bus_jpg[: 3 + cut % (len(bus_jpg) - 3)]
    with pytest.raises(InvalidArgument):
        read_header(prefix)


def test_exif_thumbnail_does_not_hide_truncation(bus_bgr, bus_jpg):
    """A thumbnail in APP1 has its own SOF and EOI; they must not count for the main image."""
    thumbnail = _encode(cv2.resize(bus_bgr, (60, 80)), ".jpg")
    app1 = b"Exif\x00\x00" + thumbnail
    with_thumbnail = b"\xff\xd8" + b"\xff\xe1" + struct.pack(">H", len(app1) + 2) + app1
    with_thumbnail += bus_jpg[2:]
    header = read_header(with_thumbnail)
    assert (header.width, header.height) == (810, 1080)
    with pytest.raises(InvalidArgument, match="truncated"):
        read_header(with_thumbnail[: len(with_thumbnail) - 5000])


@pytest.mark.parametrize(
    ("data", "error"),
    [
        (b"", InvalidArgument),
        (b"hello, this is text and not a picture", UnsupportedMediaType),
        (b"GIF89a\x01\x00\x01\x00\x00\x00\x00;", UnsupportedMediaType),
        (b"II*\x00\x08\x00\x00\x00", UnsupportedMediaType),
        (b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00", UnsupportedMediaType),
        (b"\xff\xd8\xff\xd9", InvalidArgument),
        (b"BMW drivers, a text file that happens to start with BM", UnsupportedMediaType),
        (b"BM", UnsupportedMediaType),
    ],
)
def test_unfit_bytes_are_refused(data, error):
    with pytest.raises(error):
        inspect(data, LIMITS)


@given(data=st.binary(max_size=64))
@settings(max_examples=300, deadline=None)
def test_arbitrary_bytes_never_crash_the_header_reader(data):
    with contextlib.suppress(DomainError):
        read_header(data)


def test_a_forged_huge_header_is_refused_before_decoding(make_png):
    forged = make_png(50_000, 50_000, idat=b"\x78\x9c\x03\x00\x00\x00\x00\x01")
    assert len(forged) < 100
    with pytest.raises(PayloadTooLarge, match="2500000000 pixels"):
        inspect(forged, LIMITS)


def test_a_small_file_that_decodes_to_144_megapixels_is_refused(png_bomb):
    assert len(png_bomb) < 200_000
    assert read_header(png_bomb).pixels == 144_000_000
    with pytest.raises(PayloadTooLarge, match="pixels"):
        inspect(png_bomb, LIMITS)


def test_the_byte_limit_comes_first():
    with pytest.raises(PayloadTooLarge, match="bytes"):
        inspect(b"\xff\xd8\xff" + bytes(100), ImageLimits(max_bytes=50, max_pixels=10))


def test_a_valid_header_with_corrupt_pixels_fails_at_decode(make_png):
    data = make_png(64, 64, idat=b"\x78\x9c" + b"\xde\xad\xbe\xef" * 16)
    header = inspect(data, LIMITS)
    with pytest.raises(InvalidArgument, match="cannot be decoded"):
        decode(data, header)


def test_letterbox_geometry_follows_the_readme():
    bus = Letterbox.fit(810, 1080)
    assert bus.scale == pytest.approx(640 / 1080)
    assert (bus.new_width, bus.new_height, bus.left, bus.top) == (480, 640, 80, 0)
    zidane = Letterbox.fit(1280, 720)
    assert (zidane.new_width, zidane.new_height, zidane.left, zidane.top) == (640, 360, 0, 140)


@given(width=st.integers(1, 3000), height=st.integers(1, 3000))
@settings(max_examples=40, deadline=None)
def test_letterbox_places_the_image_where_its_geometry_says(width, height):
    white = np.full((height, width, 3), 255, dtype=np.uint8)
    canvas, box = letterbox(white)
    assert canvas.shape == (INPUT_SIZE, INPUT_SIZE, 3) and canvas.dtype == np.uint8
    inside = canvas[box.top : box.top + box.new_height, box.left : box.left + box.new_width]
    assert (inside == 255).all()
    outside = canvas.copy()
    outside[box.top : box.top + box.new_height, box.left : box.left + box.new_width] = PAD_VALUE
    assert (outside == PAD_VALUE).all()


def test_letterbox_converts_bgr_to_rgb():
    blue = np.zeros((100, 100, 3), dtype=np.uint8)
    blue[..., 0] = 255
    canvas, _ = letterbox(blue)
    assert tuple(canvas[320, 320]) == (0, 0, 255)


@given(
    width=st.integers(1, 8000),
    height=st.integers(1, 8000),
    corners=st.lists(st.floats(0, 1), min_size=4, max_size=4),
)
@settings(max_examples=200, deadline=None)
def test_boxes_survive_the_round_trip_through_the_model_input(width, height, corners):
    box = Letterbox.fit(width, height)
    x1, x2 = sorted((corners[0] * width, corners[1] * width))
    y1, y2 = sorted((corners[2] * height, corners[3] * height))
    original = np.array([[x1, y1, x2, y2]], dtype=np.float32)
    back = box.to_original(box.to_input(original))
    # float32 arithmetic: a hundredth of a pixel even for 8000-pixel images.
    np.testing.assert_allclose(back, original, atol=1e-2)


@given(width=st.integers(1, 8000), height=st.integers(1, 8000))
@settings(max_examples=100, deadline=None)
def test_the_whole_input_maps_to_the_whole_image_and_clips(width, height):
    box = Letterbox.fit(width, height)
    mapped = box.to_original(np.array([[-50, -50, INPUT_SIZE + 50, INPUT_SIZE + 50]]))
    np.testing.assert_allclose(mapped, [[0, 0, width, height]])
    content = np.array(
        [[box.left, box.top, box.left + box.new_width, box.top + box.new_height]], dtype=np.float32
    )
    # round(w * r) differs from w * r by at most half a model pixel, i.e. 0.5 / r image pixels.
    np.testing.assert_allclose(
        box.to_original(content), [[0, 0, width, height]], atol=0.5 / box.scale + 1e-3
    )


def test_annotated_image_is_a_jpeg_of_the_original_size(bus_bgr):
    objects = [DetectedObject(5, "bus", 0.83, 20.0, 230.0, 800.0, 750.0)]
    data = annotate(bus_bgr, objects)
    assert data[:3] == b"\xff\xd8\xff"
    decoded = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    assert decoded.shape == bus_bgr.shape
    # Something was drawn along the box edge.
    edge = decoded[480, 16:26].astype(int)
    assert np.abs(edge - bus_bgr[480, 16:26].astype(int)).max() > 40
