"""YOLOv8 (detect) written out in PyTorch, weights read from the ONNX file, and the served graph.

Why not onnx2torch: its converted graph keeps ONNX's data-dependent ops (its ``Split`` reads
the split sizes from a tensor and copies them to the host), so the graph cannot be captured as
a CUDA graph, and batch 1 is bound by Python dispatch (about 100 images/s on an H100). Here the
same network has static shapes only: splits with constant sizes, anchors and strides as
buffers, no ``.item()`` / ``.tolist()``, so ``torch.cuda.graphs`` and ``torch.compile`` can
capture the whole forward pass.

* ``YoloV8``: float ``[B, 3, 640, 640]`` RGB 0..1 in, ``[B, 4 + C, 8400]`` out, the plain
  ``yolov8n.onnx`` contract (cx, cy, w, h in input pixels, then sigmoid class scores). The
  ONNX file already has every BatchNorm folded into its Conv (Conv + Sigmoid + Mul = SiLU), so
  the modules hold the folded weights, named as Ultralytics names them (``model.2.m.0.cv1``).
* ``ServedModel``: the served graph of ``prepare_model`` in PyTorch: uint8 NHWC letterboxed
  RGB in, ``[B, K, 6]`` (x1, y1, x2, y2, score, class) out, sorted by score, ties keep the
  lower anchor first (ONNX TopK), rows below ``min_score`` all zeros.
* ``BatchRunner``: runs a ``ServedModel`` at a fixed set of batch sizes, each captured once as
  a CUDA graph on a GPU, padding a batch to the next captured size.

fp16: the network runs in half precision, but the head's box decoding (DFL softmax, anchors,
strides) runs in float32: fp16 spacing is 0.5 px between 512 and 1024, too coarse for boxes.

Self-contained on purpose (torch, numpy and onnx only): the Triton GPU flavour copies this file
next to its ``model.py``, where the ``objectvision_inference`` package is not installed.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional

# Mirrors prepare_model (a test checks they agree): the served graph's I/O and defaults.
INPUT_NAME = "images"
OUTPUT_NAME = "detections"
DEFAULT_TOP_K = 1024
DEFAULT_MIN_SCORE = 0.001
SERVED_METADATA_KEY = "objectvision_served"
SERVED_PREFIX = "yolo/"
# The entry of an exported .npz that holds the ONNX metadata (as JSON).
METADATA_ENTRY = "__metadata__"

IMAGE_SIZE = 640
STRIDES = (8, 16, 32)
# YOLOv8 detect (yolov8.yaml): which layers are C2f, and whether their bottlenecks add the
# shortcut (backbone yes, neck no). Depth and width come from the weights, so n/s/m/l/x load.
_C2F_SHORTCUT = {2: True, 4: True, 6: True, 8: True, 12: False, 15: False, 18: False, 21: False}
_DOWNSAMPLE = (0, 1, 3, 5, 7, 16, 19)
_SPPF = 9
_DETECT = 22
_M_INDEX = re.compile(r"\.m\.(\d+)\.")


class ConvSiLU(nn.Module):
    """Ultralytics ``Conv`` with its BatchNorm folded in: conv (with bias), then SiLU."""

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int = 1) -> None:
        super().__init__()
        self.conv = nn.Conv2d(c_in, c_out, kernel, stride, kernel // 2, bias=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return functional.silu(self.conv(x))


class Bottleneck(nn.Module):
    """Two 3x3 convs, plus the input when ``shortcut`` (C2f's inner block, expansion 1)."""

    def __init__(self, channels: int, shortcut: bool) -> None:
        super().__init__()
        self.cv1 = ConvSiLU(channels, channels, 3)
        self.cv2 = ConvSiLU(channels, channels, 3)
        self.shortcut = shortcut

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.cv2(self.cv1(x))
        return x + y if self.shortcut else y


class C2f(nn.Module):
    """1x1 conv, split in two halves (constant sizes), n bottlenecks on the second, concat all."""

    def __init__(self, c_in: int, c_out: int, hidden: int, n: int, shortcut: bool) -> None:
        super().__init__()
        self.hidden = hidden
        self.cv1 = ConvSiLU(c_in, 2 * hidden, 1)
        self.cv2 = ConvSiLU((2 + n) * hidden, c_out, 1)
        self.m = nn.ModuleList(Bottleneck(hidden, shortcut) for _ in range(n))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        ys = list(self.cv1(x).split((self.hidden, self.hidden), dim=1))
        for block in self.m:
            ys.append(block(ys[-1]))
        return self.cv2(torch.cat(ys, dim=1))


class SPPF(nn.Module):
    """1x1 conv, three chained 5x5 max-pools, concat the four, 1x1 conv."""

    def __init__(self, c_in: int, hidden: int, c_out: int) -> None:
        super().__init__()
        self.cv1 = ConvSiLU(c_in, hidden, 1)
        self.cv2 = ConvSiLU(4 * hidden, c_out, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.cv1(x)
        y1 = functional.max_pool2d(x, 5, 1, 2)
        y2 = functional.max_pool2d(y1, 5, 1, 2)
        y3 = functional.max_pool2d(y2, 5, 1, 2)
        return self.cv2(torch.cat((x, y1, y2, y3), dim=1))


def _anchor_grid(image_size: int, strides: Sequence[int]) -> tuple[torch.Tensor, torch.Tensor]:
    """Anchor centres ``[1, 2, A]`` (cell + 0.5, in grid units) and strides ``[1, A]``, level by
    level, row-major: the constants the ONNX export baked in (a test compares them)."""
    centres, scales = [], []
    for stride in strides:
        cells = image_size // stride
        ys, xs = torch.meshgrid(
            torch.arange(cells, dtype=torch.float32) + 0.5,
            torch.arange(cells, dtype=torch.float32) + 0.5,
            indexing="ij",
        )
        centres.append(torch.stack((xs.reshape(-1), ys.reshape(-1))))
        scales.append(torch.full((cells * cells,), float(stride)))
    return torch.cat(centres, dim=1).unsqueeze(0), torch.cat(scales).unsqueeze(0)


class Detect(nn.Module):
    """Box (DFL) and class branches per level; decodes to ``[B, 4 + C, A]`` in float32."""

    def __init__(
        self,
        channels: Sequence[int],
        box_hidden: int,
        cls_hidden: int,
        num_classes: int,
        reg_max: int,
        image_size: int,
    ) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.reg_max = reg_max
        self.cv2 = nn.ModuleList(
            nn.Sequential(
                ConvSiLU(c, box_hidden, 3),
                ConvSiLU(box_hidden, box_hidden, 3),
                nn.Conv2d(box_hidden, 4 * reg_max, 1),
            )
            for c in channels
        )
        self.cv3 = nn.ModuleList(
            nn.Sequential(
                ConvSiLU(c, cls_hidden, 3),
                ConvSiLU(cls_hidden, cls_hidden, 3),
                nn.Conv2d(cls_hidden, num_classes, 1),
            )
            for c in channels
        )
        # DFL: expectation over reg_max bins; the weight (0..reg_max-1) is loaded from the file.
        self.dfl = nn.Module()
        self.dfl.conv = nn.Conv2d(reg_max, 1, 1, bias=False)
        anchors, strides = _anchor_grid(image_size, STRIDES[: len(channels)])
        self.register_buffer("anchors", anchors, persistent=False)
        self.register_buffer("strides", strides, persistent=False)

    def forward(self, feats: Sequence[torch.Tensor]) -> torch.Tensor:
        batch = feats[0].shape[0]
        box = torch.cat([head(x).flatten(2) for head, x in zip(self.cv2, feats, strict=True)], 2)
        cls = torch.cat([head(x).flatten(2) for head, x in zip(self.cv3, feats, strict=True)], 2)
        count = box.shape[2]
        # float32 from here on (see the module docstring); anchors, strides and the DFL bins
        # are small integers or halves, exact in fp16, so casting them back loses nothing.
        bins = box.float().view(batch, 4, self.reg_max, count).transpose(2, 1).softmax(1)
        dist = functional.conv2d(bins, self.dfl.conv.weight.float()).view(batch, 4, count)
        left_top, right_bottom = dist.split((2, 2), dim=1)
        anchors = self.anchors.float()
        x1y1 = anchors - left_top
        x2y2 = anchors + right_bottom
        boxes = torch.cat(((x1y1 + x2y2) / 2, x2y2 - x1y1), dim=1) * self.strides.float()
        return torch.cat((boxes, cls.float().sigmoid()), dim=1)


class YoloV8(nn.Module):
    """The plain model: float ``[B, 3, S, S]`` RGB 0..1 -> ``[B, 4 + C, A]`` float32."""

    def __init__(self, layers: Mapping[int, nn.Module], detect: Detect) -> None:
        super().__init__()
        # Indexed as Ultralytics' ``model.N`` so state-dict keys equal the ONNX initializer names.
        self.model = nn.ModuleList(layers.get(i, nn.Identity()) for i in range(_DETECT))
        self.model.append(detect)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        m = self.model
        x = m[2](m[1](m[0](x)))
        p3 = m[4](m[3](x))
        p4 = m[6](m[5](p3))
        p5 = m[9](m[8](m[7](p4)))
        up = functional.interpolate(p5, scale_factor=2.0, mode="nearest")
        n4 = m[12](torch.cat((up, p4), dim=1))
        up = functional.interpolate(n4, scale_factor=2.0, mode="nearest")
        out3 = m[15](torch.cat((up, p3), dim=1))
        out4 = m[18](torch.cat((m[16](out3), n4), dim=1))
        out5 = m[21](torch.cat((m[19](out4), p5), dim=1))
        return m[_DETECT]((out3, out4, out5))


def read_onnx(path: str | Path) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """Weights (``model.*`` initializers, the served graph's ``yolo/`` prefix dropped) and
    metadata of a plain or served YOLOv8 ONNX file, or of the ``.npz`` that
    ``objectvision_inference.triton.export_weights`` writes from one."""
    if str(path).endswith(".npz"):
        with np.load(str(path)) as saved:
            metadata = json.loads(str(saved[METADATA_ENTRY]))
            return {k: saved[k] for k in saved.files if k != METADATA_ENTRY}, metadata
    # Imported here: the Triton stub on a GPU box runs numpy 1.26, which the onnx package's
    # ml_dtypes (built for numpy 2) refuses; the stub reads the .npz instead.
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(path))
    weights = {}
    for init in model.graph.initializer:
        name = init.name.removeprefix(SERVED_PREFIX)
        if name.startswith("model."):
            weights[name] = numpy_helper.to_array(init)
    return weights, {p.key: p.value for p in model.metadata_props}


def _shape(weights: Mapping[str, np.ndarray], name: str) -> tuple[int, ...]:
    if name not in weights:
        raise ValueError(f"{name} missing: not a YOLOv8 detect model exported by Ultralytics?")
    return tuple(weights[name].shape)


def _c2f(weights: Mapping[str, np.ndarray], index: int) -> C2f:
    prefix = f"model.{index}."
    hidden2, c_in = _shape(weights, prefix + "cv1.conv.weight")[:2]
    c_out = _shape(weights, prefix + "cv2.conv.weight")[0]
    blocks = {
        int(m.group(1)) for k in weights if k.startswith(prefix) for m in [_M_INDEX.search(k)] if m
    }
    return C2f(c_in, c_out, hidden2 // 2, len(blocks), _C2F_SHORTCUT[index])


def build_yolov8(weights: Mapping[str, np.ndarray], image_size: int = IMAGE_SIZE) -> YoloV8:
    """The module with its shapes taken from, and every parameter loaded from, ``weights``."""
    layers: dict[int, nn.Module] = {}
    for index in _DOWNSAMPLE:
        c_out, c_in, kernel, _ = _shape(weights, f"model.{index}.conv.weight")
        layers[index] = ConvSiLU(c_in, c_out, kernel, stride=2)
    for index in _C2F_SHORTCUT:
        layers[index] = _c2f(weights, index)
    hidden, c_in = _shape(weights, f"model.{_SPPF}.cv1.conv.weight")[:2]
    layers[_SPPF] = SPPF(c_in, hidden, _shape(weights, f"model.{_SPPF}.cv2.conv.weight")[0])
    head = f"model.{_DETECT}."
    levels = [_shape(weights, f"{head}cv2.{i}.0.conv.weight")[1] for i in range(len(STRIDES))]
    detect = Detect(
        levels,
        box_hidden=_shape(weights, f"{head}cv2.0.0.conv.weight")[0],
        cls_hidden=_shape(weights, f"{head}cv3.0.0.conv.weight")[0],
        num_classes=_shape(weights, f"{head}cv3.0.2.weight")[0],
        reg_max=_shape(weights, f"{head}dfl.conv.weight")[1],
        image_size=image_size,
    )
    model = YoloV8(layers, detect)
    state = {name: torch.from_numpy(np.array(value)) for name, value in weights.items()}
    # strict: every module parameter comes from the file and every file weight is used.
    model.load_state_dict(state, strict=True)
    return model.eval()


class ServedModel(nn.Module):
    """``prepare_model``'s served graph: uint8 ``[B, S, S, 3]`` RGB -> float32 ``[B, K, 6]``."""

    def __init__(
        self,
        core: YoloV8,
        *,
        top_k: int = DEFAULT_TOP_K,
        min_score: float = DEFAULT_MIN_SCORE,
        half: bool = False,
    ) -> None:
        super().__init__()
        self.core = core.half() if half else core
        self.dtype = torch.float16 if half else torch.float32
        self.top_k = top_k
        self.min_score = min_score

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        # Cast, / 255, NHWC -> NCHW: the permuted view is channels_last in memory already.
        x = images.permute(0, 3, 1, 2).to(self.dtype).div(255.0)
        raw = self.core(x)
        centre, size = raw[:, 0:2], raw[:, 2:4] * 0.5
        score, cls = raw[:, 4:].max(dim=1, keepdim=True)  # first max on ties, like ArgMax
        rows = torch.cat((centre - size, centre + size, score, cls.to(raw.dtype)), dim=1)
        # A stable descending sort: ties keep the lower anchor index first, as ONNX TopK does.
        top_score, top_index = torch.sort(score, dim=2, descending=True, stable=True)
        top_score, top_index = top_score[:, :, : self.top_k], top_index[:, :, : self.top_k]
        picked = rows.gather(2, top_index.expand(-1, rows.shape[1], -1))
        kept = torch.where(top_score >= self.min_score, picked, torch.zeros_like(picked))
        return kept.transpose(1, 2).contiguous()


def served_settings(metadata: Mapping[str, str]) -> tuple[int, float]:
    """(top_k, min_score) of a served file's metadata, else the prepare_model defaults."""
    text = metadata.get(SERVED_METADATA_KEY)
    if not text:
        return DEFAULT_TOP_K, DEFAULT_MIN_SCORE
    served = json.loads(text)
    return int(served["top_k"]), float(served["min_score"])


def load_served_model(
    path: str | Path,
    *,
    device: str | torch.device = "cpu",
    half: bool = False,
    channels_last: bool | None = None,
    top_k: int | None = None,
    min_score: float | None = None,
) -> ServedModel:
    """A ``ServedModel`` from a plain or served ONNX file, in eval mode on ``device``.

    K and min_score default to the served file's own (its ``objectvision_served`` metadata),
    so the GPU flavour answers exactly like the file it is given. ``channels_last`` defaults
    to on for CUDA, where cuDNN's NHWC kernels are the fast ones in fp16.
    """
    weights, metadata = read_onnx(path)
    default_k, default_min = served_settings(metadata)
    model = ServedModel(
        build_yolov8(weights),
        top_k=default_k if top_k is None else top_k,
        min_score=default_min if min_score is None else min_score,
        half=half,
    )
    target = torch.device(device)
    model = model.to(target)
    if channels_last if channels_last is not None else target.type == "cuda":
        model = model.to(memory_format=torch.channels_last)
    return model.eval()


def padded_size(count: int, sizes: Sequence[int]) -> int:
    """The smallest captured batch size that holds ``count`` images (sizes sorted ascending)."""
    for size in sizes:
        if size >= count:
            return size
    raise ValueError(f"batch of {count} is larger than the largest captured size {sizes[-1]}")


class BatchRunner:
    """A ``ServedModel`` at fixed batch sizes: on CUDA each size is one captured CUDA graph.

    Why: a captured graph replays the ~250 kernels of a forward pass with one launch, so batch
    1 is no longer bound by Python dispatch. A batch is padded to the next captured size (the
    pad rows keep whatever the buffer held; their outputs are dropped) and a batch larger than
    the largest size runs in chunks. Without CUDA (or ``graphs=False``) the same buffers and
    padding are used with eager calls, so the CPU tests exercise this path too.
    """

    def __init__(
        self,
        model: ServedModel,
        sizes: Sequence[int],
        *,
        graphs: bool | None = None,
        warmup: int = 3,
        image_size: int = IMAGE_SIZE,
    ) -> None:
        if not sizes or min(sizes) < 1:
            raise ValueError(f"batch sizes must be positive, got {list(sizes)}")
        self.model = model
        self.sizes = sorted(set(sizes))
        self.device = next(model.parameters()).device
        self.graphs_enabled = self.device.type == "cuda" if graphs is None else graphs
        self.inputs: dict[int, torch.Tensor] = {}
        self.outputs: dict[int, torch.Tensor] = {}
        self.graphs: dict[int, torch.cuda.CUDAGraph] = {}
        with torch.inference_mode():
            for size in self.sizes:
                self.inputs[size] = torch.full(
                    (size, image_size, image_size, 3), 114, dtype=torch.uint8, device=self.device
                )
        if self.graphs_enabled:
            self._capture(warmup)

    def _capture(self, warmup: int) -> None:
        """Warm up (cuDNN picks its kernels) on a side stream, then capture largest first, all
        graphs in one memory pool (they never replay at the same time)."""
        torch.backends.cudnn.benchmark = True
        side = torch.cuda.Stream(self.device)
        side.wait_stream(torch.cuda.current_stream(self.device))
        with torch.cuda.stream(side), torch.inference_mode():
            for size in reversed(self.sizes):
                for _ in range(warmup):
                    self.model(self.inputs[size])
        torch.cuda.current_stream(self.device).wait_stream(side)
        torch.cuda.synchronize(self.device)
        pool = torch.cuda.graph_pool_handle()
        for size in reversed(self.sizes):
            graph = torch.cuda.CUDAGraph()
            with torch.inference_mode(), torch.cuda.graph(graph, pool=pool):
                self.outputs[size] = self.model(self.inputs[size])
            self.graphs[size] = graph
        torch.cuda.synchronize(self.device)

    @torch.inference_mode()
    def run_on_device(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 ``[n, S, S, 3]`` on this runner's device -> float32 ``[n, K, 6]`` left on the
        device (the encoded-image pipeline selects there; only final boxes go to the host).

        The result is a view of the graph's static output: read it before the next call.
        """
        count = images.shape[0]
        largest = self.sizes[-1]
        if count > largest:
            return torch.cat([self.run_on_device(chunk).clone() for chunk in images.split(largest)])
        size = padded_size(count, self.sizes)
        static = self.inputs[size]
        static[:count].copy_(images, non_blocking=True)
        if self.graphs_enabled:
            self.graphs[size].replay()
            return self.outputs[size][:count]
        return self.model(static)[:count]

    @torch.inference_mode()
    def __call__(self, images: torch.Tensor | Sequence[torch.Tensor]) -> torch.Tensor:
        """uint8 ``[n, S, S, 3]`` (any device), or several such parts (the requests of one
        dynamic batch, copied straight into the device buffer) -> float32 ``[n, K, 6]`` on the
        CPU."""
        parts = [images] if isinstance(images, torch.Tensor) else list(images)
        count = sum(part.shape[0] for part in parts)
        largest = self.sizes[-1]
        if count > largest:
            whole = parts[0] if len(parts) == 1 else torch.cat(parts)
            return torch.cat([self(chunk) for chunk in whole.split(largest)])
        size = padded_size(count, self.sizes)
        static = self.inputs[size]
        offset = 0
        for part in parts:
            static[offset : offset + part.shape[0]].copy_(part, non_blocking=True)
            offset += part.shape[0]
        if self.graphs_enabled:
            self.graphs[size].replay()
            result = self.outputs[size]
        else:
            result = self.model(static)
        return result[:count].to("cpu")
