"""The inference contract: encoded images in, detections in original-image pixels out.

One Triton model (``yolov8n``) answers it on every platform: ONNX Runtime on the CPU
(``cpu_pipeline``), PyTorch with nvJPEG, CUDA graphs and device NMS on a GPU
(``torch_pipeline``), and the TensorRT ensemble in production (``model_repository/trt``).
The detection service cannot tell them apart: it forwards the upload's bytes unchanged and
reads back the final boxes, so a letterboxed tensor never crosses the network.

Per image (every tensor has Triton's batch dimension first):

* in ``images`` BYTES ``[1]``: the encoded file (JPEG, PNG, WebP or BMP);
* in ``confidence`` FP32 ``[1]``, ``iou`` FP32 ``[1]``, ``max_detections`` INT32 ``[1]``,
  ``class_mask`` BOOL ``[C]``: the request's options (optional; the model's defaults apply);
* in ``expected_size`` INT32 ``[2]``: width, height as the caller's header parser read them
  (optional); a decoded image of another size is refused (``STATUS_SIZE_MISMATCH``), so a
  file that two parsers read differently never passes for a small one;
* out ``detections`` FP32 ``[D, 6]``: x1, y1, x2, y2 (original pixels), score, class id,
  by score descending; D is the largest count in the request, rows past ``counts`` are zero;
* out ``counts`` INT32 ``[1]``, ``image_size`` INT32 ``[2]`` (decoded width, height),
  ``status`` INT32 ``[1]``, ``stage_ms`` FP32 ``[3]`` (decode + letterbox, network, NMS of the
  batch the image ran in).

Self-contained (numpy only): Triton copies this file next to the model, where nothing of the
project is installed.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np

IMAGES = "images"
CONFIDENCE = "confidence"
IOU = "iou"
MAX_DETECTIONS = "max_detections"
CLASS_MASK = "class_mask"
EXPECTED_SIZE = "expected_size"
DETECTIONS = "detections"
COUNTS = "counts"
IMAGE_SIZE = "image_size"
STATUS = "status"
STAGE_MS = "stage_ms"
OUTPUTS = (DETECTIONS, COUNTS, IMAGE_SIZE, STATUS, STAGE_MS)

STATUS_OK = 0
# The bytes are no image any decoder here reads, or a corrupt one.
STATUS_UNDECODABLE = 1
# The decoder found more pixels than the model's max_pixels parameter allows.
STATUS_TOO_LARGE = 2
# The decoded size differs from expected_size: the caller's header parser was misled.
STATUS_SIZE_MISMATCH = 3
STATUS_NAMES = {
    STATUS_OK: "ok",
    STATUS_UNDECODABLE: "undecodable",
    STATUS_TOO_LARGE: "too_large",
    STATUS_SIZE_MISMATCH: "size_mismatch",
}

INPUT_SIZE = 640
PAD_VALUE = 114
# Ultralytics shifts each class's boxes this far apart so that one NMS pass never suppresses
# across classes; larger than any model-input coordinate.
CLASS_OFFSET = 7680.0


@dataclass(frozen=True)
class ImageOptions:
    """One image's thresholds; ``class_mask`` None keeps every class."""

    confidence: float = 0.25
    iou: float = 0.7
    max_detections: int = 300
    class_mask: np.ndarray | None = None


@dataclass(frozen=True)
class Letterbox:
    """Where an original image sits inside the model input (see shared/models/README.md).

    Scale by r = min(S/h, S/w), resize bilinearly to round(w*r) x round(h*r), pad with 114
    centred; boxes come back by subtracting the padding, dividing by r and clipping.
    """

    width: int
    height: int
    scale: float
    left: int
    top: int
    new_width: int
    new_height: int
    size: int = INPUT_SIZE

    @classmethod
    def fit(cls, width: int, height: int, size: int = INPUT_SIZE) -> Letterbox:
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
        """[N, 4] x1, y1, x2, y2 in model-input pixels -> original pixels, clipped."""
        offset = np.array([self.left, self.top, self.left, self.top], dtype=np.float32)
        mapped = (boxes.astype(np.float32) - offset) / np.float32(self.scale)
        limits = np.array([self.width, self.height, self.width, self.height], dtype=np.float32)
        clipped: np.ndarray = np.clip(mapped, 0.0, limits)
        return clipped


@dataclass(frozen=True)
class ImageResult:
    """One image's answer: ``rows`` [N, 6] in original pixels when ``status`` is OK."""

    status: int
    width: int = 0
    height: int = 0
    rows: np.ndarray = field(default_factory=lambda: np.zeros((0, 6), dtype=np.float32))
    # Decode + letterbox, network and NMS of the batch the image ran in (filled by unpack).
    stage_ms: tuple[float, float, float] = (0.0, 0.0, 0.0)

    @classmethod
    def refused(cls, status: int, width: int = 0, height: int = 0) -> ImageResult:
        return cls(status, width, height, np.zeros((0, 6), dtype=np.float32))


# Decode + letterbox, network and NMS of one batch, in milliseconds (``stage_times``).
StageMs = tuple[float, float, float]


class ImageBatch(NamedTuple):
    """One ``execute``'s images as a pipeline receives them: the encoded bytes, each image's
    options and the size the caller's header parser read (None: not given)."""

    images: Sequence[bytes]
    options: Sequence[ImageOptions]
    expected: Sequence[tuple[int, int] | None]


class Pipeline(ABC):
    """How a model instance computes this contract: ``cpu_pipeline``, ``torch_pipeline`` or
    ``trt_pipeline``, as the config's ``pipeline`` parameter says.

    The call is stated once here rather than in each pipeline, so that the three cannot drift
    apart and ``triton_model`` holds any of them as a ``Pipeline``; each implements ``run``.
    """

    def __call__(
        self,
        images: Sequence[bytes],
        options: Sequence[ImageOptions],
        expected: Sequence[tuple[int, int] | None],
    ) -> tuple[list[ImageResult], StageMs]:
        """Every image's result, in order, and the batch's stage times."""
        return self.run(ImageBatch(images, options, expected))

    @abstractmethod
    def run(self, batch: ImageBatch) -> tuple[list[ImageResult], StageMs]:
        """``__call__``'s answer, for the batch as one value."""


def stage_times(
    started: float, prepared: float, ran: float, done: float
) -> tuple[float, float, float]:
    """``stage_ms`` from four ``perf_counter`` readings: decode + letterbox, network, NMS."""
    return ((prepared - started) * 1e3, (ran - prepared) * 1e3, (done - ran) * 1e3)


def size_matches(expected: tuple[int, int] | None, width: int, height: int) -> bool:
    """Whether a decoded size agrees with the caller's header (either way round: the decoder
    applies the EXIF orientation, which may swap width and height)."""
    if expected is None:
        return True
    return (width, height) in (expected, expected[::-1])


def box_iou(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """IoU of one [4] box against [N, 4] boxes (x1, y1, x2, y2)."""
    iw = (np.minimum(box[2], boxes[:, 2]) - np.maximum(box[0], boxes[:, 0])).clip(0)
    ih = (np.minimum(box[3], boxes[:, 3]) - np.maximum(box[1], boxes[:, 1])).clip(0)
    inter = iw * ih
    area = (box[2] - box[0]).clip(0) * (box[3] - box[1]).clip(0)
    areas = (boxes[:, 2] - boxes[:, 0]).clip(0) * (boxes[:, 3] - boxes[:, 1]).clip(0)
    overlaps: np.ndarray = inter / (area + areas - inter + 1e-9)
    return overlaps


def nms(boxes: np.ndarray, scores: np.ndarray, iou: float) -> np.ndarray:
    """Greedy NMS, torchvision semantics (a box goes when its IoU with a kept one is > iou).

    Returns kept indices, highest score first; equal scores keep the lower index first.
    """
    order = np.argsort(-scores, kind="stable")
    keep: list[int] = []
    while order.size:
        best = int(order[0])
        keep.append(best)
        rest = order[1:]
        order = rest[box_iou(boxes[best], boxes[rest]) <= iou]
    return np.asarray(keep, dtype=np.int64)


def select(rows: np.ndarray, options: ImageOptions) -> np.ndarray:
    """[K, 6] candidate rows (model-input pixels) -> [N, 6] kept rows, by score descending."""
    rows = rows.reshape(-1, 6)
    mask = (rows[:, 4] >= options.confidence) & (rows[:, 4] > 0)
    if options.class_mask is not None:
        classes = rows[:, 5].astype(np.int64)
        known = (classes >= 0) & (classes < len(options.class_mask))
        mask &= known & options.class_mask[np.where(known, classes, 0)]
    candidates = rows[mask]
    if not len(candidates):
        return candidates
    shifted = candidates[:, :4] + candidates[:, 5:6] * CLASS_OFFSET
    keep = nms(shifted, candidates[:, 4], options.iou)[: options.max_detections]
    kept: np.ndarray = candidates[keep]
    return kept


def to_original(kept: np.ndarray, box: Letterbox) -> np.ndarray:
    """Kept rows with their boxes mapped from model-input to original pixels."""
    out = kept.astype(np.float32, copy=True)
    if len(out):
        out[:, :4] = box.to_original(out[:, :4])
    return out


def request_options(
    count: int,
    defaults: ImageOptions,
    *,
    confidence: np.ndarray | None = None,
    iou: np.ndarray | None = None,
    max_detections: np.ndarray | None = None,
    class_mask: np.ndarray | None = None,
) -> list[ImageOptions]:
    """Per-image options of one request from its optional input tensors; zero or an absent
    tensor means the model's default, as in the detection service's API."""

    def value(array: np.ndarray | None, index: int, default: float) -> float:
        if array is None:
            return default
        found = float(np.asarray(array).reshape(count, -1)[index, 0])
        return found if found > 0 else default

    options = []
    masks = None if class_mask is None else np.asarray(class_mask, dtype=bool).reshape(count, -1)
    for index in range(count):
        mask = None
        if masks is not None and not masks[index].all():
            mask = masks[index]
        options.append(
            ImageOptions(
                confidence=min(1.0, value(confidence, index, defaults.confidence)),
                iou=min(1.0, value(iou, index, defaults.iou)),
                max_detections=int(value(max_detections, index, defaults.max_detections)),
                class_mask=mask,
            )
        )
    return options


def expected_sizes(count: int, array: np.ndarray | None) -> list[tuple[int, int] | None]:
    """Per-image (width, height) from ``expected_size``; None where absent or zero."""
    if array is None:
        return [None] * count
    pairs = np.asarray(array, dtype=np.int64).reshape(count, 2)
    return [(int(w), int(h)) if w > 0 and h > 0 else None for w, h in pairs.tolist()]


def pack(results: Sequence[ImageResult], stage_ms: Sequence[float]) -> dict[str, np.ndarray]:
    """One request's output tensors, detections padded to the request's largest count."""
    count = len(results)
    longest = max((len(r.rows) for r in results), default=0)
    detections = np.zeros((count, max(1, longest), 6), dtype=np.float32)
    for index, result in enumerate(results):
        detections[index, : len(result.rows)] = result.rows
    return {
        DETECTIONS: detections,
        COUNTS: np.array([[len(r.rows)] for r in results], dtype=np.int32),
        IMAGE_SIZE: np.array([[r.width, r.height] for r in results], dtype=np.int32),
        STATUS: np.array([[r.status] for r in results], dtype=np.int32),
        STAGE_MS: np.tile(np.asarray(stage_ms, dtype=np.float32), (count, 1)),
    }


def unpack(outputs: dict[str, np.ndarray]) -> list[ImageResult]:
    """The inverse of ``pack`` on the caller's side."""
    counts = outputs[COUNTS].reshape(-1)
    sizes = outputs[IMAGE_SIZE].reshape(-1, 2)
    statuses = outputs[STATUS].reshape(-1)
    detections = outputs[DETECTIONS].reshape(len(counts), -1, 6)
    stages = outputs[STAGE_MS].reshape(len(counts), 3).tolist()
    return [
        ImageResult(
            int(status),
            int(size[0]),
            int(size[1]),
            detections[index, : int(count)],
            (stages[index][0], stages[index][1], stages[index][2]),
        )
        for index, (count, size, status) in enumerate(zip(counts, sizes, statuses, strict=True))
    ]
