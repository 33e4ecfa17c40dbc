"""The served model behind Triton's gRPC API, over one connection reused by every batch.

What crosses the wire is ``objectvision_inference.detect_contract``: the uploads' encoded
bytes and each image's options in, final boxes in original pixels out.
"""

import asyncio
import json
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import tritonclient.grpc as grpcclient
from tritonclient.grpc.aio import InferenceServerClient
from tritonclient.utils import InferenceServerException

from detection_service.pipeline.header import ImageHeader
from detection_service.pipeline.types import DetectionOptions
from objectvision_common.errors import Unavailable
from objectvision_inference import detect_contract as contract

logger = logging.getLogger(__name__)

RETRY_AFTER_SECONDS = 1
# A model that is loading on a CPU Triton is ready within seconds.
NOT_READY_RETRY_AFTER_SECONDS = 5
_MAX_MESSAGE_BYTES = 256 * 1024 * 1024
# Every address the target resolves to gets calls in turn (a `dns:///` name of a headless
# Service, or `ipv4:a:p,b:p`), and a call that finds one endpoint gone (UNAVAILABLE: it never
# reached a model) is replayed on another: inference is idempotent.
_SERVICE_CONFIG = {
    "loadBalancingConfig": [{"round_robin": {}}],
    "methodConfig": [
        {
            "name": [{"service": "inference.GRPCInferenceService"}],
            "retryPolicy": {
                "maxAttempts": 4,
                "initialBackoff": "0.05s",
                "maxBackoff": "0.5s",
                "backoffMultiplier": 2,
                "retryableStatusCodes": ["UNAVAILABLE"],
            },
        }
    ],
}
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
    # A retried call is replayed from this buffer (gRPC's default, 256 KiB, holds less than
    # one batch of JPEGs, which would make every batch non-retryable).
    ("grpc.per_rpc_retry_buffer_size", 64 * 1024 * 1024),
    ("grpc.retry_buffer_size", 256 * 1024 * 1024),
    ("grpc.service_config", json.dumps(_SERVICE_CONFIG)),
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
# How Triton's Python backend says the process serving a model instance (its stub) did not
# answer: crashed (Triton's issue 8882), or too slow to answer a health check on a loaded
# machine. Triton itself lives on and says it is healthy.
_BACKEND_DOWN = "is not healthy"


class BackendDown(Unavailable, code="model_backend_down"):
    """The model's backend process did not answer (see _BACKEND_DOWN): a call may be tried
    again, and once more after `TritonModel.restart_backend` has had the model loaded again."""


@dataclass(frozen=True)
class ImageRequest:
    """One image as the model takes it: the upload's bytes, its header size and options."""

    data: bytes
    width: int
    height: int
    confidence: float
    iou: float
    max_detections: int
    class_ids: frozenset[int] | None

    @classmethod
    def of(cls, data: bytes, header: ImageHeader, options: DetectionOptions) -> "ImageRequest":
        """The image whose header was read as ``header``, with a request's options."""
        return cls(
            data=data,
            width=header.width,
            height=header.height,
            confidence=options.floor,
            iou=options.iou,
            max_detections=options.max_detections,
            class_ids=options.class_ids,
        )


def make_inputs(images: Sequence[ImageRequest], class_count: int) -> list[grpcclient.InferInput]:
    """The request's input tensors: the encoded bytes as they came, and the small option
    tensors (no decoding, no pixel copies: cheap enough anywhere)."""
    count = len(images)
    encoded = np.empty((count, 1), dtype=object)
    for index, image in enumerate(images):
        encoded[index, 0] = image.data
    masks = np.ones((count, class_count), dtype=bool)
    for index, image in enumerate(images):
        if image.class_ids is not None:
            masks[index] = False
            masks[index, [c for c in image.class_ids if 0 <= c < class_count]] = True
    arrays = {
        contract.IMAGES: (encoded, "BYTES"),
        contract.CONFIDENCE: (np.array([[i.confidence] for i in images], np.float32), "FP32"),
        contract.IOU: (np.array([[i.iou] for i in images], np.float32), "FP32"),
        contract.MAX_DETECTIONS: (
            np.array([[i.max_detections] for i in images], np.int32),
            "INT32",
        ),
        contract.CLASS_MASK: (masks, "BOOL"),
        contract.EXPECTED_SIZE: (
            np.array([[i.width, i.height] for i in images], np.int32),
            "INT32",
        ),
    }
    inputs = []
    for name, (array, datatype) in arrays.items():
        tensor = grpcclient.InferInput(name, list(array.shape), datatype)
        tensor.set_data_from_numpy(array)
        inputs.append(tensor)
    return inputs


class TritonModel:
    """Triton's gRPC API for one model, spread over every endpoint the URL names.

    Why the channel is renewed every ``channel_max_age_s``: DNS is resolved when a channel
    connects (and after a connection fails), so Triton pods the autoscaler adds would get no
    calls from a channel that never fails. A fresh channel re-resolves; the old one closes once
    its calls had time to finish.
    """

    def __init__(self, url: str, *, model_name: str, channel_max_age_s: float = 60.0) -> None:
        self.url = url
        self.model_name = model_name
        self._max_age = channel_max_age_s
        self._client = InferenceServerClient(url, channel_args=_CHANNEL_ARGS)
        self._born = time.monotonic()
        self._retiring: set[asyncio.Task[None]] = set()
        self._max_batch: int | None = None
        self._version: tuple[str, float] | None = None
        self._reloading = asyncio.Lock()
        self._reloaded_at = float("-inf")

    async def version(self, *, refresh_s: float = 30.0) -> str | None:
        """The newest version Triton serves of the model (re-read every ``refresh_s``), or
        None while Triton cannot say: answers are cached per version."""
        now = time.monotonic()
        if self._version is None or now - self._version[1] > refresh_s:
            try:
                metadata = await self._client.get_model_metadata(
                    self.model_name, as_json=True, client_timeout=2.0
                )
                versions = [str(v) for v in metadata.get("versions", [])]
                newest = max(versions, key=lambda v: (len(v), v)) if versions else None
            except InferenceServerException:
                return self._version[0] if self._version else None
            if newest is None:
                return None
            self._version = (newest, now)
        return self._version[0]

    def _fresh_client(self, grace_s: float) -> InferenceServerClient:
        if time.monotonic() - self._born >= self._max_age:
            old = self._client
            self._client = InferenceServerClient(self.url, channel_args=_CHANNEL_ARGS)
            self._born = time.monotonic()
            task = asyncio.get_running_loop().create_task(self._retire(old, grace_s))
            self._retiring.add(task)
            task.add_done_callback(self._retiring.discard)
        return self._client

    @staticmethod
    async def _retire(client: InferenceServerClient, grace_s: float) -> None:
        """Close the old channel once its calls had time to finish, or at once on close()."""
        try:
            await asyncio.sleep(grace_s)
        finally:
            await client.close()

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

    async def infer(
        self, inputs: list[grpcclient.InferInput], *, time_limit_s: float
    ) -> list[contract.ImageResult]:
        """Each image's answer; Unavailable when Triton is down, overloaded or slow."""
        client = self._fresh_client(grace_s=time_limit_s + 1.0)
        try:
            result = await client.infer(
                self.model_name,
                inputs,
                outputs=[grpcclient.InferRequestedOutput(name) for name in contract.OUTPUTS],
                client_timeout=time_limit_s,
            )
        except InferenceServerException as error:
            if error.status() == "StatusCode.NOT_FOUND":
                # Triton knows no such loaded model: it is being (re)loaded or was unloaded
                # after the catalog last looked; a caller may retry once it is loaded again.
                unready = Unavailable(
                    f"model {self.model_name!r} is not ready (not loaded); retry shortly",
                    retry_after_seconds=NOT_READY_RETRY_AFTER_SECONDS,
                )
                unready.code = "model_not_ready"
                raise unready from error
            if error.status() == "StatusCode.INTERNAL" and _BACKEND_DOWN in (error.message() or ""):
                raise BackendDown(
                    f"model {self.model_name!r} lost its backend process; retry shortly",
                    retry_after_seconds=NOT_READY_RETRY_AFTER_SECONDS,
                ) from error
            if error.status() in _TRANSIENT or error.status() is None:
                raise Unavailable(
                    "the inference server is unavailable; retry shortly",
                    retry_after_seconds=RETRY_AFTER_SECONDS,
                ) from error
            raise
        outputs = {name: result.as_numpy(name) for name in contract.OUTPUTS}
        missing = [name for name, value in outputs.items() if value is None]
        if missing:
            raise RuntimeError(f"Triton's answer lacks {missing}: not the encoded-image contract")
        return contract.unpack(outputs)

    async def restart_backend(self, *, failed_at: float, time_limit_s: float) -> bool:
        """Ask Triton to load the model again, which starts new backend processes for it:
        Triton does not restart a crashed one itself. Batches that met the same crash
        (`failed_at`, time.monotonic() when they did) share one reload: one that failed
        before a reload this process finished does not ask for another. False where Triton
        refuses (`--model-control-mode=none`, as in the cluster, where the pod is replaced
        instead) or the reload fails."""
        async with self._reloading:
            if self._reloaded_at > failed_at:
                return True
            try:
                # Unloaded first: a load of a model already loaded from unchanged files does
                # nothing, and its crashed process would stay crashed. Calls meanwhile are
                # answered "not ready, retry shortly", as during any reload.
                await self._client.unload_model(self.model_name, client_timeout=time_limit_s)
                await self._client.load_model(self.model_name, client_timeout=time_limit_s)
            except InferenceServerException as error:
                logger.warning(
                    "Triton did not load the model again",
                    extra={"model": self.model_name, "error": str(error)},
                )
                return False
            finally:
                self._reloaded_at = time.monotonic()
            logger.warning(
                "model loaded again after its backend process stopped",
                extra={"model": self.model_name},
            )
            return True

    async def close(self) -> None:
        for task in list(self._retiring):
            task.cancel()
        await asyncio.gather(*self._retiring, return_exceptions=True)
        await self._client.close()
