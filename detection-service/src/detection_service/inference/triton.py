"""The served model behind Triton's gRPC API, over one connection reused by every batch."""

import logging

import numpy as np
import tritonclient.grpc as grpcclient
from tritonclient.grpc.aio import InferenceServerClient
from tritonclient.utils import InferenceServerException

from objectvision_common.errors import Unavailable

logger = logging.getLogger(__name__)

INPUT_NAME = "images"
OUTPUT_NAME = "detections"
RETRY_AFTER_SECONDS = 1
_MAX_MESSAGE_BYTES = 256 * 1024 * 1024
# Triton may restart in well under a second; keep gRPC's reconnect backoff short so the first
# call after it is back does not wait out a long exponential backoff.
_CHANNEL_ARGS = [
    ("grpc.max_send_message_length", _MAX_MESSAGE_BYTES),
    ("grpc.max_receive_message_length", _MAX_MESSAGE_BYTES),
    ("grpc.keepalive_time_ms", 30_000),
    ("grpc.keepalive_timeout_ms", 10_000),
    ("grpc.initial_reconnect_backoff_ms", 250),
    ("grpc.min_reconnect_backoff_ms", 250),
    ("grpc.max_reconnect_backoff_ms", 2_000),
]
# Statuses that mean "not now" rather than "never": the caller may retry.
_TRANSIENT = {
    "StatusCode.UNAVAILABLE",
    "StatusCode.DEADLINE_EXCEEDED",
    "StatusCode.RESOURCE_EXHAUSTED",
    "StatusCode.ABORTED",
    "StatusCode.CANCELLED",
    # Triton answers NOT_FOUND / "unknown model" while the model is (re)loading.
    "StatusCode.NOT_FOUND",
}


def make_input(frames: list[np.ndarray]) -> grpcclient.InferInput:
    """Stack letterboxed frames into one UINT8 [B, 640, 640, 3] input (a copy: run off-loop)."""
    batch = np.stack(frames)
    tensor = grpcclient.InferInput(INPUT_NAME, list(batch.shape), "UINT8")
    tensor.set_data_from_numpy(batch)
    return tensor


class TritonModel:
    def __init__(self, url: str, *, model_name: str) -> None:
        self.url = url
        self.model_name = model_name
        self._client = InferenceServerClient(url, channel_args=_CHANNEL_ARGS)
        self._max_batch: int | None = None

    async def max_batch_size(self, *, time_limit_s: float = 2.0) -> int | None:
        """The model's max_batch_size from Triton, or None while Triton cannot say (cached)."""
        if self._max_batch is None:
            try:
                config = await self._client.get_model_config(
                    self.model_name, as_json=True, client_timeout=time_limit_s
                )
                self._max_batch = max(1, int(config["config"].get("max_batch_size", 1)))
            except (InferenceServerException, KeyError, TypeError, ValueError) as error:
                logger.debug("Triton model config unavailable", extra={"error": str(error)})
                return None
        return self._max_batch

    async def infer(self, tensor: grpcclient.InferInput, *, time_limit_s: float) -> np.ndarray:
        """[B, K, 6] float32 detections; Unavailable when Triton is down, overloaded or slow."""
        try:
            result = await self._client.infer(
                self.model_name,
                [tensor],
                outputs=[grpcclient.InferRequestedOutput(OUTPUT_NAME)],
                client_timeout=time_limit_s,
            )
        except InferenceServerException as error:
            if error.status() in _TRANSIENT or error.status() is None:
                raise Unavailable(
                    "the inference server is unavailable; retry shortly",
                    retry_after_seconds=RETRY_AFTER_SECONDS,
                ) from error
            raise
        output = result.as_numpy(OUTPUT_NAME)
        if output is None or output.ndim != 3 or output.shape[2] != 6:
            raise RuntimeError(f"unexpected {OUTPUT_NAME} output from Triton: {output!r:.200}")
        return output

    async def close(self) -> None:
        await self._client.close()
