"""Header sniffing, size limits before decoding, bound decoders and annotation (no servers)."""

import contextlib
import os
import struct
import subprocess
import sys

import cv2
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from detection_service.pipeline.annotate import PALETTE, annotate, draw
from detection_service.pipeline.decode import ImageLimits, decode, inspect
from detection_service.pipeline.header import ImageFormat, ImageHeader, read_header
from detection_service.pipeline.types import DetectedObject
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


def _jpeg_segments(data: bytes) -> list[tuple[int, bytes]]:
    """(marker, whole segment) up to the scan, then the rest as one piece (marker 0xDA)."""
    segments, i = [], 2
    while data[i + 1] != 0xDA:
        length = struct.unpack(">H", data[i + 2 : i + 4])[0]
        segments.append((data[i + 1], data[i : i + 2 + length]))
        i += 2 + length
    segments.append((0xDA, data[i:]))
    return segments


def test_bytes_that_libjpeg_reads_as_stray_data_are_refused_not_skipped(bus_jpg):
    """The hostile try's decoy: FF 00 read as a segment here would skip the real frame header
    that libjpeg finds (it discards FF 00 and scans on), so a decoy one could be read instead."""
    segments = _jpeg_segments(bus_jpg)
    sof = next(i for i, (marker, _) in enumerate(segments) if marker in (0xC0, 0xC2))
    decoy = bytearray(segments[sof][1])
    decoy[5:9] = struct.pack(">HH", 16, 16)
    hiding = b"\xff\x00" + struct.pack(">H", 2 + len(segments[sof][1]))
    pieces = [seg for _, seg in segments]
    pieces[sof] = hiding + segments[sof][1] + bytes(decoy)
    forged = b"\xff\xd8" + b"".join(pieces)
    with pytest.raises(InvalidArgument, match="marker 0x00"):
        read_header(forged)
    stray = b"\xff\xd8" + segments[0][1] + b"\x00garbage" + b"".join(s for _, s in segments[1:])
    with pytest.raises(InvalidArgument, match="stray bytes"):
        read_header(stray)
    doubled = b"\xff\xd8" + b"".join(
        seg + (bytes(decoy) if i == sof else b"") for i, (_, seg) in enumerate(segments)
    )
    with pytest.raises(InvalidArgument, match="more than one frame header"):
        read_header(doubled)


def test_a_header_the_decoder_disagrees_with_is_refused_after_decoding(bus_jpg):
    lying = ImageHeader(ImageFormat.JPEG, 16, 16)
    with pytest.raises(InvalidArgument, match="decodes to 810x1080"):
        decode(bus_jpg, lying)


def test_the_decoder_itself_refuses_images_over_the_pixel_limit(tmp_path, bus_jpg):
    """In a fresh process (OpenCV reads its limit once, at load): a 810x1080 file passed off as
    16x16 is refused by OpenCV from its own header reading when the limit is 100,000 pixels."""
    (tmp_path / "bus.jpg").write_bytes(bus_jpg)
    script = (
        "import sys\n"
        "from detection_service.pipeline.decode import decode\n"
        "from detection_service.pipeline.header import ImageFormat, ImageHeader\n"
        "from objectvision_common.errors import PayloadTooLarge\n"
        "data = open(sys.argv[1], 'rb').read()\n"
        "try:\n"
        "    decode(data, ImageHeader(ImageFormat.JPEG, 16, 16))\n"
        "except PayloadTooLarge as error:\n"
        "    print('refused:', error.message)\n"
    )
    env = {**os.environ, "MAX_IMAGE_PIXELS": "100000"}
    env.pop("OPENCV_IO_MAX_IMAGE_PIXELS", None)
    out = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path / "bus.jpg")],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert out.stdout.startswith("refused: the image decodes to more pixels than accepted")


def test_a_label_at_the_right_edge_is_moved_left_to_stay_whole():
    """A box in the last pixels of the image: its label would run off the edge, cut off."""
    black = np.zeros((120, 300, 3), np.uint8)
    box = DetectedObject(0, "person", 0.9, 295.0, 60.0, 299.0, 110.0)
    drawn = draw(black, [box])
    colour = np.array(PALETTE[0], np.uint8)
    label_rows = drawn[40:60]
    filled = np.argwhere((label_rows == colour).all(axis=2))
    # The label's background ends at the right edge and spans its text, left of the box.
    assert filled[:, 1].max() == 299
    assert filled[:, 1].min() < 295 - 40


def test_annotated_image_is_a_jpeg_of_the_original_size(bus_bgr):
    objects = [DetectedObject(5, "bus", 0.83, 20.0, 230.0, 800.0, 750.0)]
    data = annotate(bus_bgr, objects)
    assert data[:3] == b"\xff\xd8\xff"
    decoded = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    assert decoded.shape == bus_bgr.shape
    # Something was drawn along the box edge.
    edge = decoded[480, 16:26].astype(int)
    assert np.abs(edge - bus_bgr[480, 16:26].astype(int)).max() > 40
