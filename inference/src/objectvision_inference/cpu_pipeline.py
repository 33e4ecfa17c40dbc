"""The contract on the CPU: OpenCV decode and letterbox, the served graph under ONNX Runtime,
per-image selection and NMS in numpy (``make run`` and the tests serve this).

The pixel limit binds the decoder itself, not only the caller's header parser: the Triton
model sets ``OPENCV_IO_MAX_IMAGE_PIXELS`` before OpenCV is imported (OpenCV then refuses
from its own reading of the header, before it allocates), and the decoded size is checked
against the limit and against the caller's ``expected_size`` as well.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import cv2
import numpy as np

from objectvision_inference import detect_contract as contract

# (images [B, S, S, 3] uint8 RGB) -> [B, K, 6] candidates in model-input pixels.
Network = Callable[[np.ndarray], np.ndarray]


def decode(data: bytes, max_pixels: int) -> tuple[np.ndarray | None, int]:
    """BGR HxWx3 with the EXIF orientation applied (as Ultralytics reads images), or a status."""
    try:
        image = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_COLOR)
    except cv2.error as error:
        # OpenCV raises (rather than returning None) when its own header read exceeds
        # OPENCV_IO_MAX_IMAGE_PIXELS.
        too_large = "pixels" in str(error).lower() or "limit" in str(error).lower()
        return None, contract.STATUS_TOO_LARGE if too_large else contract.STATUS_UNDECODABLE
    if image is None:
        return None, contract.STATUS_UNDECODABLE
    if image.shape[0] * image.shape[1] > max_pixels:
        return None, contract.STATUS_TOO_LARGE
    return image, contract.STATUS_OK


def decode_checked(
    data: bytes, max_pixels: int, expected: tuple[int, int] | None
) -> tuple[np.ndarray | None, contract.ImageResult | None]:
    """The decoded image, or the refusal: undecodable, over the limit, or another size than
    the caller's header parser read (both pipelines decode on the CPU through this)."""
    image, status = decode(data, max_pixels)
    if image is None:
        return None, contract.ImageResult.refused(status)
    height, width = image.shape[:2]
    if not contract.size_matches(expected, width, height):
        return None, contract.ImageResult.refused(contract.STATUS_SIZE_MISMATCH, width, height)
    return image, None


def letterbox(image_bgr: np.ndarray, out: np.ndarray) -> contract.Letterbox:
    """Write the model input (RGB, padded with 114) of one BGR image into ``out`` [S, S, 3]."""
    height, width = image_bgr.shape[:2]
    box = contract.Letterbox.fit(width, height, out.shape[0])
    resized = cv2.resize(image_bgr, (box.new_width, box.new_height), interpolation=cv2.INTER_LINEAR)
    out[...] = contract.PAD_VALUE
    region = out[box.top : box.top + box.new_height, box.left : box.left + box.new_width]
    cv2.cvtColor(resized, cv2.COLOR_BGR2RGB, dst=region)
    return box


class CpuPipeline(contract.Pipeline):
    """Decode, letterbox, one batched network run, then per-image selection."""

    def __init__(self, network: Network, *, max_pixels: int, input_size: int = 640) -> None:
        self._network = network
        self._max_pixels = max_pixels
        self._size = input_size

    def run(
        self, request: contract.ImageBatch
    ) -> tuple[list[contract.ImageResult], contract.StageMs]:
        images, options, expected = request
        started = time.perf_counter()
        results: list[contract.ImageResult | None] = [None] * len(images)
        batch = np.empty((len(images), self._size, self._size, 3), dtype=np.uint8)
        boxes: list[tuple[int, contract.Letterbox]] = []
        for index, data in enumerate(images):
            image, refusal = decode_checked(data, self._max_pixels, expected[index])
            if image is None:
                results[index] = refusal
                continue
            boxes.append((index, letterbox(image, batch[len(boxes)])))
        decoded = time.perf_counter()
        candidates = self._network(batch[: len(boxes)]) if boxes else np.zeros((0, 0, 6))
        ran = time.perf_counter()
        for row, (index, box) in enumerate(boxes):
            kept = contract.select(candidates[row], options[index])
            results[index] = contract.ImageResult(
                contract.STATUS_OK, box.width, box.height, contract.to_original(kept, box)
            )
        done = time.perf_counter()
        return [r for r in results if r is not None], contract.stage_times(
            started, decoded, ran, done
        )
