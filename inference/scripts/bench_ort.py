"""Time the plain and the served YOLOv8 graphs under ONNX Runtime on this machine's CPU.

Why: the served graph adds preprocessing and top-K decoding to the model; this shows what that
costs next to the model itself, and how per-image time moves with the batch size (which sets
the local Triton config's max_batch_size). Usage (main venv, onnxruntime installed):

    python inference/scripts/bench_ort.py --plain PLAIN.onnx --served SERVED.onnx
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnxruntime as ort


def _session(path: Path, threads: int) -> ort.InferenceSession:
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


def _interleaved_medians(runs: list[Callable[[], object]], repeats: int) -> list[float]:
    """Median ms of each run, alternating them so load from other processes hits both alike."""
    for run in runs:
        run()
    times: list[list[float]] = [[] for _ in runs]
    for _ in range(repeats):
        for run, bucket in zip(runs, times, strict=True):
            start = time.perf_counter()
            run()
            bucket.append((time.perf_counter() - start) * 1000.0)
    return [statistics.median(bucket) for bucket in times]


def main() -> None:
    """Print a median-latency table for both graphs at each batch size."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--plain", type=Path, required=True)
    parser.add_argument("--served", type=Path, required=True)
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)))
    args = parser.parse_args()

    plain = _session(args.plain, args.threads)
    served = _session(args.served, args.threads)
    rng = np.random.default_rng(0)
    print(
        f"onnxruntime {ort.__version__}, intra_op_threads={args.threads}, median of {args.repeats}"
    )
    print(f"{'batch':>5} {'plain ms':>10} {'served ms':>10} {'served ms/img':>14}")
    for batch in args.batches:
        pixels = rng.integers(0, 256, size=(batch, 640, 640, 3), dtype=np.uint8)
        floats = pixels.transpose(0, 3, 1, 2).astype(np.float32) / 255.0
        plain_ms, served_ms = _interleaved_medians(
            [
                lambda f=floats: plain.run(None, {"images": f}),
                lambda p=pixels: served.run(None, {"images": p}),
            ],
            args.repeats,
        )
        print(f"{batch:>5} {plain_ms:>10.1f} {served_ms:>10.1f} {served_ms / batch:>14.1f}")


if __name__ == "__main__":
    main()
