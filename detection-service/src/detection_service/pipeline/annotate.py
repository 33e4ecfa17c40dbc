"""Boxes and labels drawn on the original image, encoded as JPEG at its original size; the
objects of chosen classes pixelated first where the owner asked for it (ADR 0049), and the
regions of interest it was detected with outlined (ADR 0053)."""

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from detection_service.pipeline.types import DetectedObject, DetectionOptions

JPEG_QUALITY = 90
# Ultralytics' palette (BGR), so annotated images look like what users know from YOLO tools.
# The console draws with the same colours: tools/generate_console_palette.py writes them to
# gateway/src/gateway/console/js/palette.js (a test fails when the two drift apart).
PALETTE = (
    (56, 56, 255), (151, 157, 255), (31, 112, 255), (29, 178, 255), (49, 210, 207),
    (10, 249, 72), (23, 204, 146), (134, 219, 61), (52, 147, 26), (187, 212, 0),
    (168, 153, 44), (255, 194, 0), (147, 69, 52), (255, 115, 100), (236, 24, 0),
    (255, 56, 132), (133, 0, 82), (255, 56, 203), (200, 149, 255), (199, 55, 255),
)  # fmt: skip


def line_thickness(image: np.ndarray) -> int:
    """Boxes' and outlines' width in pixels: in proportion to the image's size."""
    height, width = image.shape[:2]
    return max(1, round((int(height) + int(width)) / 2 * 0.003))


def draw(image_bgr: np.ndarray, objects: Sequence[DetectedObject]) -> np.ndarray:
    """A copy of the image with one labelled box per object; line width follows image size."""
    canvas = image_bgr.copy()
    width = canvas.shape[1]
    thickness = line_thickness(canvas)
    font_scale = thickness / 3
    for obj in objects:
        color = PALETTE[obj.class_id % len(PALETTE)]
        top_left = (round(obj.x1), round(obj.y1))
        cv2.rectangle(canvas, top_left, (round(obj.x2), round(obj.y2)), color, thickness)
        label = f"{obj.class_name} {obj.confidence:.2f}"
        if obj.track_id is not None:
            label = f"#{obj.track_id} {label}"
        (text_w, text_h), baseline = cv2.getTextSize(
            label, cv2.FONT_HERSHEY_SIMPLEX, font_scale, max(1, thickness - 1)
        )
        # Label above the box, or inside it when the box touches the top edge; moved left when
        # it would run past the right edge, so no label is cut off.
        above = top_left[1] - text_h - baseline >= 0
        y_text = top_left[1] - baseline if above else top_left[1] + text_h
        y_bg = top_left[1] - text_h - baseline if above else top_left[1]
        x_label = max(0, min(top_left[0], width - text_w))
        cv2.rectangle(
            canvas,
            (x_label, y_bg),
            (x_label + text_w, y_bg + text_h + baseline),
            color,
            cv2.FILLED,
        )
        cv2.putText(
            canvas,
            label,
            (x_label, y_text),
            cv2.FONT_HERSHEY_SIMPLEX,
            font_scale,
            (255, 255, 255),
            max(1, thickness - 1),
            cv2.LINE_AA,
        )
    return canvas


# A redacted object becomes at most this many blocks across its shorter side: a person's
# face is then a block or two, which no enhancement brings back, while the scene stays legible.
REDACTION_BLOCKS = 8
# Blocks are never smaller than this many pixels, so a small object is not merely resampled.
_MIN_BLOCK_PX = 4


# Regions of interest are outlined in white over a dark edge: legible on any picture, and no
# class's colour, so an outline is never read as a box.
REGION_COLOR = (255, 255, 255)
REGION_EDGE_COLOR = (0, 0, 0)


def outline_regions(
    canvas: np.ndarray, regions: Sequence[Sequence[tuple[float, float]]], thickness: int
) -> None:
    """Draw each region (corners as fractions of the image) on `canvas`, in place."""
    height, width = canvas.shape[:2]
    contours = [
        np.array([(round(x * (width - 1)), round(y * (height - 1))) for x, y in polygon], np.int32)
        for polygon in regions
    ]
    cv2.polylines(canvas, contours, True, REGION_EDGE_COLOR, thickness + 2, cv2.LINE_AA)
    cv2.polylines(canvas, contours, True, REGION_COLOR, thickness, cv2.LINE_AA)


@dataclass(frozen=True)
class Rendering:
    """How a stored image is shown: with its boxes drawn or as uploaded, the classes
    (lower-case names) whose objects are pixelated, boxes or not, and the regions of interest
    outlined with the boxes (fractions of the image, as detected with)."""

    boxes: bool = True
    redact: frozenset[str] = frozenset()
    regions: tuple[tuple[tuple[float, float], ...], ...] = ()

    @property
    def draws(self) -> bool:
        """Whether it changes any pixel; if not, the image is the stored upload as it was."""
        return self.boxes or bool(self.redact)

    def to_json(self) -> dict[str, object]:
        return {
            "boxes": self.boxes,
            "redact": sorted(self.redact),
            "regions": [[[x, y] for x, y in polygon] for polygon in self.regions],
        }

    @classmethod
    def from_json(cls, value: dict[str, object]) -> "Rendering":
        redact = value.get("redact", ())
        return cls(
            boxes=bool(value.get("boxes", True)),
            redact=frozenset(str(name) for name in redact)
            if isinstance(redact, list)
            else frozenset(),
            regions=DetectionOptions.regions_from_json(value),
        )


# The annotated image as it always was: every box drawn, nothing pixelated.
BOXES = Rendering()


def pixelate(canvas: np.ndarray, obj: DetectedObject) -> None:
    """Replace the object's box (clipped to the image) in `canvas` by coarse blocks of its
    mean colours: REDACTION_BLOCKS across its shorter side, never under _MIN_BLOCK_PX."""
    height, width = canvas.shape[:2]
    x1, y1 = max(0, int(obj.x1)), max(0, int(obj.y1))
    x2, y2 = min(width, int(np.ceil(obj.x2))), min(height, int(np.ceil(obj.y2)))
    if x2 <= x1 or y2 <= y1:
        return
    region = canvas[y1:y2, x1:x2]
    block = max(_MIN_BLOCK_PX, min(x2 - x1, y2 - y1) // REDACTION_BLOCKS)
    small = cv2.resize(
        region,
        (max(1, (x2 - x1) // block), max(1, (y2 - y1) // block)),
        interpolation=cv2.INTER_AREA,
    )
    region[:] = cv2.resize(small, (x2 - x1, y2 - y1), interpolation=cv2.INTER_NEAREST)


def render(
    image_bgr: np.ndarray, objects: Sequence[DetectedObject], rendering: Rendering
) -> np.ndarray:
    """The image as `rendering` says: the redacted classes' objects pixelated, then every
    object's box and label drawn when `boxes` (a redacted object stays boxed and named)."""
    canvas = image_bgr.copy()
    for obj in objects:
        if obj.class_name.lower() in rendering.redact:
            pixelate(canvas, obj)
    if not rendering.boxes:
        return canvas
    if rendering.regions:
        outline_regions(canvas, rendering.regions, line_thickness(canvas))
    return draw(canvas, objects)


def encode_jpeg(image_bgr: np.ndarray, quality: int = JPEG_QUALITY) -> bytes:
    ok, encoded = cv2.imencode(".jpg", image_bgr, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise RuntimeError("JPEG encoding failed")
    return encoded.tobytes()


def annotate(
    image_bgr: np.ndarray, objects: Sequence[DetectedObject], rendering: Rendering = BOXES
) -> bytes:
    return encode_jpeg(render(image_bgr, objects, rendering))
