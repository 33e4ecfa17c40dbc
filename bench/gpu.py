"""The raw-model stage on a GPU: the native PyTorch YOLOv8n in fp16 (`bench/gpu.sh` runs it).

Why: on the 2-core development machine the model is the bottleneck and batching barely
helps, so the serving targets (batching >= 1.5x the naive design) can only be judged where
batching pays: on a GPU. This measures the ceiling there, as stage 1 does on the CPU:

- `gpu_model`: letterboxed uint8 batches copied to the GPU, fp16 forward, synchronised: what
  an inference server's GPU can do at each batch size.
- `gpu_pipeline`: JPEG decode + letterbox on a CPU thread pool, copy, forward, NMS on the
  CPU: the whole in-process path, decode overlapped with the GPU.

The model is `objectvision_inference.torch_yolo.ServedModel` (weights from the same ONNX file;
the served graph's contract: uint8 NHWC in, top-1024 rows out) in channels_last fp16, in two
modes, each point labelled with its `mode`:

- `eager`: one Python call per batch (~250 kernel launches from Python);
- `graph`: one CUDA graph per measured batch size, captured once and replayed.

PyTorch is imported lazily so the rest of this module (and its tests) run without it.

    python3 -m bench.gpu --model yolov8n.onnx --images IMAGES --out DIR [--batches 1,8,32,64,128]
"""

import argparse
import itertools
import json
import os
import platform
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from bench.images import Image, letterboxed, load_images
from bench.machine import cpu_model
from bench.pipeline import CONFIDENCE, Detection, Letterbox, decode, letterbox, select
from bench.stats import summarize

# uint8 NHWC letterboxed batch [B, 640, 640, 3] in -> candidate rows [B, N, 6] out
# (x1, y1, x2, y2, best class score, class: the served model's layout; N = 1024 top-K rows for
# the PyTorch module, all 8400 anchors for the ONNX Runtime reference).
Forward = Callable[[np.ndarray], np.ndarray]
MODES = ("eager", "graph")


def torch_forward(
    model_path: Path,
    *,
    device: str = "cuda",
    half: bool = True,
    mode: str = "eager",
    batches: Sequence[int] = (1,),
) -> Forward:
    """The native PyTorch YOLOv8n on `device` (channels_last on CUDA). `graph` captures one
    CUDA graph per size in `batches` up front (other sizes are padded to the next one)."""
    import torch

    from objectvision_inference.torch_yolo import BatchRunner, load_served_model

    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    # Both modes let cuDNN pick its fastest kernels per shape (the graphs are captured so).
    torch.backends.cudnn.benchmark = True
    model = load_served_model(model_path, device=device, half=half)
    runner = BatchRunner(model, batches) if mode == "graph" else None
    pinned: dict[tuple[int, ...], Any] = {}
    page_locked = torch.device(device).type == "cuda"

    @torch.inference_mode()
    def forward(batch: np.ndarray) -> np.ndarray:
        # One page-locked staging buffer per shape: pinning on every call costs more than
        # the copy itself. Both modes copy to the GPU from it.
        staging = pinned.get(batch.shape)
        if staging is None:
            fresh = torch.empty(batch.shape, dtype=torch.uint8)
            staging = pinned.setdefault(batch.shape, fresh.pin_memory() if page_locked else fresh)
        staging.numpy()[...] = batch
        if runner is not None:
            return runner(staging).numpy()
        return model(staging.to(device, non_blocking=True)).cpu().numpy()

    return forward


def onnxruntime_forward(model_path: Path, *, threads: int | None = None) -> Forward:
    """The same contract on the CPU with ONNX Runtime: for tests and as a reference."""
    from bench.pipeline import anchors_to_rows, session

    model = session(model_path, threads=threads)
    name = model.get_inputs()[0].name

    def forward(batch: np.ndarray) -> np.ndarray:
        tensor = np.ascontiguousarray(batch.transpose(0, 3, 1, 2), dtype=np.float32) / 255.0
        (output,) = model.run(None, {name: tensor})
        return np.stack([anchors_to_rows(out) for out in output])

    return forward


def _synchronize() -> None:
    try:
        import torch
    except ImportError:
        return
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def time_model(
    forward: Forward, frames: Sequence[np.ndarray], batch: int, *, seconds: float, warmup: int
) -> dict[str, Any]:
    """Forward passes on pre-letterboxed frames for `seconds`: images/s and latency."""
    cycle = itertools.cycle(frames)
    batches = [np.concatenate([next(cycle) for _ in range(batch)]) for _ in range(4)]
    for pixels in batches[:warmup]:
        forward(pixels)
    _synchronize()
    latencies: list[float] = []
    started = time.perf_counter()
    for pixels in itertools.cycle(batches):
        begin = time.perf_counter()
        forward(pixels)
        latencies.append((time.perf_counter() - begin) * 1000)
        if time.perf_counter() - started >= seconds:
            break
    elapsed = time.perf_counter() - started
    return _point("gpu_model", batch, len(latencies) * batch / elapsed, latencies, elapsed)


def _prepare(image: Image) -> tuple[np.ndarray, Letterbox]:
    frame, box = letterbox(decode(image.data))
    return frame, box


def time_pipeline(
    forward: Forward,
    images: Sequence[Image],
    batch: int,
    *,
    seconds: float,
    workers: int,
    warmup: int,
) -> dict[str, Any]:
    """Decode + letterbox on `workers` threads, one batch ahead of the GPU, then NMS."""
    cycle = itertools.cycle(images)
    with ThreadPoolExecutor(workers) as pool:

        def submit() -> list[Future[tuple[np.ndarray, Letterbox]]]:
            return [pool.submit(_prepare, next(cycle)) for _ in range(batch)]

        def run(prepared: list[Future[tuple[np.ndarray, Letterbox]]]) -> list[list[Detection]]:
            frames, boxes = zip(*(f.result() for f in prepared), strict=True)
            rows = forward(np.stack(frames))
            return [select(r, box) for r, box in zip(rows, boxes, strict=True)]

        ahead = submit()
        for _ in range(warmup):
            current, ahead = ahead, submit()
            run(current)
        latencies: list[float] = []
        started = time.perf_counter()
        while time.perf_counter() - started < seconds:
            begin = time.perf_counter()
            current, ahead = ahead, submit()
            run(current)
            latencies.append((time.perf_counter() - begin) * 1000)
        elapsed = time.perf_counter() - started
        for future in ahead:
            future.result()
    return _point("gpu_pipeline", batch, len(latencies) * batch / elapsed, latencies, elapsed)


def _point(
    stage: str, batch: int, throughput: float, latencies: list[float], elapsed: float
) -> dict[str, Any]:
    return {
        "stage": stage,
        "batch": batch,
        "iterations": len(latencies),
        "window_s": round(elapsed, 3),
        "throughput_ips": round(throughput, 2),
        "latency_ms": summarize(latencies).to_json(),
    }


def check_bus(forward: Forward, images: Sequence[Image]) -> list[str]:
    """Problems with the model's answer on bus.jpg (a bus and people expected), if any."""
    named = {image.name: image for image in images}
    if "bus.jpg" not in named:
        return []
    frame, box = _prepare(named["bus.jpg"])
    found = select(forward(frame[np.newaxis])[0], box, confidence=CONFIDENCE)
    classes = {d.class_id for d in found}
    return [] if {0, 5} <= classes else [f"bus.jpg: expected person and bus, got {sorted(classes)}"]


def device_info() -> dict[str, Any]:
    info: dict[str, Any] = {
        "cpu_model": cpu_model(),
        "usable_cores": len(os.sched_getaffinity(0)),
        "python": platform.python_version(),
    }
    try:
        import torch
    except ImportError:
        return {**info, "torch": None}
    info.update(torch=torch.__version__, cuda=torch.version.cuda)
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    return info


def run(
    forward: Forward,
    images: list[Image],
    *,
    batches: Sequence[int],
    pipeline_batches: Sequence[int],
    seconds: float,
    workers: int,
    warmup: int = 3,
    mode: str | None = None,
) -> dict[str, Any]:
    """Every point, as one result document (not yet written); `mode` labels the points."""
    started = datetime.now(UTC)
    frames = letterboxed(images)
    problems = [f"{mode or 'model'}: {p}" for p in check_bus(forward, images)]
    points = [time_model(forward, frames, b, seconds=seconds, warmup=warmup) for b in batches]
    best = max(points, key=lambda p: p["throughput_ips"])["batch"] if points else 1
    for batch in dict.fromkeys([*pipeline_batches, best]):
        points.append(
            time_pipeline(forward, images, batch, seconds=seconds, workers=workers, warmup=warmup)
        )
    if mode is not None:
        points = [{**point, "mode": mode} for point in points]
    return {
        "schema_version": 1,
        "kind": "gpu_raw",
        "started_at": started.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "device": device_info(),
        "config": {
            "batches": list(batches),
            "pipeline_batches": list(pipeline_batches),
            "seconds": seconds,
            "decode_workers": workers,
            "image_count": len(images),
        },
        "points": points,
        "problems": problems,
    }


def _ints(text: str) -> list[int]:
    return [int(part) for part in text.split(",") if part.strip()]


def _names(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def measure(args: argparse.Namespace) -> dict[str, Any]:
    """One document for every mode: each mode's model is built, measured and dropped in turn."""
    images = load_images(args.images)
    settings = {
        "batches": args.batches,
        "pipeline_batches": args.pipeline_batches,
        "seconds": args.seconds,
        "workers": args.workers,
    }
    if args.device == "cpu-ort":
        return run(onnxruntime_forward(args.model), images, mode="onnxruntime", **settings)
    document: dict[str, Any] = {}
    for mode in args.modes:
        sizes = sorted({*args.batches, *args.pipeline_batches})
        forward = torch_forward(
            args.model, device=args.device, half=not args.fp32, mode=mode, batches=sizes
        )
        part = run(forward, images, mode=mode, **settings)
        if not document:
            document = part
        else:
            document["points"] += part["points"]
            document["problems"] += part["problems"]
        del forward
    document["config"].update(modes=list(args.modes), fp16=not args.fp32)
    return document


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.gpu", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--model", type=Path, required=True, help="plain yolov8n.onnx")
    parser.add_argument("--images", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True, help="folder for the result JSON")
    parser.add_argument("--batches", type=_ints, default=[1, 2, 4, 8, 16, 32, 64, 128])
    parser.add_argument("--pipeline-batches", type=_ints, default=[1])
    parser.add_argument("--seconds", type=float, default=5.0, help="per point")
    parser.add_argument("--workers", type=int, default=len(os.sched_getaffinity(0)))
    parser.add_argument(
        "--device", default="cuda", help="cuda, cpu, or cpu-ort: ONNX Runtime (dry run)"
    )
    parser.add_argument("--modes", type=_names, default=list(MODES), help="eager,graph")
    parser.add_argument("--fp32", action="store_true", help="float32 instead of float16")
    args = parser.parse_args(argv)
    document = measure(args)
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"gpu-{document['started_at'].replace(':', '').replace('-', '')}.json"
    path.write_text(json.dumps(document, indent=2) + "\n")
    for point in document["points"]:
        print(
            f"{point['stage']:<13} {point.get('mode', ''):<11} batch {point['batch']:>4}:"
            f" {point['throughput_ips']:>9.1f} img/s  p50 {point['latency_ms']['p50']:.2f} ms"
        )
    for problem in document["problems"]:
        print(f"PROBLEM: {problem}")
    print(f"wrote {path}")
    return 1 if document["problems"] else 0


if __name__ == "__main__":
    raise SystemExit(main())
