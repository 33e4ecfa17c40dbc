"""A real Triton server from the nvidia-pytriton wheel, serving the prepared YOLOv8 models.

``yolov8n`` (fp32) always; ``yolov8n-int8`` too when `make model` prepared it next to the first
(``yolov8n-int8_served.onnx``). Model control is explicit: every model in the repository is
loaded at start-up, and clients (tests, operators) may load and unload models through Triton's
model control API without a restart.
"""

import asyncio
import inspect
import logging
import os
import signal
import time
import urllib.parse
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import TypeVar

import psutil

from objectvision_devstack.health import http_ok
from objectvision_devstack.processes import ManagedProcess, free_port
from objectvision_inference.triton import (
    INT8_MODEL_NAME,
    MODEL_NAME,
    build_model_repository,
    python_backend_shm_prefix,
    tritonserver_command,
)

logger = logging.getLogger(__name__)

REPOSITORY_ROOT = Path(__file__).resolve().parents[3]
SHARED_MEMORY_DIR = Path("/dev/shm")  # noqa: S108 - where the Python backend puts its regions
# Triton's Python backend can abort while its model instances start, at random and seldom
# (boost::interprocess::lock_exception in the stub handshake, triton-inference-server/server
# issue 8882): a server that aborts during start-up is started again, as a supervisor would.
START_ATTEMPTS = 3
INT8_SERVED_FILE = f"{INT8_MODEL_NAME}_served.onnx"


def served_model_path() -> Path:
    """Where `make model` put the served graph (MODEL_PATH_SERVED overrides it)."""
    override = os.environ.get("MODEL_PATH_SERVED")
    if override:
        return Path(override)
    data_dir = Path(os.environ.get("OBJECTVISION_DATA_DIR", REPOSITORY_ROOT / ".data"))
    return data_dir / "models" / "yolov8n_served.onnx"


def served_models(served_model: Path) -> dict[str, Path]:
    """The models to serve: name -> served ONNX; the int8 one only where it was prepared."""
    models = {MODEL_NAME: served_model}
    int8 = served_model.with_name(INT8_SERVED_FILE)
    if int8.exists():
        models[INT8_MODEL_NAME] = int8
    return models


async def settled_count(
    read: Callable[[], float] | Callable[[], Awaitable[float]],
    *,
    quiet_s: float = 0.3,
    timeout_s: float = 30.0,
) -> float:
    """A Triton request counter once it has stopped moving (``read`` returns it, sync or async).

    Triton counts a request when the backend reports its statistics, which it does after the
    response has gone out: read right after an answer, a counter can still be one short, and
    a baseline read one short makes a later difference one too many. So a count is taken as
    the value two reads ``quiet_s`` apart agree on.
    """

    async def value() -> float:
        got = read()
        return await got if inspect.isawaitable(got) else got

    deadline = time.monotonic() + timeout_s
    last = await value()
    while True:
        await asyncio.sleep(quiet_s)
        now = await value()
        if now == last:
            return now
        if time.monotonic() > deadline:
            raise AssertionError(f"Triton's counter still moving after {timeout_s} s: {now}")
        last = now


# OTLP/HTTP's standard port and path (the collector and Jaeger listen on it beside 4317).
_OTLP_HTTP_PORT = 4318
_OTLP_TRACES_PATH = "/v1/traces"


def otlp_http_traces_url(environ: Mapping[str, str]) -> str | None:
    """Where Triton should send its spans when the services trace, else None.

    The services export OTLP/gRPC to OTEL_EXPORTER_OTLP_(TRACES_)ENDPOINT; Triton's exporter
    speaks only OTLP/HTTP, so it gets the same host on OTLP/HTTP's port and path.
    """
    for name in ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT"):
        endpoint = environ.get(name, "").strip()
        if endpoint:
            parts = urllib.parse.urlsplit(endpoint if "://" in endpoint else f"http://{endpoint}")
            host = parts.hostname or "127.0.0.1"
            host = f"[{host}]" if ":" in host else host
            scheme = "https" if parts.scheme == "https" else "http"
            return f"{scheme}://{host}:{_OTLP_HTTP_PORT}{_OTLP_TRACES_PATH}"
    return None


def trace_arguments(url: str, *, service_name: str = "triton") -> list[str]:
    """tritonserver's OpenTelemetry trace mode (docs/user_guide/trace.md of Triton 2.51).

    ``rate=0``: only requests that carry a W3C trace context (detection-service's ModelInfer
    calls, through the grpc instrumentation's ``traceparent`` metadata) are traced, as children
    of the caller's span; Triton traces those whether or not the caller sampled them.
    """
    return [
        "--trace-config=mode=opentelemetry",
        "--trace-config=level=TIMESTAMPS",
        "--trace-config=rate=0",
        "--trace-config=count=-1",
        f"--trace-config=opentelemetry,url={url}",
        f"--trace-config=opentelemetry,resource=service.name={service_name}",
        # Export within half a second (the default waits 5 s): the spans of a request reach
        # the backend about when the caller's do.
        "--trace-config=opentelemetry,bsp_schedule_delay=500",
    ]


Reading = TypeVar("Reading")


def settled_statistics(
    read: Callable[[], Reading],
    *,
    enough: Callable[[Reading], bool] = lambda _: True,
    within_s: float = 10.0,
) -> Reading:
    """Triton's statistics once they stop moving (and are `enough`): it records a request
    after the answer has left, so a reading taken right after the last answer can miss it,
    and one taken before a test's requests can still be counting the previous test's."""
    deadline = time.monotonic() + within_s
    last = read()
    while time.monotonic() < deadline:
        time.sleep(0.2)
        now = read()
        if now == last and enough(now):
            return now
        last = now
    return last


class LocalTriton:
    def __init__(
        self,
        data_dir: Path,
        *,
        served_model: Path | None = None,
        triton_env_dir: Path | None = None,
        trace_url: str | None = None,
    ) -> None:
        """``trace_url``: an OTLP/HTTP traces URL to export Triton's own spans to."""
        self.data_dir = data_dir.resolve()
        self.served_model = served_model or self.data_dir / "models" / "yolov8n_served.onnx"
        self.triton_env_dir = triton_env_dir or REPOSITORY_ROOT / ".venv-triton"
        self.grpc_port = free_port()
        self.http_port = free_port()
        self.metrics_port = free_port()
        self.repository = self.data_dir / "triton" / "model_repository"
        self.trace_url = trace_url
        self.process = self._process()

    def _process(self) -> ManagedProcess:
        argv, env = tritonserver_command(
            self.repository,
            grpc_port=self.grpc_port,
            http_port=self.http_port,
            metrics_port=self.metrics_port,
            triton_env_dir=self.triton_env_dir,
            model_control="explicit",
        )
        if self.trace_url:
            argv = [*argv, *trace_arguments(self.trace_url)]
        return ManagedProcess(
            "triton", argv, env=env, log_path=self.data_dir / "logs" / "triton.log"
        )

    @property
    def grpc_url(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"

    @property
    def metrics_url(self) -> str:
        return f"http://127.0.0.1:{self.metrics_port}/metrics"

    def start(self) -> None:
        if not self.served_model.exists():
            raise FileNotFoundError(
                f"{self.served_model} is missing: run `make model` to prepare the served model"
            )
        for name, served in served_models(self.served_model).items():
            int8 = name == INT8_MODEL_NAME
            build_model_repository(
                self.repository,
                served,
                flavour="cpu",
                model_name=name,
                precision="int8" if int8 else "fp32",
                # Dynamic quantization scales per call: one image per network run keeps an
                # image's answer independent of the batch it shares.
                network_batch=1 if int8 else 0,
            )
        ready = f"http://127.0.0.1:{self.http_port}/v2/health/ready"
        # What a crashed predecessor on these ports left in /dev/shm (a restart's case).
        self.remove_shared_memory()
        for attempt in range(1, START_ATTEMPTS + 1):
            self.process = self._process()
            self.process.start()
            try:
                self.process.wait_ready(lambda: http_ok(ready), timeout=120)
                return
            except RuntimeError:
                aborted = self.process.returncode == -signal.SIGABRT
                self.remove_shared_memory()
                if not aborted or attempt == START_ATTEMPTS:
                    raise
                logger.warning(
                    "triton aborted during start-up (attempt %d); starting it again", attempt
                )

    def stop(self) -> None:
        self.process.stop()
        self.remove_shared_memory()

    def kill(self) -> None:
        """SIGKILL, as a crash would (fault-injection tests); its shared memory is removed
        after it, as a restarted pod's /dev/shm is new."""
        self.process.kill()
        self.remove_shared_memory()

    def kill_backend_stub(self, model: str) -> int:
        """SIGKILL the Python backend's stub process that serves `model`, as a crash of that
        process alone would (Triton's issue 8882 is one): Triton lives on and says it is
        healthy. The stub's pid."""
        folder = f"{self.repository}/{model}/"
        for child in psutil.Process(self.process.pid).children(recursive=True):
            try:
                command = child.cmdline()
            except psutil.Error:
                continue  # gone, or a killed stub Triton has not reaped (a zombie)
            if (
                command
                and command[0].endswith("triton_python_backend_stub")
                and any(part.startswith(folder) for part in command[1:])
            ):
                child.send_signal(signal.SIGKILL)
                return child.pid
        raise LookupError(f"no backend stub of {model!r} runs under this Triton")

    def remove_shared_memory(self) -> None:
        """The Python backend's regions that this server left in /dev/shm: a server that
        ends normally removes its own, one that crashed or was killed does not, and each holds
        megabytes of a memory-backed file system until the machine restarts."""
        if self.process.running():
            return
        for region in SHARED_MEMORY_DIR.glob(f"{python_backend_shm_prefix(self.grpc_port)}*"):
            region.unlink(missing_ok=True)
