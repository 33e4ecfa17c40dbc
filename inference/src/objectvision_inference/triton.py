"""Write Triton model repositories for the encoded-image contract and launch the local tritonserver.

Three flavours of one model, ``yolov8n``, with the same I/O (``detect_contract``: encoded files
and per-image options in, boxes in original pixels out, ADR 0010), so the service cannot tell
them apart; one ``model.py`` (``triton_model.py``) whose ``pipeline`` parameter picks:

* ``cpu`` (local development and tests): OpenCV + the served ONNX under ONNX Runtime + numpy
  NMS (``cpu_pipeline``).
* ``gpu`` (a GPU box without TensorRT): nvJPEG + the native PyTorch YOLOv8n (``torch_yolo``,
  weights exported to ``model.npz``) in fp16 with one CUDA graph per batch size + device NMS
  (``torch_pipeline``); the stub's Python needs torch with CUDA and numpy 1.26.
* ``trt`` (production, GPU node): a BLS model (``trt_pipeline``) calling DALI
  (``yolov8n_preprocess``) and a TensorRT engine with EfficientNMS (``yolov8n_engine``) that
  ``inference/scripts/build_engine.sh`` builds once per GPU product and TensorRT version.

The local server is the tritonserver 2.51 binary shipped in the ``nvidia-pytriton==0.7.0``
wheel, installed in its own virtualenv (``.venv-triton``, numpy < 2, see
``inference/requirements-triton.txt``). This module only returns argv/env; the process
supervisor runs the process.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import shutil
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import numpy as np
import onnx
from onnx import numpy_helper

from objectvision_inference import detect_contract as contract
from objectvision_inference.class_names import COCO_CLASS_NAMES, class_names_from_onnx
from objectvision_inference.prepare_model import OUTPUT_NAME

Flavour = Literal["cpu", "trt", "gpu"]
FLAVOURS: tuple[Flavour, ...] = ("cpu", "trt", "gpu")

MODEL_NAME = "yolov8n"
# The int8 variant (``../shared/models/yolov8n_int8.onnx``). Triton takes any directory name
# as a model name, '-' included (the devstack serves this one and the tests call it), so the
# public name is the repository name: no mapping between the two.
INT8_MODEL_NAME = "yolov8n-int8"
IMAGE_SIZE = 640
# What every detection model's config says about itself in ``parameters``, read by the
# detection service's model catalog (Triton's config is the one source of truth).
TASK = "detect"
Precision = Literal["fp32", "fp16", "int8"]
# Production: one TensorRT engine profile up to batch 64 (build_engine.sh --maxShapes must agree).
TRT_MAX_BATCH = 64
# The models the production `yolov8n` calls by BLS (trt_pipeline.py), and the IoU its
# EfficientNMS is built with (inference/scripts/add_efficient_nms.py must agree).
TRT_PREPROCESS_MODEL = "yolov8n_preprocess"
TRT_ENGINE_MODEL = "yolov8n_engine"
TRT_ENGINE_IOU = 0.7
TRT_ENGINE_MAX_DETECTIONS = 300
# ~ the batch-1 latency of a yolov8n fp16 engine on a data-centre GPU: lets batches form under
# load while adding at most 2 ms to a request whose end-to-end budget is tens of ms.
TRT_MAX_QUEUE_DELAY_US = 2000
# Local CPU: ONNX Runtime per-image time stops improving beyond batch 4-8 on 2 cores (see ADR
# 0003), and a batch of 8 already takes ~0.5 s, so larger batches only add latency.
CPU_MAX_BATCH = 8
# No added wait: requests that arrive while the CPU instances are busy still form the next
# batch, and `make bench` measured 5 ms of latency at concurrency 1 and no throughput gain at
# concurrency 16 from a 5 ms delay (docs/adr/0008-benchmarks.md).
CPU_MAX_QUEUE_DELAY_US = 0
# GPU without TensorRT: the same batch limit as the TensorRT flavour, each size up to it
# captured as a CUDA graph (a batch is padded to the next size: <= 2x the work of a
# power-of-two gap, against one graph per size 1..64 and its capture time and memory).
GPU_MAX_BATCH = TRT_MAX_BATCH
GPU_GRAPH_BATCH_SIZES = (1, 2, 4, 8, 16, 32, 64)
# As on the CPU: busy instances let the next batch form anyway; a fixed delay would only add
# latency at low load.
GPU_MAX_QUEUE_DELAY_US = 0
# Four instances (each its own stub process, CUDA graphs and nvJPEG state) overlap one batch's
# Python and decode work with another's network. On an H200 at c=256: 3,061 images/s with two,
# 3,525 with four, 2,649 with eight (at c=1,024 four gave 5,187, eight 5,025).
GPU_INSTANCE_COUNT = 4
# The local stack (gateway, services, databases) shares a 2-core machine with Triton.
CPU_INTRA_OP_THREADS = 2
# One instance. A second (each with both cores' threads, no spinning) let a second batch use
# the cycles ONNX Runtime leaves idle: Triton alone at c=32 gained +2% to +17% in interleaved
# A/B pairs on 2 cores, but the gateway at c=32 did not (10.0 against 10.2 img/s), it cost 7%
# more CPU per image, and mixed load (tests/test_load.py) fell 5%: the services share these
# cores with it (ADR 0008). Worth measuring again on a dedicated CPU node.
CPU_INSTANCE_COUNT = 1
# Python backend shared memory per stub: a batch of 8 inputs is ~10 MB; 1 MB default steps
# would grow the region on the first large batches.
_PYTHON_SHM_BYTES = 16 * 1024 * 1024
LOOPBACK = "127.0.0.1"
DEFAULT_CLASS_COUNT = len(COCO_CLASS_NAMES)
# The detection service's IMAGE_MAX_PIXELS default: the decoder in Triton refuses larger images.
DEFAULT_MAX_PIXELS = 40_000_000
# The modules the Python-backend model imports, copied next to it as a package.
_PIPELINE_MODULES = {
    "cpu": ("__init__.py", "detect_contract.py", "cpu_pipeline.py"),
    "trt": ("__init__.py", "detect_contract.py", "trt_pipeline.py"),
    "gpu": (
        "__init__.py",
        "detect_contract.py",
        "cpu_pipeline.py",
        "torch_pipeline.py",
        "torch_yolo.py",
    ),
}


def _tensor(name: str, data_type: str, dims: list[int], *, optional: bool = False) -> str:
    shape = ", ".join(str(d) for d in dims)
    extra = " optional: true" if optional else ""
    return f'  {{ name: "{name}" data_type: {data_type} dims: [ {shape} ]{extra} }}'


def config_pbtxt(
    flavour: Flavour,
    *,
    model_name: str = MODEL_NAME,
    precision: Precision | None = None,
    class_names: Sequence[str] | None = None,
    network_batch: int = 0,
    class_count: int = DEFAULT_CLASS_COUNT,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    max_batch: int | None = None,
    max_queue_delay_us: int | None = None,
    intra_op_threads: int = CPU_INTRA_OP_THREADS,
    instance_count: int | None = None,
) -> str:
    """Return the ``config.pbtxt`` text of one detection model (``yolov8n`` by default).

    ``class_names`` (the served model's, COCO's when not given), ``precision`` (fp16 for the
    GPU flavours, which run the network in half precision; fp32 otherwise), the task and the
    input size go into ``parameters``: the service lists models from these, so adding a model
    is adding its folder. ``network_batch`` > 0 runs the network on at most that many images
    at once (int8 with dynamic quantization computes one scale per call, so a batch of 1
    keeps each image's answer independent of its neighbours).
    """
    if flavour not in FLAVOURS:
        raise ValueError(f"flavour must be one of {FLAVOURS}, got {flavour!r}")
    defaults = {
        "cpu": (CPU_MAX_BATCH, CPU_MAX_QUEUE_DELAY_US),
        "trt": (TRT_MAX_BATCH, TRT_MAX_QUEUE_DELAY_US),
        "gpu": (GPU_MAX_BATCH, GPU_MAX_QUEUE_DELAY_US),
    }[flavour]
    if max_batch is None:
        max_batch = defaults[0]
    if max_queue_delay_us is None:
        max_queue_delay_us = defaults[1]
    if instance_count is None:
        instance_count = {"cpu": CPU_INSTANCE_COUNT, "gpu": GPU_INSTANCE_COUNT}.get(flavour, 1)
    if max_batch < 1 or max_queue_delay_us < 0 or instance_count < 1 or intra_op_threads < 0:
        raise ValueError("max_batch and instance_count must be >= 1, delays/threads >= 0")
    if precision is None:
        precision = "fp32" if flavour == "cpu" else "fp16"
    names = list(class_names) if class_names is not None else list(COCO_CLASS_NAMES)
    if class_names is not None:
        class_count = len(names)

    cpu_why = "~7% of a ~70 ms batch-1 CPU run; under load, batches form while the instance works."
    why_delay = {
        "trt": "~ a fp16 engine's batch-1 latency: under load, batches form for <= 2 ms extra.",
        "cpu": cpu_why,
        "gpu": "none: under load, batches form while the instances work.",
    }[flavour]
    lines = [
        f"# Written by objectvision_inference.triton.config_pbtxt ({flavour}): edit the generator,",
        "# not this file (a test keeps the checked-in copies in step).",
        "# The contract of objectvision_inference.detect_contract: encoded images in, detections",
        "# in original-image pixels out.",
        f'name: "{model_name}"',
        'backend: "python"',
        f"max_batch_size: {max_batch}",
        "input [",
        _tensor(contract.IMAGES, "TYPE_STRING", [1]) + ",",
        _tensor(contract.CONFIDENCE, "TYPE_FP32", [1], optional=True) + ",",
        _tensor(contract.IOU, "TYPE_FP32", [1], optional=True) + ",",
        _tensor(contract.MAX_DETECTIONS, "TYPE_INT32", [1], optional=True) + ",",
        _tensor(contract.CLASS_MASK, "TYPE_BOOL", [class_count], optional=True) + ",",
        _tensor(contract.EXPECTED_SIZE, "TYPE_INT32", [2], optional=True),
        "]",
        "output [",
        _tensor(contract.DETECTIONS, "TYPE_FP32", [-1, 6]) + ",",
        _tensor(contract.COUNTS, "TYPE_INT32", [1]) + ",",
        _tensor(contract.IMAGE_SIZE, "TYPE_INT32", [2]) + ",",
        _tensor(contract.STATUS, "TYPE_INT32", [1]) + ",",
        _tensor(contract.STAGE_MS, "TYPE_FP32", [3]),
        "]",
        f"# Queue delay {why_delay}",
        "# No preferred_batch_size: the largest ready batch goes when the instance frees.",
        "dynamic_batching {",
        f"  max_queue_delay_microseconds: {max_queue_delay_us}",
        "}",
        "instance_group [",
        "  {",
        f"    count: {instance_count}",
        f"    kind: {'KIND_GPU' if flavour == 'gpu' else 'KIND_CPU'}",
        "  }",
        "]",
    ]
    params: dict[str, str] = {
        "max_pixels": str(max_pixels),
        "task": TASK,
        "input_size": str(IMAGE_SIZE),
        "precision": precision,
        "device": "cpu" if flavour == "cpu" else "gpu",
        "class_names": json.dumps(names, separators=(",", ":")).replace('"', '\\"'),
    }
    if network_batch:
        params["network_batch"] = str(network_batch)
    if flavour == "cpu":
        params |= {
            "pipeline": "onnxruntime",
            "onnx_file": "model.onnx",
            "intra_op_threads": str(intra_op_threads),
            "inter_op_threads": "1",
            "allow_spinning": "0",
        }
    elif flavour == "trt":
        params |= {
            "pipeline": "tensorrt",
            "preprocess_model": TRT_PREPROCESS_MODEL,
            "engine_model": TRT_ENGINE_MODEL,
            "engine_iou": str(TRT_ENGINE_IOU),
        }
    elif flavour == "gpu":
        sizes = [size for size in GPU_GRAPH_BATCH_SIZES if size < max_batch] + [max_batch]
        params |= {
            "pipeline": "torch",
            "onnx_file": "model.npz",
            "fp16": "1",
            "cuda_graphs": "1",
            "graph_batch_sizes": ",".join(str(size) for size in sizes),
        }
    if params:
        lines.append("parameters [")
        entries = [
            f'  {{ key: "{key}" value: {{ string_value: "{value}" }} }}'
            for key, value in params.items()
        ]
        lines.append(",\n".join(entries))
        lines.append("]")
    return "\n".join(lines) + "\n"


def export_weights(onnx_path: str | Path, out: str | Path) -> Path:
    """The YOLOv8 weights (``model.*`` initializers, ``yolo/`` prefix dropped) and metadata of
    an ONNX file as an ``.npz`` that ``torch_yolo`` loads without the onnx package."""
    model = onnx.load(str(onnx_path))
    metadata = json.dumps({prop.key: prop.value for prop in model.metadata_props})
    # Every entry becomes one array of the file. Typed Any because numpy 2 gives savez an
    # `allow_pickle` flag beside these keywords (none of our names is that) and the Triton
    # environment's numpy 1.x has none, so the flag cannot be passed to tell them apart.
    arrays: dict[str, Any] = {"__metadata__": np.array(metadata)}
    arrays.update(
        (init.name.removeprefix("yolo/"), numpy_helper.to_array(init))
        for init in model.graph.initializer
        if init.name.removeprefix("yolo/").startswith("model.")
    )
    with Path(out).open("wb") as sink:
        np.savez(sink, **arrays)
    return Path(out)


def trt_support_configs(*, max_batch: int, class_count: int) -> dict[str, str]:
    """The configs of the two models the production ``yolov8n`` calls (trt_pipeline.py)."""
    header = [
        "# Written by objectvision_inference.triton.trt_support_configs: edit the generator,",
        "# not this file (a test keeps the checked-in copies in step).",
    ]
    preprocess = [
        *header,
        "# nvJPEG (hardware engines where present) + letterbox on the GPU, one call per batch:",
        "# the batch's files zero-padded to one length, and each one's real length.",
        f'name: "{TRT_PREPROCESS_MODEL}"',
        'backend: "dali"',
        f"max_batch_size: {max_batch}",
        "input [",
        _tensor("encoded", "TYPE_UINT8", [-1]) + ",",
        _tensor("lengths", "TYPE_INT32", [1]),
        "]",
        "output [",
        _tensor("letterboxed", "TYPE_UINT8", [IMAGE_SIZE, IMAGE_SIZE, 3]) + ",",
        _tensor("shapes", "TYPE_INT32", [3]),
        "]",
        "instance_group [ { count: 1 kind: KIND_GPU } ]",
    ]
    engine = [
        *header,
        "# YOLOv8n + EfficientNMS (score >= 0.001, IoU "
        f"{TRT_ENGINE_IOU}, <= {TRT_ENGINE_MAX_DETECTIONS} boxes), built by build_engine.sh.",
        f"# {class_count} classes.",
        f'name: "{TRT_ENGINE_MODEL}"',
        'platform: "tensorrt_plan"',
        f"max_batch_size: {max_batch}",
        "input [",
        _tensor("images", "TYPE_UINT8", [IMAGE_SIZE, IMAGE_SIZE, 3]),
        "]",
        "output [",
        _tensor("num_dets", "TYPE_INT32", [1]) + ",",
        _tensor("det_boxes", "TYPE_FP32", [TRT_ENGINE_MAX_DETECTIONS, 4]) + ",",
        _tensor("det_scores", "TYPE_FP32", [TRT_ENGINE_MAX_DETECTIONS]) + ",",
        _tensor("det_classes", "TYPE_INT32", [TRT_ENGINE_MAX_DETECTIONS]),
        "]",
        "instance_group [ { count: 1 kind: KIND_GPU } ]",
    ]
    return {
        TRT_PREPROCESS_MODEL: "\n".join(preprocess) + "\n",
        TRT_ENGINE_MODEL: "\n".join(engine) + "\n",
    }


def served_class_names(served_onnx_path: str | Path) -> tuple[str, ...]:
    """The classes the served model knows (its ``names`` metadata), else COCO's 80."""
    try:
        return class_names_from_onnx(served_onnx_path)
    except ValueError:
        return COCO_CLASS_NAMES


def served_class_count(served_onnx_path: str | Path) -> int:
    """How many classes the served model knows (its ``names`` metadata), else COCO's 80."""
    return len(served_class_names(served_onnx_path))


def served_top_k(served_onnx_path: str | Path) -> int:
    """Read K from the served graph's ``detections`` output shape ``[batch, K, 6]``."""
    model = onnx.load(str(served_onnx_path), load_external_data=False)
    for output in model.graph.output:
        if output.name == OUTPUT_NAME:
            dims = [d.dim_value for d in output.type.tensor_type.shape.dim]
            if len(dims) == 3 and dims[1] > 0 and dims[2] == 6:
                return dims[1]
    raise ValueError(f"{served_onnx_path} has no {OUTPUT_NAME} [batch, K, 6] output; not served?")


def _copy(src: Path, dst: Path) -> None:
    """Copy via a temporary name so a reader never sees a half-written file."""
    tmp = dst.with_name(dst.name + ".tmp")
    shutil.copyfile(src, tmp)
    tmp.replace(dst)


def build_model_repository(
    dest_dir: str | Path,
    served_onnx_path: str | Path,
    *,
    flavour: Flavour = "cpu",
    model_name: str = MODEL_NAME,
    precision: Precision | None = None,
    network_batch: int = 0,
    max_batch: int | None = None,
    max_queue_delay_us: int | None = None,
    intra_op_threads: int = CPU_INTRA_OP_THREADS,
    instance_count: int | None = None,
    engine_path: str | Path | None = None,
    engine_source: str | Path | None = None,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> Path:
    """Write ``dest_dir/<model_name>/{config.pbtxt, 1/...}`` and return ``dest_dir``.

    Called once per served model into one repository (``yolov8n``, ``yolov8n-int8``): each
    model's folder is self-contained. ``precision`` and ``network_batch``: see config_pbtxt.

    ``cpu``: ``1/model.py`` (Python backend) and ``1/model.onnx`` (the served graph).
    ``gpu``: ``1/model.py`` (Python backend, PyTorch), ``1/torch_yolo.py`` (the module it
    imports) and ``1/model.onnx`` (the served graph, read for its weights, K and min_score).
    ``trt``: ``yolov8n/1/model.py`` (the BLS model, ``trt_pipeline``), and the configs of
    ``yolov8n_preprocess`` (DALI) and ``yolov8n_engine`` (TensorRT); ``engine_source`` (the
    plain yolov8n.onnx) goes to ``yolov8n_engine/model.onnx`` for build_engine.sh, which writes
    ``model.plan`` and ``model.dali`` on the GPU node (or fetches them from the engine cache);
    ``engine_path`` places a plan built elsewhere.
    """
    served = Path(served_onnx_path)
    served_top_k(served)  # refuses a plain (not prepared) model up front
    repo = Path(dest_dir)
    model_dir = repo / model_name
    version_dir = model_dir / "1"
    version_dir.mkdir(parents=True, exist_ok=True)
    text = config_pbtxt(
        flavour,
        model_name=model_name,
        precision=precision,
        class_names=served_class_names(served),
        network_batch=network_batch,
        max_pixels=max_pixels,
        max_batch=max_batch,
        max_queue_delay_us=max_queue_delay_us,
        intra_op_threads=intra_op_threads,
        instance_count=instance_count,
    )
    (model_dir / "config.pbtxt").write_text(text)
    package = resources.files("objectvision_inference")
    (version_dir / "model.py").write_text(package.joinpath("triton_model.py").read_text())
    modules = version_dir / "objectvision_inference"
    modules.mkdir(exist_ok=True)
    for name in _PIPELINE_MODULES[flavour]:
        (modules / name).write_text(package.joinpath(name).read_text())
    if flavour == "gpu":
        # Weights as numpy arrays: the stub's numpy 1.26 cannot import onnx on a GPU box.
        export_weights(served, version_dir / "model.npz")
    elif flavour == "cpu":
        _copy(served, version_dir / "model.onnx")
    else:
        for name, text in trt_support_configs(
            max_batch=max_batch or TRT_MAX_BATCH, class_count=served_class_count(served)
        ).items():
            (repo / name / "1").mkdir(parents=True, exist_ok=True)
            (repo / name / "config.pbtxt").write_text(text)
        if engine_source is not None:
            _copy(Path(engine_source), repo / TRT_ENGINE_MODEL / "model.onnx")
        if engine_path is not None:
            _copy(Path(engine_path), repo / TRT_ENGINE_MODEL / "1" / "model.plan")
    return repo


@dataclass(frozen=True)
class TritonEnv:
    """Paths inside the Triton virtualenv that the launch needs."""

    venv: Path
    site_packages: Path
    python_version: str
    python_libdir: Path
    # Where the wheel's ``pytriton/`` and ``nvidia_pytriton.libs/`` are: the venv's
    # site-packages, or a folder the wheel was unpacked into (bench/gpu.sh on a GPU box).
    server_site: Path

    @property
    def root(self) -> Path:
        """The ``pytriton/tritonserver`` folder of the wheel."""
        return self.server_site / "pytriton" / "tritonserver"

    @property
    def tritonserver(self) -> Path:
        return self.root / "bin" / "tritonserver"

    @property
    def backends(self) -> Path:
        return self.root / "backends"

    @property
    def libs(self) -> Path:
        """The wheel's bundled shared libraries (libtritonserver, libcudart, ...)."""
        return self.server_site / "nvidia_pytriton.libs"

    @property
    def stub(self) -> Path:
        return self.backends / "python" / "triton_python_backend_stub"


@functools.cache
def find_triton_env(triton_env_dir: str | Path, server_site: str | Path | None = None) -> TritonEnv:
    """Ask the venv's own interpreter where its site-packages and libpython live.

    ``server_site``: a folder holding the nvidia-pytriton wheel's ``pytriton/`` and
    ``nvidia_pytriton.libs/`` when they are not installed in the venv, so that the stub can run
    in a Python that has what the model needs (torch with CUDA on a GPU box) and cannot install
    the wheel. The venv's site-packages otherwise.
    """
    venv = Path(triton_env_dir).resolve()
    python = venv / "bin" / "python"
    if not python.exists():
        raise FileNotFoundError(
            f"{python} missing: build the Triton env with inference/scripts/make_triton_env.sh"
        )
    probe = (
        "import json, sys, sysconfig; print(json.dumps({"
        "'site': sysconfig.get_paths()['purelib'],"
        "'ver': f'{sys.version_info[0]}.{sys.version_info[1]}',"
        "'libdir': sysconfig.get_config_var('LIBDIR')}))"
    )
    out = subprocess.run([str(python), "-c", probe], check=True, capture_output=True, text=True)
    info = json.loads(out.stdout)
    site = Path(info["site"])
    server = site if server_site is None else Path(server_site).resolve()
    env = TritonEnv(venv, site, info["ver"], Path(info["libdir"]), server)
    if not env.tritonserver.exists():
        raise FileNotFoundError(f"{env.tritonserver} missing: is nvidia-pytriton installed there?")
    return env


def ensure_python_stub(env: TritonEnv) -> Path:
    """Install the wheel's stub for the venv's Python next to libtriton_python.so (idempotent).

    The backend starts ``backends/python/triton_python_backend_stub``; the wheel keeps one stub
    per Python version under ``python_backend_stubs/`` and pytriton itself copies the right one.
    """
    source = env.root / "python_backend_stubs" / env.python_version / "triton_python_backend_stub"
    if not source.exists():
        raise FileNotFoundError(f"no Python backend stub for Python {env.python_version}: {source}")
    target = env.stub
    if not target.exists() or target.stat().st_size != source.stat().st_size:
        _copy(source, target)
    target.chmod(0o755)
    return target


def python_backend_shm_prefix(grpc_port: int) -> str:
    """The names of the shared-memory regions (in /dev/shm) that the Python backend of the
    local server on `grpc_port` makes: unique per server, so that two on one machine never
    share one, and so that what a crashed server left can be found and removed."""
    return f"ov_triton_{grpc_port}_"


def tritonserver_command(
    model_repository: str | Path,
    *,
    grpc_port: int,
    http_port: int,
    metrics_port: int,
    triton_env_dir: str | Path,
    log_verbose: int = 0,
    base_env: Mapping[str, str] | None = None,
    server_site: str | Path | None = None,
    model_control: Literal["none", "explicit"] = "none",
) -> tuple[list[str], dict[str, str]]:
    """Return (argv, env) that run the local tritonserver on 127.0.0.1 with explicit ports.

    ``model_control="explicit"`` loads every model of the repository at start-up and lets
    clients load and unload models through Triton's model control API (the devstack: a model
    added to the repository is loaded without a restart, and a loading model is observable).

    The environment makes the Python backend stub's embedded interpreter use the Triton venv:
    the stub starts Python without a program path, so CPython looks ``python3`` up on PATH and
    takes ``sys.prefix`` from the venv found first (its ``pyvenv.cfg``). Hence the venv's
    ``bin`` goes first on PATH; PYTHONPATH/PYTHONHOME from the caller (the numpy 2 app venv)
    are dropped. LD_LIBRARY_PATH adds the wheel's bundled libraries and the directory of
    ``libpython3.X.so`` that the stub links against.
    """
    env_paths = find_triton_env(triton_env_dir, server_site)
    ensure_python_stub(env_paths)
    repo = Path(model_repository).resolve()
    shm_prefix = python_backend_shm_prefix(grpc_port)
    argv = [
        str(env_paths.tritonserver),
        f"--model-repository={repo}",
        f"--backend-directory={env_paths.backends}",
        f"--model-control-mode={model_control}",
        *(["--load-model=*"] if model_control == "explicit" else []),
        "--strict-readiness=true",
        "--exit-on-error=true",
        "--disable-auto-complete-config",
        f"--grpc-address={LOOPBACK}",
        f"--grpc-port={grpc_port}",
        f"--http-address={LOOPBACK}",
        f"--http-port={http_port}",
        "--allow-metrics=true",
        "--allow-gpu-metrics=false",
        f"--metrics-address={LOOPBACK}",
        f"--metrics-port={metrics_port}",
        "--pinned-memory-pool-byte-size=0",
        f"--log-verbose={log_verbose}",
        "--log-info=true",
        "--exit-timeout-secs=5",
        f"--backend-config=python,shm-default-byte-size={_PYTHON_SHM_BYTES}",
        f"--backend-config=python,shm-growth-byte-size={_PYTHON_SHM_BYTES}",
        # Two servers on one machine (dev stack + tests) must not share shm region names.
        f"--backend-config=python,shm-region-prefix-name={shm_prefix}",
    ]
    env = dict(os.environ if base_env is None else base_env)
    for key in ("PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP"):
        env.pop(key, None)
    env["VIRTUAL_ENV"] = str(env_paths.venv)
    env["PATH"] = os.pathsep.join(
        p for p in (str(env_paths.venv / "bin"), env.get("PATH", "/usr/bin:/bin")) if p
    )
    env["PYTHONNOUSERSITE"] = "1"
    env["LD_LIBRARY_PATH"] = os.pathsep.join(
        p
        for p in (str(env_paths.libs), str(env_paths.python_libdir), env.get("LD_LIBRARY_PATH"))
        if p
    )
    return argv, env


def is_ready(http_port: int, *, host: str = LOOPBACK, timeout_s: float = 2.0) -> bool:
    """True when ``GET /v2/health/ready`` answers 200 (server up and, strictly, every model)."""
    url = f"http://{host}:{http_port}/v2/health/ready"
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as response:
            status: int = response.status
            return status == 200
    except (urllib.error.URLError, OSError):
        return False


def wait_until_ready(
    http_port: int,
    *,
    host: str = LOOPBACK,
    timeout_s: float = 120.0,
    process: subprocess.Popen[bytes] | subprocess.Popen[str] | None = None,
) -> None:
    """Poll readiness; raise RuntimeError if ``process`` exits first, TimeoutError on timeout."""
    deadline = time.monotonic() + timeout_s
    while True:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"tritonserver exited with code {process.returncode} before ready")
        if is_ready(http_port, host=host, timeout_s=1.0):
            return
        if time.monotonic() >= deadline:
            raise TimeoutError(f"tritonserver on {host}:{http_port} not ready after {timeout_s}s")
        time.sleep(0.25)


def main(argv: list[str] | None = None) -> int:
    """Console entry point ``objectvision-triton``: write a repository, or run tritonserver."""
    parser = argparse.ArgumentParser(
        prog="objectvision-triton", description=__doc__.splitlines()[0]
    )
    sub = parser.add_subparsers(dest="command", required=True)
    repo_cmd = sub.add_parser("repo", help="write a model repository")
    repo_cmd.add_argument("--served", type=Path, required=True, help="served ONNX file")
    repo_cmd.add_argument("--dest", type=Path, required=True, help="repository folder")
    repo_cmd.add_argument("--flavour", choices=FLAVOURS, default="cpu")
    repo_cmd.add_argument("--model-name", default=MODEL_NAME, help="the model's folder and name")
    repo_cmd.add_argument("--precision", choices=("fp32", "fp16", "int8"))
    repo_cmd.add_argument(
        "--network-batch", type=int, default=0, help="images per network run (0: the batch)"
    )
    repo_cmd.add_argument("--max-batch", type=int)
    repo_cmd.add_argument("--max-queue-delay-us", type=int)
    repo_cmd.add_argument("--intra-op-threads", type=int, default=CPU_INTRA_OP_THREADS)
    repo_cmd.add_argument(
        "--engine-source", type=Path, help="trt: the plain yolov8n.onnx the engine is built from"
    )
    serve_cmd = sub.add_parser("serve", help="exec tritonserver on 127.0.0.1 (foreground)")
    serve_cmd.add_argument("--repository", type=Path, required=True)
    serve_cmd.add_argument("--triton-env", type=Path, default=Path(".venv-triton"))
    serve_cmd.add_argument(
        "--server-site", type=Path, help="unpacked nvidia-pytriton wheel (default: in the env)"
    )
    serve_cmd.add_argument("--grpc-port", type=int, default=8001)
    serve_cmd.add_argument("--http-port", type=int, default=8000)
    serve_cmd.add_argument("--metrics-port", type=int, default=8002)
    args = parser.parse_args(argv)
    if args.command == "repo":
        repo = build_model_repository(
            args.dest,
            args.served,
            flavour=args.flavour,
            model_name=args.model_name,
            precision=args.precision,
            network_batch=args.network_batch,
            max_batch=args.max_batch,
            max_queue_delay_us=args.max_queue_delay_us,
            intra_op_threads=args.intra_op_threads,
            engine_source=args.engine_source,
        )
        print(f"wrote {args.flavour} model repository {repo}")
        return 0
    command, env = tritonserver_command(
        args.repository,
        grpc_port=args.grpc_port,
        http_port=args.http_port,
        metrics_port=args.metrics_port,
        triton_env_dir=args.triton_env,
        server_site=args.server_site,
    )
    os.execve(command[0], command, env)  # noqa: S606 - replaces this process by design
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
