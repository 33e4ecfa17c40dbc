"""The serving stages on a GPU box: Triton's GPU flavour, and the detection service's inference
path in front of it, each under the closed-loop load generator (`bench/gpu.sh` runs it).

Why this shape: the GPU box has no network, no PostgreSQL or Redis and none of the services'
web dependencies, so the full stack of `python -m bench` cannot start there. What can:

- `triton`: tritonserver from the nvidia-pytriton wheel (unpacked from what gpu.sh carries)
  serving the `gpu` flavour (native PyTorch YOLOv8n, fp16, CUDA graphs) in this machine's own
  torch Python; measured by `bench.stages.triton`, the same code as the CPU benchmark.
- `detect_inproc`: `detection_service.Detector` as the service builds it (decode pool,
  MicroBatcher, Triton gRPC client, NMS) driven in this process, one image per call, as its
  `Detect` handler drives it. Left out: the service's own gRPC server and identity check, which
  cost ~5-7 ms of CPU per image on the 2-core development machine (ADR 0008).

Both stages must find the bus in bus.jpg before they are timed.

    python3 -m bench.gpu_serving --model yolov8n.onnx --images IMAGES \\
        --server-site DIR_WITH_PYTRITON --out DIR [--concurrency 1,8,32,64,128]
"""

import argparse
import asyncio
import contextlib
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import tempfile
from collections.abc import AsyncIterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry
from tritonclient.grpc.aio import InferenceServerClient

from bench.config import BenchConfig
from bench.cpu import CpuMeter
from bench.gpu import device_info
from bench.images import Image, load_images
from bench.loadgen import RequestError, Send
from bench.records import LOADGEN
from bench.stages import Budget, StageContext
from bench.stages import triton as triton_stage
from detection_service.detector import Detector
from detection_service.imaging.decode import ImageLimits
from detection_service.inference.batcher import MicroBatcher
from detection_service.inference.classes import load_class_names
from detection_service.inference.triton import TritonModel
from detection_service.metrics import DetectionMetrics
from detection_service.postprocess import DetectionOptions
from objectvision_inference.prepare_model import prepare_model
from objectvision_inference.triton import (
    LOOPBACK,
    MODEL_NAME,
    build_model_repository,
    tritonserver_command,
    wait_until_ready,
)

logger = logging.getLogger("bench")

DETECT = "detect_inproc"
TRITON_PROCESS = "triton"
# The detection service's defaults (detection_service/config.py), so the in-process path is
# batched as the deployed service batches: not imported, it needs pydantic-settings.
SERVICE_DEFAULTS = {
    "detect_max_batch": 16,
    "detect_max_delay_ms": 0.0,
    "detect_max_inflight_batches": 2,
    "detect_max_queue": 512,
    "decode_workers": min(4, os.cpu_count() or 1),
    "inference_timeout_s": 10.0,
}
_SERVICE_SERIES = ("detection_batch_size", "detection_queue_wait_seconds")


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])


class TritonProcess:
    """tritonserver with the gpu flavour, started in its own session, its log in a file."""

    def __init__(self, args: argparse.Namespace, work: Path) -> None:
        self.served = prepare_model(args.model, work / "yolov8n_served.onnx")
        repo = build_model_repository(
            work / "repository", self.served, flavour="gpu", max_batch=args.max_batch
        )
        if args.instance_kind == "cpu":
            # Dry run without a GPU: the same model.py on the CPU, in fp32 (fp16 is slow there).
            config = repo / MODEL_NAME / "config.pbtxt"
            fp16 = '"fp16" value: { string_value: "%s" }'
            text = config.read_text().replace("kind: KIND_GPU", "kind: KIND_CPU")
            config.write_text(text.replace(fp16 % "1", fp16 % "0"))
        self.grpc_port, self.http_port, metrics_port = _free_port(), _free_port(), _free_port()
        self.argv, self.env = tritonserver_command(
            repo,
            grpc_port=self.grpc_port,
            http_port=self.http_port,
            metrics_port=metrics_port,
            triton_env_dir=args.stub_env,
            server_site=args.server_site,
        )
        self.log = work / "tritonserver.log"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"{LOOPBACK}:{self.grpc_port}"

    def start(self, timeout_s: float) -> int:
        """Start and wait until the model is ready (weights loaded, graphs captured)."""
        with self.log.open("wb") as sink:
            self.process = subprocess.Popen(
                self.argv,
                env=self.env,
                stdout=sink,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        wait_until_ready(self.http_port, timeout_s=timeout_s, process=self.process)
        return self.process.pid

    def stop(self) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=30)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)

    def tail(self, chars: int = 6000) -> str:
        return self.log.read_text(errors="replace")[-chars:] if self.log.exists() else ""


def _service_counters(registry: CollectorRegistry) -> dict[str, float]:
    """The service's batch-size and queue histograms (sums and counts), read in process."""
    counters: dict[str, float] = {}
    for family in registry.collect():
        if family.name in _SERVICE_SERIES:
            for sample in family.samples:
                if sample.name.endswith(("_sum", "_count")):
                    counters[sample.name] = counters.get(sample.name, 0.0) + sample.value
    return counters


def _describe(change: dict[str, float]) -> dict[str, Any]:
    """Mean batch the service sent and mean queue wait per frame, plus Triton's view."""
    batches = change.get("detection_batch_size_count", 0.0)
    frames = change.get("detection_queue_wait_seconds_count", 0.0)
    triton_change = {
        k.removeprefix("triton."): v for k, v in change.items() if k.startswith("triton.")
    }
    return {
        "service_mean_batch": round(change.get("detection_batch_size_sum", 0.0) / batches, 2)
        if batches
        else None,
        "service_queue_ms": round(
            1000 * change.get("detection_queue_wait_seconds_sum", 0.0) / frames, 2
        )
        if frames
        else None,
        **triton_stage.describe(triton_change),
    }


async def detect_inproc(
    ctx: StageContext, *, url: str, served: Path, settings: dict[str, Any]
) -> None:
    """The detection service's Detector in this process against Triton, one image per call."""
    registry = CollectorRegistry()
    model = TritonModel(url, model_name=triton_stage.MODEL)
    executor = ThreadPoolExecutor(settings["decode_workers"], thread_name_prefix="detect-cpu")
    batcher = MicroBatcher(
        model,
        executor=executor,
        metrics=DetectionMetrics.create(registry),
        max_batch=settings["detect_max_batch"],
        max_delay_s=settings["detect_max_delay_ms"] / 1000,
        request_timeout_s=settings["inference_timeout_s"],
        max_inflight_batches=settings["detect_max_inflight_batches"],
        max_queue=settings["detect_max_queue"],
    )
    options = DetectionOptions(confidence=0.25, iou=0.7, max_detections=300)
    detector = Detector(
        batcher=batcher,
        executor=executor,
        class_names=load_class_names(served),
        limits=ImageLimits(20 * 1024 * 1024, 40_000_000),
        defaults=options,
        inference_timeout_s=settings["inference_timeout_s"],
    )
    batcher.start()
    try:
        bus = next((i for i in ctx.images if i.name == "bus.jpg"), ctx.images[0])
        found = await detector.detect(bus.data, options)
        names = {detector.class_names[o.class_id] for o in found.objects}
        if bus.name == "bus.jpg" and "bus" not in names:
            raise RuntimeError(f"the detection path finds no bus in bus.jpg: {sorted(names)}")

        def factory(index: int) -> contextlib.AbstractAsyncContextManager[Send]:
            return _detect_worker(detector, ctx.images, options, index)

        async with InferenceServerClient(url) as client:

            async def probe() -> dict[str, float]:
                server = await triton_stage.statistics(client)
                return {
                    **_service_counters(registry),
                    **{f"triton.{k}": v for k, v in server.items()},
                }

            for concurrency in ctx.config.concurrencies_for(DETECT):
                await ctx.measure(
                    DETECT,
                    concurrency,
                    factory,
                    involved=[LOADGEN, TRITON_PROCESS],
                    probe=probe,
                    derive=_describe,
                )
    finally:
        await batcher.stop()
        await model.close()
        executor.shutdown(wait=False, cancel_futures=True)


@contextlib.asynccontextmanager
async def _detect_worker(
    detector: Detector, images: Sequence[Image], options: DetectionOptions, index: int
) -> AsyncIterator[Send]:
    position = index % len(images)

    async def send() -> int:
        nonlocal position
        image = images[position]
        position = (position + 1) % len(images)
        try:
            await detector.detect(image.data, options)
        except RequestError:
            raise
        except Exception as error:
            raise RequestError(type(error).__name__, str(error)[:200]) from None
        return 1

    yield send


def _config(args: argparse.Namespace, served: Path) -> BenchConfig:
    return BenchConfig.preset(quick=False).with_overrides(
        stages=("triton", DETECT),
        concurrencies=tuple(args.concurrency),
        warmup_s=args.warmup_s,
        measure_s=args.measure_s,
        max_requests=args.max_requests,
        budget_s=args.budget_s,
        model=args.model,
        served_model=served,
        images=args.images,
        out_dir=args.out,
    )


async def measure(args: argparse.Namespace) -> dict[str, Any]:
    """Start Triton, measure both stages, stop Triton; the result document (not yet written)."""
    started = datetime.now(UTC)
    meter = CpuMeter()
    meter.add(LOADGEN, os.getpid(), tree=False)
    images = load_images(args.images)
    problems: list[str] = []
    points: list[dict[str, Any]] = []
    skipped: list[dict[str, Any]] = []
    notes: list[str] = []
    with tempfile.TemporaryDirectory(prefix="objectvision-gpu-serving-") as tmp:
        triton = TritonProcess(args, Path(tmp))
        try:
            try:
                pid = await asyncio.to_thread(triton.start, args.start_timeout_s)
            except (RuntimeError, TimeoutError) as error:
                problems.append(f"tritonserver did not become ready: {error}")
                notes.append(triton.tail())
                raise _Abort from error
            meter.add(TRITON_PROCESS, pid)
            ctx = StageContext(
                config=_config(args, triton.served),
                images=images,
                meter=meter,
                budget=Budget(args.budget_s),
            )
            for stage, work in (
                ("triton", lambda: triton_stage.run(ctx, url=triton.url, involved=["triton"])),
                (
                    DETECT,
                    lambda: detect_inproc(
                        ctx, url=triton.url, served=triton.served, settings=args.service
                    ),
                ),
            ):
                if stage not in args.stages:
                    continue
                try:
                    await work()
                except Exception as error:
                    logger.exception("stage %s failed", stage)
                    problems.append(f"{stage}: {error!r}"[:400])
            if triton.process is not None and triton.process.poll() is not None:
                problems.append(f"tritonserver exited with {triton.process.returncode}")
            points = [point.to_json() for point in ctx.points]
            skipped = [skip.to_json() for skip in ctx.skipped]
            notes += ctx.notes
            if problems:
                notes.append(triton.tail())
        except _Abort:
            pass
        finally:
            await asyncio.to_thread(triton.stop)
    return {
        "schema_version": 1,
        "kind": "gpu_serving",
        "started_at": started.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "device": device_info(),
        "config": {
            "stages": list(args.stages),
            "concurrencies": list(args.concurrency),
            "warmup_s": args.warmup_s,
            "measure_s": args.measure_s,
            "max_requests": args.max_requests,
            "triton_max_batch": args.max_batch,
            "service": args.service,
            "image_count": len(images),
        },
        "points": points,
        "skipped": skipped,
        "notes": notes,
        "problems": problems,
    }


class _Abort(Exception):
    """Triton never came up: nothing to measure, the document says why."""


def _ints(text: str) -> list[int]:
    return [int(part) for part in text.split(",") if part.strip()]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.gpu_serving", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--model", type=Path, required=True, help="plain yolov8n.onnx")
    parser.add_argument("--images", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True, help="folder for the result JSON")
    parser.add_argument(
        "--server-site",
        type=Path,
        help="folder with the nvidia-pytriton wheel's pytriton/ and nvidia_pytriton.libs/",
    )
    parser.add_argument(
        "--stub-env",
        type=Path,
        default=Path(sys.prefix),
        help="venv whose Python runs the model (torch with CUDA): this interpreter's",
    )
    parser.add_argument("--stages", default=f"triton,{DETECT}", type=lambda t: t.split(","))
    parser.add_argument("--concurrency", type=_ints, default=[1, 8, 32, 64, 128])
    parser.add_argument("--max-batch", type=int, default=64, help="Triton's max_batch_size")
    parser.add_argument("--warmup-s", type=float, default=2.0)
    parser.add_argument("--measure-s", type=float, default=8.0)
    parser.add_argument("--max-requests", type=int, default=200_000)
    parser.add_argument("--budget-s", type=float, default=300.0, help="for all points together")
    parser.add_argument("--start-timeout-s", type=float, default=300.0)
    parser.add_argument(
        "--instance-kind",
        choices=["gpu", "cpu"],
        default="gpu",
        help="cpu: a dry run of the harness without a GPU (KIND_CPU, fp32)",
    )
    defaults = SERVICE_DEFAULTS
    parser.add_argument("--decode-workers", type=int, default=defaults["decode_workers"])
    parser.add_argument("--detect-max-batch", type=int, default=defaults["detect_max_batch"])
    args = parser.parse_args(argv)
    args.service = {
        **SERVICE_DEFAULTS,
        "decode_workers": args.decode_workers,
        "detect_max_batch": args.detect_max_batch,
    }
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(name)s %(message)s", datefmt="%H:%M:%S"
    )
    document = asyncio.run(measure(args))
    args.out.mkdir(parents=True, exist_ok=True)
    stamp = document["started_at"].replace(":", "").replace("-", "")
    path = args.out / f"gpu-serving-{stamp}.json"
    path.write_text(json.dumps(document, indent=2) + "\n")
    for point in document["points"]:
        print(
            f"{point['stage']:<14} c={point['concurrency']:>4}: {point['throughput_ips']:>8.1f}"
            f" img/s  p50 {point['latency_ms']['p50']:.1f} ms  errors {point['errors']}"
            f"  triton mean batch {point.get('extra', {}).get('triton_mean_batch')}"
        )
    for problem in document["problems"]:
        print(f"PROBLEM: {problem}")
    print(f"wrote {path}")
    return 1 if document["problems"] or not document["points"] else 0


if __name__ == "__main__":
    raise SystemExit(main())
