"""Triton Python-backend model: encoded images in, detections in original pixels out.

Copied as ``<repo>/yolov8n/1/model.py`` by ``objectvision_inference.triton.build_model_repository``,
with the modules it needs in ``1/objectvision_inference/`` (nothing of the project is installed
in the Triton stub's Python). The contract is ``detect_contract``'s; the config's ``pipeline``
parameter picks how it is computed:

* ``onnxruntime`` (CPU: ``make run``, the tests): OpenCV decode, the served graph under ONNX
  Runtime, numpy NMS (``cpu_pipeline``); the stub's Python needs numpy < 2 (the tritonserver
  2.51 stub returns empty outputs with numpy 2), onnxruntime and OpenCV.
* ``torch`` (GPU without TensorRT): nvJPEG, CUDA-graph fp16 YOLOv8n and NMS on the device
  (``torch_pipeline``).
* ``tensorrt`` (production): BLS calls to DALI and a TensorRT engine with EfficientNMS, the
  request's options applied last (``trt_pipeline``).

Triton's dynamic batcher hands ``execute`` several requests at once: their images run as one
batch, whatever options each carries, and the answers are split back per request.
"""

from __future__ import annotations

import json
import os
import sys
import time
from typing import Any

import numpy as np
import triton_python_backend_utils as pb_utils

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from objectvision_inference import detect_contract as contract

_OPTIONAL_INPUTS = (
    contract.CONFIDENCE,
    contract.IOU,
    contract.MAX_DETECTIONS,
    contract.CLASS_MASK,
    contract.EXPECTED_SIZE,
)


def _parameters(model_config: dict[str, Any]) -> dict[str, str]:
    """Flatten the config's ``parameters`` map to plain strings."""
    params = model_config.get("parameters", {})
    return {key: value["string_value"] for key, value in params.items()}


def _numpy(request: Any, name: str) -> np.ndarray | None:
    tensor = pb_utils.get_input_tensor_by_name(request, name)
    return None if tensor is None else tensor.as_numpy()


class TritonPythonModel:
    """One pipeline (network, buffers, graphs) per Triton model instance."""

    def initialize(self, args: dict[str, str]) -> None:
        started = time.perf_counter()
        config = json.loads(args["model_config"])
        params = _parameters(config)
        self.max_pixels = int(params.get("max_pixels", "40000000"))
        # Before OpenCV is first imported: the decoder itself refuses larger images.
        os.environ["OPENCV_IO_MAX_IMAGE_PIXELS"] = str(self.max_pixels)
        self.defaults = contract.ImageOptions(
            confidence=float(params.get("confidence", "0.25")),
            iou=float(params.get("iou", "0.7")),
            max_detections=int(params.get("max_detections", "300")),
        )
        model_dir = os.path.join(args["model_repository"], args["model_version"])
        onnx_path = os.path.join(model_dir, params.get("onnx_file", "model.onnx"))
        kind = params.get("pipeline", "onnxruntime")
        self.numpy_outputs = int(np.__version__.split(".")[0]) < 2
        if kind == "torch":
            self.pipeline, described = self._torch(args, params, config, onnx_path)
        elif kind == "tensorrt":
            from objectvision_inference.trt_pipeline import TensorRtPipeline

            self.pipeline = TensorRtPipeline(
                pb_utils,
                preprocess_model=params["preprocess_model"],
                engine_model=params["engine_model"],
                engine_iou=float(params.get("engine_iou", "0.7")),
                max_pixels=self.max_pixels,
            )
            described = f"BLS to {params['preprocess_model']} and {params['engine_model']}"
        elif kind == "onnxruntime":
            if not self.numpy_outputs:
                raise RuntimeError(
                    f"numpy {np.__version__} from {np.__file__}: the Triton Python stub needs"
                    " numpy < 2; start tritonserver with the Triton venv's bin/ first on PATH"
                )
            self.pipeline, described = self._onnxruntime(params, onnx_path)
        else:
            raise ValueError(f"pipeline must be onnxruntime or torch, not {kind!r}")
        pb_utils.Logger.log_info(
            f"{config['name']}: {described}, numpy {np.__version__}, max_pixels "
            f"{self.max_pixels}, ready in {time.perf_counter() - started:.1f} s, {onnx_path}"
        )

    def _onnxruntime(self, params: dict[str, str], onnx_path: str) -> tuple[Any, str]:
        import onnxruntime as ort

        from objectvision_inference.cpu_pipeline import CpuPipeline

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = int(params.get("intra_op_threads", "0"))
        opts.inter_op_num_threads = int(params.get("inter_op_threads", "1"))
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        # Spinning worker threads burn the cores the co-located services need between batches.
        spinning = params.get("allow_spinning", "0")
        opts.add_session_config_entry("session.intra_op.allow_spinning", spinning)
        opts.add_session_config_entry("session.inter_op.allow_spinning", spinning)
        session = ort.InferenceSession(onnx_path, opts, providers=["CPUExecutionProvider"])
        (input_name,) = [i.name for i in session.get_inputs()]

        # int8 with dynamic quantization: one scale per call, so per-image calls keep an
        # image's answer the same whichever images share its batch (0: the whole batch).
        step = int(params.get("network_batch", "0"))

        def network(batch: np.ndarray) -> np.ndarray:
            if not step or len(batch) <= step:
                whole: np.ndarray = session.run(None, {input_name: batch})[0]
                return whole
            parts = [
                session.run(None, {input_name: batch[start : start + step]})[0]
                for start in range(0, len(batch), step)
            ]
            return np.concatenate(parts)

        pipeline = CpuPipeline(network, max_pixels=self.max_pixels)
        return pipeline, (
            f"onnxruntime {ort.__version__}, intra_op_threads={opts.intra_op_num_threads}"
        )

    def _torch(
        self, args: dict[str, str], params: dict[str, str], config: dict[str, Any], path: str
    ) -> tuple[Any, str]:
        import torch

        from objectvision_inference import torch_yolo
        from objectvision_inference.torch_pipeline import TorchPipeline

        if args.get("model_instance_kind") == "GPU":
            device = torch.device("cuda", int(args.get("model_instance_device_id", "0")))
            torch.cuda.set_device(device)
        else:
            device = torch.device("cpu")
        half = params.get("fp16", "1") == "1" and device.type == "cuda"
        graphs = params.get("cuda_graphs", "1") == "1" and device.type == "cuda"
        max_batch = int(config.get("max_batch_size", 0)) or 1
        sizes = [int(s) for s in params.get("graph_batch_sizes", str(max_batch)).split(",") if s]
        model = torch_yolo.load_served_model(path, device=device, half=half)
        runner = torch_yolo.BatchRunner(model, sizes, graphs=graphs)
        pipeline = TorchPipeline(runner, max_pixels=self.max_pixels)
        name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
        return pipeline, (
            f"torch {torch.__version__} on {device} ({name}), fp16={half}, nvjpeg="
            f"{pipeline.nvjpeg}, cuda_graphs={graphs} for batch sizes {runner.sizes}"
        )

    def _tensor(self, name: str, array: np.ndarray) -> Any:
        array = np.ascontiguousarray(array)
        if self.numpy_outputs:
            return pb_utils.Tensor(name, array)
        return pb_utils.Tensor.from_dlpack(name, array.__dlpack__())

    def execute(self, requests: list[Any]) -> list[Any]:
        """All images of all requests as one batch; one response per request."""
        images: list[bytes] = []
        options: list[contract.ImageOptions] = []
        expected: list[tuple[int, int] | None] = []
        counts: list[int] = []
        responses: list[Any] = [None] * len(requests)
        for position, request in enumerate(requests):
            try:
                encoded = _numpy(request, contract.IMAGES)
                if encoded is None:
                    raise ValueError(f"the {contract.IMAGES} input is missing")
                blobs = [bytes(item) for item in encoded.reshape(-1)]
                inputs = {name: _numpy(request, name) for name in _OPTIONAL_INPUTS}
                per_image = contract.request_options(
                    len(blobs),
                    self.defaults,
                    confidence=inputs[contract.CONFIDENCE],
                    iou=inputs[contract.IOU],
                    max_detections=inputs[contract.MAX_DETECTIONS],
                    class_mask=inputs[contract.CLASS_MASK],
                )
                sizes = contract.expected_sizes(len(blobs), inputs[contract.EXPECTED_SIZE])
            except (ValueError, TypeError) as error:
                responses[position] = pb_utils.InferenceResponse(
                    output_tensors=[], error=pb_utils.TritonError(f"bad request: {error}")
                )
                counts.append(0)
                continue
            images += blobs
            options += per_image
            expected += sizes
            counts.append(len(blobs))
        try:
            results, stage_ms = self.pipeline(images, options, expected) if images else ([], ())
        except Exception as error:
            failure = pb_utils.TritonError(f"inference failed on {len(images)} images: {error}")
            return [pb_utils.InferenceResponse(output_tensors=[], error=failure) for _ in requests]
        start = 0
        for position, count in enumerate(counts):
            if responses[position] is not None:
                continue
            outputs = contract.pack(results[start : start + count], stage_ms)
            start += count
            tensors = [self._tensor(name, value) for name, value in outputs.items()]
            responses[position] = pb_utils.InferenceResponse(output_tensors=tensors)
        return responses

    def finalize(self) -> None:
        """Drop the pipeline so its memory (and device graphs) go before the stub exits."""
        self.pipeline = None
