"""The encoded-image contract on a GPU box: Triton with JPEGs in, and the detection service's
Detector path in front of it, under load from several processes (`bench/gpu.sh` runs it).

Why several load processes: one asyncio process tops out near 1-2 k requests/s of gRPC, under
what a GPU serves; each point splits its concurrency over `--processes` processes, each with
its own event loop and channel, and the point's throughput is the sum.

Stages:
- `parity`: every image through Triton (GPU pipeline) against the CPU pipeline (OpenCV,
  ONNX Runtime, numpy NMS) on the same served graph: matched boxes IoU >= 0.9, confidence
  within 0.03, as make test requires of the CPU path against the reference.
- `triton_encoded`: one JPEG per request straight to Triton; Triton's dynamic batcher forms
  the batches. nvidia-smi's utilisation is sampled during each point.
- `detect_encoded`: `--processes` serving processes, each a `Detector` as detection-service
  builds it (header checks, micro-batcher, Triton client), its callers in process. Left out:
  the service's own gRPC server and identity check.
- `service` and `stream`: detection-service itself, as its realtime role
  (`objectvision-detection-realtime`, ADR 0019) with `--service-processes` serving processes
  behind one port, called over gRPC with a signed principal: `Detect` (store=false, one
  image per call) and `DetectStream` (one stream per caller, one frame in flight).

    python3 -m bench.gpu_encoded --model yolov8n.onnx --images DIR --server-site DIR \\
        --out DIR [--concurrency 1,8,32,64,128,256] [--processes 8] [--service-processes 6]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import multiprocessing
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from objectvision_inference.detect_contract import box_iou
from objectvision_inference.prepare_model import prepare_model
from objectvision_inference.triton import (
    LOOPBACK,
    MODEL_NAME,
    build_model_repository,
    tritonserver_command,
    wait_until_ready,
)

logger = logging.getLogger("bench")


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])


class ChildServer:
    """A server started in its own session (stopped with everything it spawned), its output
    in a log file."""

    def __init__(self, log: Path) -> None:
        self.log = log
        self.process: subprocess.Popen[bytes] | None = None

    def launch(self, argv: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
        with self.log.open("wb") as sink:
            self.process = subprocess.Popen(
                argv, env=env, stdout=sink, stderr=subprocess.STDOUT, start_new_session=True
            )
        return self.process

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


class TritonProcess(ChildServer):
    """tritonserver with the gpu flavour."""

    def __init__(self, args: argparse.Namespace, work: Path, *, instances: int = 1) -> None:
        super().__init__(work / "tritonserver.log")
        self.served = prepare_model(args.model, work / "yolov8n_served.onnx")
        repo = build_model_repository(
            work / "repository",
            self.served,
            flavour="gpu",
            max_batch=args.max_batch,
            instance_count=instances,
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

    @property
    def url(self) -> str:
        return f"{LOOPBACK}:{self.grpc_port}"

    def start(self, timeout_s: float) -> int:
        """Start and wait until the model is ready (weights loaded, graphs captured)."""
        process = self.launch(self.argv, self.env)
        wait_until_ready(self.http_port, timeout_s=timeout_s, process=process)
        return process.pid


# Signs the bench's own calls to the loopback service it started; nothing else trusts it.
BENCH_SECRET = "gpu-bench-service-secret"  # noqa: S105 - a loopback test secret


class RealtimeService(ChildServer):
    """detection-service's realtime role as its console script runs it, in front of Triton."""

    def __init__(self, triton_url: str, served: Path, work: Path, *, processes: int) -> None:
        super().__init__(work / "detection-realtime.log")
        self.port, self.metrics_port = _free_port(), _free_port()
        self.env = {
            **os.environ,
            "TRITON_URL": triton_url,
            "SERVED_MODEL_PATH": str(served),
            "SERVICE_TOKEN_SECRET": BENCH_SECRET,
            "BIND_HOST": LOOPBACK,
            "DETECTION_GRPC_PORT": str(self.port),
            "DETECTION_METRICS_PORT": str(self.metrics_port),
            "DETECTION_SERVING_PROCESSES": str(processes),
            "DETECT_MAX_BATCH": "32",
            "DETECT_MAX_INFLIGHT_BATCHES": "4",
            "DETECT_MAX_QUEUE": "4096",
            "INFERENCE_TIMEOUT_SECONDS": "30",
            "LOG_LEVEL": "WARNING",
        }

    @property
    def url(self) -> str:
        return f"{LOOPBACK}:{self.port}"

    def start(self, timeout_s: float) -> None:
        """Start and wait until it accepts connections: a serving process listens once its
        pipeline is built; each point's warm-up covers the others."""
        import grpc

        command = [
            sys.executable,
            "-c",
            "from detection_service.realtime.server import main; main()",
        ]
        process = self.launch(command, self.env)
        deadline = time.monotonic() + timeout_s
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"the realtime role exited: {self.tail(2000)}")
            try:
                with grpc.insecure_channel(self.url) as channel:
                    grpc.channel_ready_future(channel).result(timeout=1)
                    return
            except grpc.FutureTimeoutError:
                if time.monotonic() > deadline:
                    raise RuntimeError("the realtime role never accepted a connection") from None


def _images(folder: Path) -> list[tuple[str, bytes]]:
    found = sorted(
        p for p in folder.rglob("*") if p.suffix.lower() in {".jpg", ".jpeg", ".png", ".webp"}
    )
    return [(p.name, p.read_bytes()) for p in found]


def compare(reference: np.ndarray, served: np.ndarray) -> tuple[int, list[dict[str, Any]]]:
    """(matched, misses): reference rows with a same-class served row at IoU >= 0.9 and
    confidence within 0.03 (greedy, each served row used once), and for every other reference
    row what it was closest to, so a run on the device explains its misses (a low-confidence
    object that fell under the threshold, or a box that moved)."""
    used: set[int] = set()
    matched = 0
    misses: list[dict[str, Any]] = []
    for row in reference:
        overlaps = box_iou(row[:4], served[:, :4])
        for index, other in enumerate(served):
            if index in used or int(other[5]) != int(row[5]):
                continue
            if overlaps[index] >= 0.9 and abs(other[4] - row[4]) <= 0.03:
                used.add(index)
                matched += 1
                break
        else:
            same_class = [i for i in range(len(served)) if int(served[i, 5]) == int(row[5])]
            nearest = max(same_class, key=lambda i: overlaps[i], default=None)
            misses.append(
                {
                    "reference": [round(float(v), 3) for v in row],
                    "nearest_served": None
                    if nearest is None
                    else [round(float(v), 3) for v in served[nearest]],
                    "iou": None if nearest is None else round(float(overlaps[nearest]), 3),
                }
            )
    return matched, misses


def encoded_inputs(data: bytes) -> list[Any]:
    import tritonclient.grpc as grpcclient

    array = np.empty((1, 1), dtype=object)
    array[0, 0] = data
    tensor = grpcclient.InferInput("images", [1, 1], "BYTES")
    tensor.set_data_from_numpy(array)
    return [tensor]


def parity(url: str, served: Path, images: list[tuple[str, bytes]]) -> dict[str, Any]:
    """The GPU answers against the CPU pipeline's, per image."""
    import onnxruntime as ort
    import tritonclient.grpc as grpcclient

    from objectvision_inference import detect_contract as contract
    from objectvision_inference.cpu_pipeline import CpuPipeline

    session = ort.InferenceSession(str(served), providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    cpu = CpuPipeline(lambda batch: session.run(None, {name: batch})[0], max_pixels=40_000_000)
    client = grpcclient.InferenceServerClient(url)
    matched = total = served_total = 0
    per_image = {}
    for filename, data in images:
        (reference,), _ = cpu([data], [contract.ImageOptions()], [None])
        result = client.infer("yolov8n", encoded_inputs(data))
        (answer,) = contract.unpack({n: result.as_numpy(n) for n in contract.OUTPUTS})
        hit, misses = compare(reference.rows, answer.rows)
        count = len(reference.rows)
        matched, total, served_total = matched + hit, total + count, served_total + len(answer.rows)
        per_image[filename] = {
            "reference": count,
            "served": len(answer.rows),
            "matched": hit,
            "misses": misses,
        }
    return {
        "matched": matched,
        "reference_objects": total,
        "served_objects": served_total,
        "recall": round(matched / total, 4) if total else None,
        "per_image": per_image,
    }


# Triton's per-model counters (statistics extension) whose difference over a point says
# where a request's time went inside the server.
_TRITON_DURATIONS = ("success", "queue", "compute_input", "compute_infer", "compute_output")


def triton_counters(url: str, model: str = "yolov8n") -> dict[str, int]:
    """The model's cumulative counters, summed over its versions: requests, executions
    (batches Triton ran), images, and the nanoseconds spent per phase."""
    import tritonclient.grpc as grpcclient

    client = grpcclient.InferenceServerClient(url)
    try:
        answer = client.get_inference_statistics(model_name=model, as_json=True)
    finally:
        client.close()
    counters = dict.fromkeys(("requests", "executions", "images"), 0)
    for stats in answer.get("model_stats", []):
        counters["executions"] += int(stats.get("execution_count", 0))
        counters["images"] += int(stats.get("inference_count", 0))
        phases = stats.get("inference_stats", {})
        counters["requests"] += int(phases.get("success", {}).get("count", 0))
        for phase in _TRITON_DURATIONS:
            key = f"{phase}_ns"
            counters[key] = counters.get(key, 0) + int(phases.get(phase, {}).get("ns", 0))
    return counters


def triton_breakdown(before: dict[str, int], after: dict[str, int]) -> dict[str, Any]:
    """What Triton did between two readings: requests and batches, images per batch, and per
    request the milliseconds in the server, in its queue, and in the model's input, compute
    and output phases (warm-up included: ratios, not counts, are what to read)."""
    delta = {key: after.get(key, 0) - before.get(key, 0) for key in after}
    requests, executions = delta["requests"], delta["executions"]
    per_request = {
        f"{'request' if phase == 'success' else phase}_ms": round(
            delta[f"{phase}_ns"] / requests / 1e6, 3
        )
        if requests
        else None
        for phase in _TRITON_DURATIONS
    }
    return {
        "requests": requests,
        "executions": executions,
        "images_per_execution": round(delta["images"] / executions, 2) if executions else None,
        **per_request,
    }


class GpuSampler:
    """nvidia-smi utilisation.gpu every 200 ms while a point runs."""

    def __init__(self) -> None:
        self.samples: list[float] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> GpuSampler:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                out = subprocess.run(
                    ["nvidia-smi", "--query-gpu=utilization.gpu", "--format=csv,noheader,nounits"],
                    capture_output=True,
                    text=True,
                    timeout=2,
                )
                self.samples.append(float(out.stdout.split()[0]))
            except (OSError, ValueError, IndexError, subprocess.TimeoutExpired):
                return
            self._stop.wait(0.2)

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=3)

    @property
    def mean(self) -> float | None:
        return round(sum(self.samples) / len(self.samples), 1) if self.samples else None


@dataclass(frozen=True)
class LoadPlan:
    """What one load process runs: `concurrency` closed loops of `mode` calls."""

    mode: str
    url: str
    served: str
    images: list[bytes]
    concurrency: int
    warmup_s: float
    measure_s: float


def _load_process(plan: LoadPlan, queue: Any) -> None:
    """One load process: the plan's closed loops for warmup + measure seconds."""
    asyncio.run(_load(plan, queue))


async def _load(plan: LoadPlan, queue: Any) -> None:
    mode, url, served, images = plan.mode, plan.url, plan.served, plan.images
    concurrency, warmup_s, measure_s = plan.concurrency, plan.warmup_s, plan.measure_s
    from tritonclient.grpc.aio import InferenceServerClient

    latencies: list[float] = []
    errors: list[str] = []
    started = time.perf_counter()
    measure_from = started + warmup_s
    stop_at = measure_from + measure_s
    sent_bytes = 0
    stages: list[list[float]] = []
    send: Any
    cleanup: list[Any] = []
    if mode == "triton":
        client = InferenceServerClient(url)
        cleanup.append(client.close)

        async def send(caller: int, data: bytes) -> None:
            result = await client.infer("yolov8n", encoded_inputs(data))
            stage = result.as_numpy("stage_ms")
            if stage is not None:
                stages.append(stage.reshape(-1)[:3].tolist())

    elif mode in ("service", "stream"):
        send, close = _service_sender(mode, url)
        cleanup.append(close)
    else:
        from prometheus_client import CollectorRegistry

        from detection_service.metrics import DetectionMetrics
        from detection_service.pipeline.annotation_sandbox import SandboxedAnnotator
        from detection_service.pipeline.batcher import ModelBatchers
        from detection_service.pipeline.catalog import ModelCatalog
        from detection_service.pipeline.classes import load_class_names
        from detection_service.pipeline.decode import ImageLimits
        from detection_service.pipeline.detector import Detector
        from detection_service.pipeline.triton import TritonModel
        from detection_service.pipeline.types import DetectionOptions
        from detection_service.sandbox.limits import SandboxLimits

        executor = ThreadPoolExecutor(2)
        names = load_class_names(Path(served))
        batchers = ModelBatchers(
            lambda name: TritonModel(url, model_name=name),
            executor=executor,
            metrics=DetectionMetrics.create(CollectorRegistry()),
            max_batch=16,
            max_delay_s=0.0,
            request_timeout_s=30.0,
            max_inflight_batches=4,
            max_queue=4096,
        )
        catalog = ModelCatalog(url, default_model="yolov8n")
        options = DetectionOptions(confidence=0.25, iou=0.7, max_detections=300)
        limits = ImageLimits(20 * 1024 * 1024, 40_000_000)
        detector = Detector(
            batchers=batchers,
            catalog=catalog,
            executor=executor,
            # Never used here: it starts no child unless an image is annotated.
            annotator=SandboxedAnnotator(
                limits=SandboxLimits(memory_bytes=2**30, cpu_seconds=None),
                images=limits,
                workers=1,
                timeout_s=10.0,
            ),
            class_names=names,
            limits=limits,
            defaults=options,
            inference_timeout_s=30.0,
        )
        batchers.start()
        cleanup += [batchers.stop, batchers.close, catalog.close]
        served_model = await detector.resolve(None)

        async def send(caller: int, data: bytes) -> None:
            await detector.detect(data, options, user_id=f"caller-{caller}", model=served_model)

    async def loop(index: int) -> None:
        nonlocal sent_bytes
        position = index
        while (now := time.perf_counter()) < stop_at:
            data = images[position % len(images)]
            position += 1
            try:
                await send(index, data)
            except Exception as error:
                if now >= measure_from:
                    errors.append(f"{type(error).__name__}: {error}"[:200])
                continue
            if now >= measure_from:
                latencies.append(time.perf_counter() - now)
                sent_bytes += len(data)

    await asyncio.gather(*(loop(i) for i in range(concurrency)))
    for close in cleanup:
        await close()
    queue.put(
        {
            "latencies": latencies,
            "errors": errors[:5],
            "error_count": len(errors),
            "stages": stages[-2000:],
            "sent_bytes": sent_bytes,
        }
    )


def _service_sender(mode: str, url: str) -> tuple[Any, Any]:
    """(send, close) for detection-service's gRPC API: `service`, one Detect per image;
    `stream`, one DetectStream per caller with one frame in flight. A frame's error fails it."""
    import grpc

    from objectvision.v1 import common_pb2, detection_pb2, detection_pb2_grpc
    from objectvision_common.identity import principal_metadata

    channel = grpc.aio.insecure_channel(url)
    stub = detection_pb2_grpc.DetectionServiceStub(channel)
    metadata = principal_metadata(
        common_pb2.Principal(user_id="gpu-bench", auth_method="api_key"), secret=BENCH_SECRET
    )
    streams: dict[int, Any] = {}
    sent: dict[int, int] = {}

    def image(data: bytes) -> detection_pb2.ImageInput:
        return detection_pb2.ImageInput(data=data, filename="image.jpg")

    async def detect(caller: int, data: bytes) -> None:
        await stub.Detect(
            detection_pb2.DetectRequest(images=[image(data)], store=False),
            metadata=metadata,
            timeout=30,
        )

    async def frame(caller: int, data: bytes) -> None:
        if caller not in streams:
            streams[caller] = stub.DetectStream(metadata=metadata)
        call = streams[caller]
        sequence = sent[caller] = sent.get(caller, 0) + 1
        await call.write(detection_pb2.Frame(sequence=sequence, image=image(data)))
        reply = await call.read()
        if reply is grpc.aio.EOF or reply.error or reply.sequence != sequence:
            raise RuntimeError(f"stream frame {sequence} failed: {reply}"[:200])

    async def close() -> None:
        for call in streams.values():
            call.cancel()
        await channel.close()

    return (detect if mode == "service" else frame), close


def measure_point(
    mode: str,
    url: str,
    served: Path,
    images: list[bytes],
    concurrency: int,
    processes: int,
    warmup_s: float,
    measure_s: float,
) -> dict[str, Any]:
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    count = max(1, min(processes, concurrency))
    shares = [concurrency // count + (1 if i < concurrency % count else 0) for i in range(count)]
    workers = [
        context.Process(
            target=_load_process,
            args=(LoadPlan(mode, url, str(served), images, share, warmup_s, measure_s), queue),
        )
        for share in shares
    ]
    for worker in workers:
        worker.start()
    with GpuSampler() as sampler:
        results = [queue.get(timeout=warmup_s + measure_s + 120) for _ in workers]
    for worker in workers:
        worker.join(timeout=30)
    latencies = np.sort(np.concatenate([np.asarray(r["latencies"]) for r in results]))
    done = len(latencies)
    stages = [row for r in results for row in r["stages"]]
    stage_means = np.asarray(stages).mean(axis=0).round(2).tolist() if stages else None
    return {
        "stage": mode,
        "concurrency": concurrency,
        "processes": count,
        "images": done,
        "throughput_ips": round(done / measure_s, 1),
        "p50_ms": round(float(np.percentile(latencies, 50)) * 1e3, 2) if done else None,
        "p99_ms": round(float(np.percentile(latencies, 99)) * 1e3, 2) if done else None,
        "errors": sum(r["error_count"] for r in results),
        "error_examples": [e for r in results for e in r["errors"]][:3],
        "gpu_busy_percent": sampler.mean,
        # Per image, the batch it ran in inside Triton: decode + letterbox, network, NMS (ms).
        "triton_stage_ms": stage_means,
        "image_bytes_sent": sum(r["sent_bytes"] for r in results),
    }


def raw_device(model: Path, batches: list[int], seconds: float) -> list[dict[str, Any]]:
    """The network alone on device-resident input: CUDA graph, fp16, per batch size; the
    ceiling the encoded pipeline is compared with (no decode, no host copies)."""
    import torch

    from objectvision_inference import torch_yolo

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    half = device.type == "cuda"
    served = torch_yolo.load_served_model(model, device=device, half=half)
    runner = torch_yolo.BatchRunner(served, batches)
    points = []
    for batch in batches:
        images = torch.randint(0, 255, (batch, 640, 640, 3), dtype=torch.uint8, device=device)
        runner.run_on_device(images)
        if device.type == "cuda":
            torch.cuda.synchronize()
        runs = 0
        started = time.perf_counter()
        while time.perf_counter() - started < seconds:
            runner.run_on_device(images)
            runs += 1
            if device.type == "cuda" and runs % 8 == 0:
                torch.cuda.synchronize()
        if device.type == "cuda":
            torch.cuda.synchronize()
        elapsed = time.perf_counter() - started
        points.append(
            {
                "batch": batch,
                "images_per_s": round(runs * batch / elapsed, 1),
                "ms_per_batch": round(elapsed / runs * 1e3, 3),
            }
        )
    del runner, served
    if device.type == "cuda":
        torch.cuda.empty_cache()
    return points


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.gpu_encoded")
    parser.add_argument("--model", type=Path, required=True)
    parser.add_argument("--images", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--server-site", type=Path)
    parser.add_argument("--stub-env", type=Path, default=Path(sys.prefix))
    parser.add_argument("--concurrency", default="1,8,32,64,128,256")
    parser.add_argument("--detect-concurrency", default="1,64,256")
    parser.add_argument("--service-concurrency", default="1,64,256")
    parser.add_argument(
        "--service-processes", type=int, default=6, help="the realtime role's serving processes"
    )
    parser.add_argument("--processes", type=int, default=8)
    parser.add_argument(
        "--instances", default="4", help="Triton model instances; several (4,8) run in turn"
    )
    parser.add_argument("--max-batch", type=int, default=64)
    parser.add_argument("--warmup-s", type=float, default=2.0)
    parser.add_argument("--measure-s", type=float, default=5.0)
    parser.add_argument("--instance-kind", choices=["gpu", "cpu"], default="gpu")
    parser.add_argument("--stages", default="raw,parity,triton,detect,service")
    parser.add_argument("--raw-batches", default="1,8,32,64,128")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")

    from bench.gpu import device_info

    images = _images(args.images)
    jpegs = [data for name, data in images if name.lower().endswith((".jpg", ".jpeg"))]
    document: dict[str, Any] = {
        "kind": "gpu_encoded",
        "started_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "device": device_info(),
        "config": {k: str(v) for k, v in vars(args).items()},
        "mean_jpeg_bytes": round(sum(map(len, jpegs)) / len(jpegs)),
        "points": [],
        "problems": [],
    }
    stages = args.stages.split(",")
    if "raw" in stages:
        batches = [int(b) for b in args.raw_batches.split(",")]
        document["raw_device"] = raw_device(
            args.model, batches, 1.0 if args.instance_kind == "cpu" else 3.0
        )
        logger.info("raw (device-resident input): %s", document["raw_device"])
    counts = [int(n) for n in str(args.instances).split(",")]
    for position, instances in enumerate(counts):
        last = position == len(counts) - 1
        plan = []
        if "triton" in stages:
            plan += [("triton", int(c)) for c in args.concurrency.split(",")]
        if "detect" in stages and last:
            plan += [("detect", int(c)) for c in args.detect_concurrency.split(",")]
        serve = "service" in stages and last
        if serve:
            plan += [
                (mode, int(c))
                for mode in ("service", "stream")
                for c in args.service_concurrency.split(",")
            ]
        with tempfile.TemporaryDirectory(prefix="objectvision-gpu-encoded-") as tmp:
            triton = TritonProcess(args, Path(tmp), instances=instances)
            service = (
                RealtimeService(
                    triton.url, triton.served, Path(tmp), processes=args.service_processes
                )
                if serve
                else None
            )
            try:
                started = time.perf_counter()
                triton.start(300)
                ready_s = round(time.perf_counter() - started, 1)
                document.setdefault("triton_ready_s", {})[str(instances)] = ready_s
                logger.info("triton with %d instances ready in %.1f s", instances, ready_s)
                if "parity" in stages and position == 0:
                    document["parity"] = parity(triton.url, triton.served, images)
                    summary = {k: v for k, v in document["parity"].items() if k != "per_image"}
                    logger.info("parity: %s", summary)
                if service is not None:
                    started = time.perf_counter()
                    service.start(180)
                    document["service_ready_s"] = round(time.perf_counter() - started, 1)
                for mode, concurrency in plan:
                    through_service = service is not None and mode in ("service", "stream")
                    counted = triton_counters(triton.url)
                    point = measure_point(
                        mode,
                        service.url if service is not None and through_service else triton.url,
                        triton.served,
                        jpegs,
                        concurrency,
                        args.processes,
                        args.warmup_s,
                        args.measure_s,
                    )
                    point["triton_instances"] = instances
                    point["triton_server"] = triton_breakdown(counted, triton_counters(triton.url))
                    document["points"].append(point)
                    logger.info("%s", json.dumps(point))
            except Exception as error:
                logger.exception("gpu_encoded failed")
                document["problems"].append(repr(error)[:400])
                document["triton_log_tail"] = triton.tail()
                if service is not None:
                    document["service_log_tail"] = service.tail()
            finally:
                if service is not None:
                    service.stop()
                triton.stop()
    args.out.mkdir(parents=True, exist_ok=True)
    stamp = document["started_at"].replace(":", "").replace("-", "")
    path = args.out / f"gpu-encoded-{stamp}.json"
    path.write_text(json.dumps(document, indent=2) + "\n")
    for raw in document.get("raw_device", []):
        print(f"raw b={raw['batch']:>4} {raw['images_per_s']:>9} img/s {raw['ms_per_batch']} ms")
    print(f"{'stage':<8} {'inst':>4} {'c':>4} {'img/s':>9} {'p50':>8} {'p99':>8} {'gpu%':>5} err")
    for p in document["points"]:
        print(
            f"{p['stage']:<8} {p['triton_instances']:>4} {p['concurrency']:>4}"
            f" {p['throughput_ips']:>9} {p['p50_ms']!s:>8}"
            f" {p['p99_ms']!s:>8} {p['gpu_busy_percent']!s:>5} {p['errors']} {p['triton_stage_ms']}"
            f" {p.get('triton_server')}"
        )
    if "parity" in document:
        print("parity:", {k: v for k, v in document["parity"].items() if k != "per_image"})
    for problem in document["problems"]:
        print("PROBLEM:", problem)
    print(f"wrote {path}")
    return 1 if document["problems"] else 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    raise SystemExit(main())
