"""What an upload is, read from its first bytes and its header, never from its name or type.

The width and height come from the format's own header (PNG IHDR, JPEG SOFn, WebP VP8/VP8L/VP8X,
BMP info header) so that an image which would decode to billions of pixels is refused before a
decoder allocates them. Each parser also checks that the file is complete (JPEG EOI after the
first scan, PNG IEND, the RIFF or BMP declared size), because decoders happily return a
half-grey picture for a truncated JPEG.
"""

import struct
from dataclasses import dataclass
from enum import StrEnum

from detection_service.signatures import Signature, recognise
from objectvision_common.errors import InvalidArgument, UnsupportedMediaType

SUPPORTED = "JPEG, PNG, WebP or BMP"


class ImageFormat(StrEnum):
    JPEG = "jpeg"
    PNG = "png"
    WEBP = "webp"
    BMP = "bmp"

    @property
    def content_type(self) -> str:
        return f"image/{self.value}"


@dataclass(frozen=True)
class ImageHeader:
    format: ImageFormat
    width: int
    height: int

    @property
    def pixels(self) -> int:
        return self.width * self.height


_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# Formats we recognise but do not decode: named in the error so the caller knows what to send.
_UNSUPPORTED_SIGNATURES = (
    Signature(0, b"GIF87a", "GIF"),
    Signature(0, b"GIF89a", "GIF"),
    Signature(0, b"II*\x00", "TIFF"),
    Signature(0, b"MM\x00*", "TIFF"),
    Signature(0, b"\x00\x00\x01\x00", "ICO"),
    Signature(0, b"%PDF", "PDF"),
    Signature(4, b"ftypheic", "HEIC"),
    Signature(4, b"ftypheix", "HEIC"),
    Signature(4, b"ftypmif1", "HEIF"),
    Signature(4, b"ftypavif", "AVIF"),
)
# SOF markers that carry the frame size (not DHT C4, JPG C8, DAC CC).
_JPEG_SOF = frozenset(
    {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}
)
_JPEG_STANDALONE = frozenset({0x01, *range(0xD0, 0xD8)})


def sniff(data: bytes) -> ImageFormat | None:
    if data.startswith(b"\xff\xd8\xff"):
        return ImageFormat.JPEG
    if data.startswith(_PNG_SIGNATURE):
        return ImageFormat.PNG
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return ImageFormat.WEBP
    if _looks_like_bmp(data):
        return ImageFormat.BMP
    return None


# The DIB header sizes of the BMP variants (core, info, v2-v5, OS/2 v2): "BM" alone is too
# weak a signature, text starting with "BM" would be reported as a broken image.
_BMP_HEADER_SIZES = frozenset({12, 40, 52, 56, 64, 108, 124})


def _looks_like_bmp(data: bytes) -> bool:
    return (
        data.startswith(b"BM")
        and len(data) >= 18
        and int.from_bytes(data[14:18], "little") in _BMP_HEADER_SIZES
    )


def _corrupt(fmt: ImageFormat, why: str) -> InvalidArgument:
    return InvalidArgument(f"the {fmt.name} image is corrupt: {why}")


def _truncated(fmt: ImageFormat) -> InvalidArgument:
    return InvalidArgument(f"the {fmt.name} image is truncated")


def _png(data: bytes) -> tuple[int, int]:
    if len(data) < 33 or data[12:16] != b"IHDR":
        raise (
            _truncated(ImageFormat.PNG)
            if len(data) < 33
            else _corrupt(ImageFormat.PNG, "no IHDR chunk")
        )
    width, height = struct.unpack(">II", data[16:24])
    if data.rfind(b"IEND") < 33:
        raise _truncated(ImageFormat.PNG)
    return width, height


def _jpeg(data: bytes) -> tuple[int, int]:
    """The frame size, read as strictly as libjpeg reads markers, so that no byte sequence
    means one thing here and another to the decoder: between segments only 0xFF fill bytes
    may stand before a marker, a marker byte is never 0x00 (libjpeg reads FF 00 as stray data
    and keeps scanning, past what a lax parser would skip as a segment), and one frame header
    is allowed. The decoder is bound to the pixel limit as well (decode.bind_decoder)."""
    size: tuple[int, int] | None = None
    i, n = 2, len(data)
    while i + 4 <= n:
        if data[i] != 0xFF:
            raise _corrupt(ImageFormat.JPEG, "stray bytes between segments")
        marker = data[i + 1]
        if marker == 0xFF:
            i += 1
            continue
        if marker == 0x00 or marker == 0xD8:
            raise _corrupt(ImageFormat.JPEG, f"invalid marker 0x{marker:02X} between segments")
        if marker in _JPEG_STANDALONE:
            i += 2
            continue
        if marker == 0xD9:
            raise _corrupt(ImageFormat.JPEG, "no image data before the end marker")
        (length,) = struct.unpack(">H", data[i + 2 : i + 4])
        if length < 2:
            raise _corrupt(ImageFormat.JPEG, "bad segment length")
        if marker in _JPEG_SOF:
            if size is not None:
                raise _corrupt(ImageFormat.JPEG, "more than one frame header")
            if i + 9 > n:
                break
            height, width = struct.unpack(">HH", data[i + 5 : i + 9])
            size = (width, height)
        if marker == 0xDA:
            if size is None:
                raise _corrupt(ImageFormat.JPEG, "no frame header before the scan")
            # 0xFF in entropy-coded data is always stuffed, so an EOI after the first scan can
            # only be the real end of the image; EXIF thumbnails end before it.
            if data.rfind(b"\xff\xd9") < i:
                raise _truncated(ImageFormat.JPEG)
            return size
        i += 2 + length
    raise _truncated(ImageFormat.JPEG)


def _webp(data: bytes) -> tuple[int, int]:
    (riff_size,) = struct.unpack("<I", data[4:8])
    if len(data) < 30 or len(data) < 8 + riff_size:
        raise _truncated(ImageFormat.WEBP)
    chunk = data[12:16]
    if chunk == b"VP8 ":
        if data[23:26] != b"\x9d\x01\x2a":
            raise _corrupt(ImageFormat.WEBP, "bad VP8 start code")
        width, height = struct.unpack("<HH", data[26:30])
        return width & 0x3FFF, height & 0x3FFF
    if chunk == b"VP8L":
        if data[20] != 0x2F:
            raise _corrupt(ImageFormat.WEBP, "bad VP8L signature")
        (bits,) = struct.unpack("<I", data[21:25])
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    if chunk == b"VP8X":
        width = int.from_bytes(data[24:27], "little") + 1
        height = int.from_bytes(data[27:30], "little") + 1
        return width, height
    raise _corrupt(ImageFormat.WEBP, f"unknown first chunk {chunk!r}")


def _bmp(data: bytes) -> tuple[int, int]:
    if len(data) < 26:
        raise _truncated(ImageFormat.BMP)
    file_size, _, _, pixel_offset, dib_size = struct.unpack("<IHHII", data[2:18])
    if dib_size == 12:
        width, height = struct.unpack("<hh", data[18:22])
    else:
        width, height = struct.unpack("<ii", data[18:26])
    if len(data) < max(file_size, pixel_offset):
        raise _truncated(ImageFormat.BMP)
    # A negative height means rows are stored top-down; the size is the same.
    return abs(width), abs(height)


_PARSERS = {
    ImageFormat.JPEG: _jpeg,
    ImageFormat.PNG: _png,
    ImageFormat.WEBP: _webp,
    ImageFormat.BMP: _bmp,
}


def read_header(data: bytes) -> ImageHeader:
    """Identify an upload and read its size without decoding it; raise a domain error if unfit."""
    if not data:
        raise InvalidArgument("the image is empty")
    fmt = sniff(data)
    if fmt is None:
        other = recognise(data, _UNSUPPORTED_SIGNATURES)
        if other:
            raise UnsupportedMediaType(f"{other} images are not supported; send {SUPPORTED}")
        raise UnsupportedMediaType(f"the upload is not a {SUPPORTED} image")
    try:
        width, height = _PARSERS[fmt](data)
    except struct.error:
        raise _truncated(fmt) from None
    if width <= 0 or height <= 0:
        raise _corrupt(fmt, f"invalid size {width}x{height}")
    return ImageHeader(fmt, width, height)
