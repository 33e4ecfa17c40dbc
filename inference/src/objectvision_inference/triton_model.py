"""Triton Python-backend model: the served YOLOv8 ONNX under ONNX Runtime on the CPU.

Copied as ``<repo>/yolov8n/1/model.py`` by ``objectvision_inference.triton.build_model_repository``
and run by Triton's Python backend stub inside the Triton virtualenv (numpy < 2, onnxruntime),
not inside the main app venv; so it must only import numpy, onnxruntime and the stub's
``triton_python_backend_utils``.

Triton's dynamic batcher hands ``execute`` several requests at once; they are concatenated into
one ONNX Runtime run (one batched pass is cheaper per image than one run per request) and the
output is split back per request.
"""

from __future__ import annotations

import json
import os
from typing import Any

import numpy as np
import onnxruntime as ort
import triton_python_backend_utils as pb_utils

INPUT_NAME = "images"
OUTPUT_NAME = "detections"


def _parameters(model_config: dict[str, Any]) -> dict[str, str]:
    """Flatten the config's ``parameters`` map to plain strings."""
    params = model_config.get("parameters", {})
    return {key: value["string_value"] for key, value in params.items()}


class TritonPythonModel:
    """One ONNX Runtime session per Triton model instance."""

    def initialize(self, args: dict[str, str]) -> None:
        """Open the ONNX Runtime session with the thread settings from the model config."""
        if int(np.__version__.split(".")[0]) >= 2:
            # The stub of tritonserver 2.51 silently returns empty tensors with numpy 2.
            raise RuntimeError(
                f"numpy {np.__version__} from {np.__file__}: the Triton Python stub needs"
                " numpy < 2;"
                " start tritonserver with the Triton venv's bin/ first on PATH"
            )
        config = json.loads(args["model_config"])
        params = _parameters(config)
        model_dir = os.path.join(args["model_repository"], args["model_version"])
        onnx_path = os.path.join(model_dir, params.get("onnx_file", "model.onnx"))

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = int(params.get("intra_op_threads", "0"))
        opts.inter_op_num_threads = int(params.get("inter_op_threads", "1"))
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        # Spinning worker threads burn the cores the co-located services need between batches.
        spinning = params.get("allow_spinning", "0")
        opts.add_session_config_entry("session.intra_op.allow_spinning", spinning)
        opts.add_session_config_entry("session.inter_op.allow_spinning", spinning)
        self.session = ort.InferenceSession(onnx_path, opts, providers=["CPUExecutionProvider"])
        self.logger = pb_utils.Logger
        self.logger.log_info(
            f"yolov8n: onnxruntime {ort.__version__}, numpy {np.__version__}, "
            f"intra_op_threads={opts.intra_op_num_threads}, {onnx_path}"
        )

    def execute(self, requests: list[Any]) -> list[Any]:
        """Run all requests of one dynamic batch in a single ONNX Runtime call."""
        arrays = [pb_utils.get_input_tensor_by_name(r, INPUT_NAME).as_numpy() for r in requests]
        sizes = [a.shape[0] for a in arrays]
        batch = arrays[0] if len(arrays) == 1 else np.concatenate(arrays, axis=0)
        try:
            (detections,) = self.session.run([OUTPUT_NAME], {INPUT_NAME: batch})
        except Exception as exc:
            error = pb_utils.TritonError(f"onnxruntime failed on a batch of {len(batch)}: {exc}")
            return [pb_utils.InferenceResponse(output_tensors=[], error=error) for _ in requests]
        responses = []
        start = 0
        for size in sizes:
            part = detections[start : start + size]
            start += size
            tensor = pb_utils.Tensor(OUTPUT_NAME, np.ascontiguousarray(part))
            responses.append(pb_utils.InferenceResponse(output_tensors=[tensor]))
        return responses

    def finalize(self) -> None:
        """Drop the session so its memory goes before the stub exits."""
        self.session = None
