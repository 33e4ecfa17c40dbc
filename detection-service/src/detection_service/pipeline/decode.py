"""Size limits checked on the header, then decoding with OpenCV (call it off the event loop)."""

from dataclasses import dataclass

import cv2
import numpy as np

from detection_service.pipeline.header import ImageHeader, read_header
from objectvision_common.errors import InvalidArgument, PayloadTooLarge


@dataclass(frozen=True)
class ImageLimits:
    max_bytes: int
    max_pixels: int


def inspect(data: bytes, limits: ImageLimits) -> ImageHeader:
    """Everything that can be refused without decoding: cheap enough for the event loop."""
    if len(data) > limits.max_bytes:
        raise PayloadTooLarge(
            f"the image is {len(data)} bytes; at most {limits.max_bytes} bytes are accepted"
        )
    header = read_header(data)
    if header.pixels > limits.max_pixels:
        raise PayloadTooLarge(
            f"the image is {header.width}x{header.height} = {header.pixels} pixels; "
            f"at most {limits.max_pixels} pixels are accepted"
        )
    return header


def decode(data: bytes, header: ImageHeader) -> np.ndarray:
    """BGR uint8 HxWx3, EXIF orientation applied (as Ultralytics reads images); the decoded
    size must be the header's (either way round: EXIF may rotate)."""
    try:
        image = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_COLOR)
    except cv2.error:
        raise PayloadTooLarge("the image decodes to more pixels than accepted") from None
    if image is None:
        raise InvalidArgument(f"the {header.format.name} image is corrupt and cannot be decoded")
    height, width = image.shape[:2]
    if (width, height) not in ((header.width, header.height), (header.height, header.width)):
        raise InvalidArgument(
            f"the {header.format.name} header says {header.width}x{header.height} but the"
            f" image decodes to {width}x{height}: a malformed file"
        )
    return image
