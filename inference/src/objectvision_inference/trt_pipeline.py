"""The contract in production: DALI decode + letterbox, a TensorRT engine with EfficientNMS,
the per-image options applied last (runs in NVIDIA's Triton image, never on these machines).

The ``yolov8n`` Python model (``triton_model.py``, ``pipeline: tensorrt``) drives two models
of the same repository by BLS, one call each per batch:

1. ``yolov8n_preprocess`` (DALI backend, ``inference/scripts/dali_letterbox.py``): the batch's
   files as one zero-padded UINT8 ``[B, L]`` tensor plus their lengths, decoded by nvJPEG
   (the hardware JPEG engines where the GPU has them), resized and padded to 640 x 640 on the
   device; out come the letterboxed ``[B, 640, 640, 3]`` (left on the GPU) and each decoded
   shape.
2. ``yolov8n_engine`` (TensorRT, ``inference/scripts/build_engine.sh``): the network and
   EfficientNMS at the engine's IoU (0.7), at most 300 boxes per image, score >= 0.001.
3. Here, per image: confidence, class filter, a further NMS pass when the request's IoU is
   below the engine's, the cap, and the mapping back to original pixels.

A request's IoU above the engine's cannot be honoured by a fixed-threshold NMS: such requests
get the engine's 0.7 (ADR 0010). Self-contained: numpy and the stub's utilities only.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from objectvision_inference import detect_contract as contract

PREPROCESS_INPUTS = ("encoded", "lengths")
PREPROCESS_OUTPUTS = ("letterboxed", "shapes")
ENGINE_INPUT = "images"
ENGINE_OUTPUTS = ("num_dets", "det_boxes", "det_scores", "det_classes")


def padded_batch(images: Sequence[bytes]) -> tuple[np.ndarray, np.ndarray]:
    """The files as one zero-padded ``[B, L]`` uint8 array and their ``[B, 1]`` lengths."""
    longest = max(len(data) for data in images)
    batch = np.zeros((len(images), longest), dtype=np.uint8)
    for row, data in enumerate(images):
        batch[row, : len(data)] = np.frombuffer(data, dtype=np.uint8)
    lengths = np.array([[len(data)] for data in images], dtype=np.int32)
    return batch, lengths


def finish(
    count: int,
    boxes: np.ndarray,
    scores: np.ndarray,
    classes: np.ndarray,
    option: contract.ImageOptions,
    box: contract.Letterbox,
    engine_iou: float,
) -> np.ndarray:
    """One image's engine rows (model-input pixels, after NMS at ``engine_iou``) -> the
    request's answer in original pixels."""
    rows = np.concatenate(
        [boxes[:count], scores[:count, None], classes[:count, None].astype(np.float32)], axis=1
    ).astype(np.float32)
    stricter = contract.ImageOptions(
        confidence=option.confidence,
        iou=min(option.iou, engine_iou),
        max_detections=option.max_detections,
        class_mask=option.class_mask,
    )
    return contract.to_original(contract.select(rows, stricter), box)


class TensorRtPipeline(contract.Pipeline):
    """BLS calls to the DALI and TensorRT models, then the per-image options."""

    def __init__(
        self,
        pb_utils: Any,
        *,
        preprocess_model: str,
        engine_model: str,
        engine_iou: float,
        max_pixels: int,
    ) -> None:
        self._pb = pb_utils
        self._preprocess = preprocess_model
        self._engine = engine_model
        self._engine_iou = engine_iou
        self._max_pixels = max_pixels

    def _call(self, model: str, inputs: list[Any], outputs: Sequence[str]) -> Any:
        response = self._pb.InferenceRequest(
            model_name=model, inputs=inputs, requested_output_names=list(outputs)
        ).exec()
        if response.has_error():
            raise RuntimeError(f"{model}: {response.error().message()}")
        return response

    def run(
        self, request: contract.ImageBatch
    ) -> tuple[list[contract.ImageResult], contract.StageMs]:
        images, options, expected = request
        pb = self._pb
        started = time.perf_counter()
        encoded, lengths = padded_batch(images)
        decoded = self._call(
            self._preprocess,
            [pb.Tensor(PREPROCESS_INPUTS[0], encoded), pb.Tensor(PREPROCESS_INPUTS[1], lengths)],
            PREPROCESS_OUTPUTS,
        )
        letterboxed = pb.get_output_tensor_by_name(decoded, PREPROCESS_OUTPUTS[0])
        shapes = pb.get_output_tensor_by_name(decoded, PREPROCESS_OUTPUTS[1]).as_numpy()
        prepared = time.perf_counter()
        # The letterboxed batch stays on the GPU: DLPack hands DALI's buffer to TensorRT.
        engine_input = pb.Tensor.from_dlpack(ENGINE_INPUT, letterboxed.to_dlpack())
        answered = self._call(self._engine, [engine_input], ENGINE_OUTPUTS)
        found = {
            name: pb.get_output_tensor_by_name(answered, name).as_numpy() for name in ENGINE_OUTPUTS
        }
        ran = time.perf_counter()
        results = []
        for index, option in enumerate(options):
            height, width = int(shapes[index][0]), int(shapes[index][1])
            if width * height > self._max_pixels:
                results.append(contract.ImageResult.refused(contract.STATUS_TOO_LARGE))
                continue
            if not contract.size_matches(expected[index], width, height):
                status = contract.STATUS_SIZE_MISMATCH
                results.append(contract.ImageResult.refused(status, width, height))
                continue
            box = contract.Letterbox.fit(width, height)
            rows = finish(
                int(found["num_dets"][index].reshape(-1)[0]),
                found["det_boxes"][index],
                found["det_scores"][index],
                found["det_classes"][index],
                option,
                box,
                self._engine_iou,
            )
            results.append(contract.ImageResult(contract.STATUS_OK, width, height, rows))
        done = time.perf_counter()
        return results, contract.stage_times(started, prepared, ran, done)
