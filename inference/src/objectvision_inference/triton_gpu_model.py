"""Triton Python-backend model: the native PyTorch YOLOv8n on the GPU, fp16, CUDA graphs.

Copied as ``<repo>/yolov8n/1/model.py`` by ``objectvision_inference.triton.build_model_repository``
(flavour ``gpu``), next to ``torch_yolo.py`` and ``model.onnx`` (the served graph, read for its
weights, K and min_score). For a GPU box without TensorRT: the stub's Python must have torch
with CUDA, onnx and numpy; this file imports nothing else but the stub's
``triton_python_backend_utils``.

Why CUDA graphs: the Python backend already costs a copy through shared memory per request;
an eager forward pass adds ~250 kernel launches from Python, which caps batch 1 at ~100 img/s.
One graph per batch size in ``graph_batch_sizes`` is captured at load; a dynamic batch is
padded to the next captured size.

Tensors cross the stub as DLPack, not numpy: the tritonserver 2.51 stub returns empty outputs
when the stub's numpy is 2.x (see triton_model.py), and a GPU box's torch venv has numpy 2.
"""

from __future__ import annotations

import json
import os
import sys
import time
from typing import Any

import torch
import triton_python_backend_utils as pb_utils
from torch.utils import dlpack

try:
    from objectvision_inference import torch_yolo
except ImportError:  # inside Triton: torch_yolo.py sits next to this file
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import torch_yolo

INPUT_NAME = torch_yolo.INPUT_NAME
OUTPUT_NAME = torch_yolo.OUTPUT_NAME


def _parameters(model_config: dict[str, Any]) -> dict[str, str]:
    """Flatten the config's ``parameters`` map to plain strings."""
    params = model_config.get("parameters", {})
    return {key: value["string_value"] for key, value in params.items()}


def _device(args: dict[str, str]) -> torch.device:
    """The GPU Triton placed this instance on (KIND_GPU), else the CPU (KIND_CPU: tests)."""
    if args.get("model_instance_kind") == "GPU":
        return torch.device("cuda", int(args.get("model_instance_device_id", "0")))
    return torch.device("cpu")


class TritonPythonModel:
    """One ``BatchRunner`` (model + captured graphs) per Triton model instance."""

    def initialize(self, args: dict[str, str]) -> None:
        """Load the weights on this instance's device and capture the CUDA graphs."""
        started = time.perf_counter()
        config = json.loads(args["model_config"])
        params = _parameters(config)
        model_dir = os.path.join(args["model_repository"], args["model_version"])
        onnx_path = os.path.join(model_dir, params.get("onnx_file", "model.onnx"))
        device = _device(args)
        if device.type == "cuda":
            torch.cuda.set_device(device)
        half = params.get("fp16", "1") == "1"
        graphs = params.get("cuda_graphs", "1") == "1" and device.type == "cuda"
        max_batch = int(config.get("max_batch_size", 0)) or 1
        sizes = [int(s) for s in params.get("graph_batch_sizes", str(max_batch)).split(",") if s]
        model = torch_yolo.load_served_model(onnx_path, device=device, half=half)
        self.runner = torch_yolo.BatchRunner(model, sizes, graphs=graphs)
        name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
        numpy = sys.modules.get("numpy")
        pb_utils.Logger.log_info(
            f"yolov8n: torch {torch.__version__}, numpy {getattr(numpy, '__version__', None)}, "
            f"on {device} ({name}), fp16={half}, "
            f"cuda_graphs={graphs} for batch sizes {self.runner.sizes}, top_k={model.top_k}, "
            f"ready in {time.perf_counter() - started:.1f} s, {onnx_path}"
        )

    def execute(self, requests: list[Any]) -> list[Any]:
        """Run all requests of one dynamic batch as one padded batch on the device."""
        try:
            parts = [
                dlpack.from_dlpack(pb_utils.get_input_tensor_by_name(r, INPUT_NAME).to_dlpack())
                for r in requests
            ]
            detections = self.runner(parts)
        except Exception as exc:
            error = pb_utils.TritonError(f"torch failed on {len(requests)} requests: {exc}")
            return [pb_utils.InferenceResponse(output_tensors=[], error=error) for _ in requests]
        responses = []
        start = 0
        for part in parts:
            rows = detections[start : start + part.shape[0]]
            start += part.shape[0]
            tensor = pb_utils.Tensor.from_dlpack(OUTPUT_NAME, dlpack.to_dlpack(rows))
            responses.append(pb_utils.InferenceResponse(output_tensors=[tensor]))
        return responses

    def finalize(self) -> None:
        """Drop the graphs and weights so device memory goes before the stub exits."""
        self.runner = None
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
