"""The model's input geometry, exactly as YOLOv8 was trained (see shared/models/README.md).

Scale by r = min(S/h, S/w), resize bilinearly to round(w*r) x round(h*r), pad with 114 centred
(left = (S-new_w)//2, top = (S-new_h)//2), BGR -> RGB. Boxes come back by subtracting the
padding, dividing by r and clipping to the original image.
"""

from dataclasses import dataclass

import cv2
import numpy as np

INPUT_SIZE = 640
PAD_VALUE = 114


@dataclass(frozen=True)
class Letterbox:
    """Where an original image sits inside the model input."""

    width: int
    height: int
    scale: float
    left: int
    top: int
    new_width: int
    new_height: int
    size: int = INPUT_SIZE

    @classmethod
    def fit(cls, width: int, height: int, size: int = INPUT_SIZE) -> "Letterbox":
        scale = min(size / height, size / width)
        # At least one pixel, so a 1x10000 strip still resizes.
        new_width = max(1, round(width * scale))
        new_height = max(1, round(height * scale))
        return cls(
            width=width,
            height=height,
            scale=scale,
            left=(size - new_width) // 2,
            top=(size - new_height) // 2,
            new_width=new_width,
            new_height=new_height,
            size=size,
        )

    def to_original(self, boxes: np.ndarray) -> np.ndarray:
        """[N, 4] x1, y1, x2, y2 in model-input pixels -> original pixels, clipped to the image."""
        offset = np.array([self.left, self.top, self.left, self.top], dtype=np.float32)
        mapped = (boxes.astype(np.float32) - offset) / np.float32(self.scale)
        limits = np.array([self.width, self.height, self.width, self.height], dtype=np.float32)
        return np.clip(mapped, 0.0, limits)

    def to_input(self, boxes: np.ndarray) -> np.ndarray:
        """The inverse of to_original (before clipping): original pixels -> model-input pixels."""
        offset = np.array([self.left, self.top, self.left, self.top], dtype=np.float32)
        return boxes.astype(np.float32) * np.float32(self.scale) + offset


def letterbox(image_bgr: np.ndarray, size: int = INPUT_SIZE) -> tuple[np.ndarray, Letterbox]:
    """BGR HxWx3 -> (RGB uint8 [size, size, 3], its geometry)."""
    height, width = image_bgr.shape[:2]
    box = Letterbox.fit(width, height, size)
    resized = cv2.resize(image_bgr, (box.new_width, box.new_height), interpolation=cv2.INTER_LINEAR)
    canvas = np.full((size, size, 3), PAD_VALUE, dtype=np.uint8)
    canvas[box.top : box.top + box.new_height, box.left : box.left + box.new_width] = resized
    return cv2.cvtColor(canvas, cv2.COLOR_BGR2RGB), box
