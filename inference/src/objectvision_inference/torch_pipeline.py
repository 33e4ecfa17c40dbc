"""The contract on a GPU: nvJPEG decode, letterbox, CUDA-graph YOLOv8n and NMS on the device.

Only the encoded bytes go to the device and only the final boxes come back. Per batch:

1. JPEGs without an EXIF rotation are decoded together by nvJPEG
   (``torchvision.io.decode_jpeg(list, device="cuda")``); PNG, WebP, BMP and rotated JPEGs
   are decoded on the CPU by OpenCV (which applies the rotation) and join the batch.
   Before nvJPEG sees a file, Pillow reads its size from the header (no decoding) for the
   pixel limit, and the decoded size must equal what Pillow read.
2. Each image is resized bilinearly (half-pixel centres, as OpenCV's INTER_LINEAR) on the
   device into one padded ``[B, 640, 640, 3]`` batch.
3. ``torch_yolo.BatchRunner`` replays the captured graph of the padded batch size.
4. Per-image confidence and class filters, then one ``batched_nms`` over the whole batch
   (group = image x class), the per-image cap, and the mapping back to original pixels.

On a machine without torchvision's compiled ops (the CPU test environment) the decode falls
back to OpenCV and the NMS to ``greedy_nms`` below, with the same semantics; the GPU run uses
torchvision's kernels (``bench/gpu.sh`` checks the answers there).
"""

from __future__ import annotations

import io
import time
from collections.abc import Callable, Sequence

import numpy as np
import torch
from torch.nn import functional

from objectvision_inference import cpu_pipeline, torch_yolo
from objectvision_inference import detect_contract as contract

try:  # torchvision's compiled image and NMS ops (CUDA builds only on the GPU box)
    from torchvision.io import ImageReadMode
    from torchvision.io import decode_jpeg as _decode_jpeg
    from torchvision.ops import batched_nms as _batched_nms

    torch.ops.torchvision.nms  # noqa: B018 - raises when the compiled ops did not load
except (ImportError, AttributeError, RuntimeError, OSError):
    _decode_jpeg = None
    _batched_nms = None

try:
    from PIL import Image as PilImage

    _HAVE_PILLOW = True
except ImportError:
    _HAVE_PILLOW = False

_JPEG_MAGIC = b"\xff\xd8\xff"
# Class ids are below this (COCO has 80): one NMS group per image x class.
_MAX_CLASSES = 1024
_EXIF_ORIENTATION = 0x0112


def greedy_nms(
    boxes: torch.Tensor, scores: torch.Tensor, groups: torch.Tensor, iou: float
) -> torch.Tensor:
    """``torchvision.ops.batched_nms`` semantics in plain torch (the CPU fallback)."""
    if boxes.numel() == 0:
        return torch.zeros(0, dtype=torch.int64, device=boxes.device)
    shifted = boxes + groups.to(boxes.dtype)[:, None] * (boxes.max() + 1)
    order = torch.sort(scores, descending=True, stable=True).indices
    shifted = shifted[order]
    x1, y1, x2, y2 = shifted.unbind(1)
    area = (x2 - x1).clamp(min=0) * (y2 - y1).clamp(min=0)
    inter_w = (torch.minimum(x2[:, None], x2) - torch.maximum(x1[:, None], x1)).clamp(min=0)
    inter_h = (torch.minimum(y2[:, None], y2) - torch.maximum(y1[:, None], y1)).clamp(min=0)
    inter = inter_w * inter_h
    overlap = inter / (area[:, None] + area - inter + 1e-9) > iou
    alive = torch.ones(len(order), dtype=torch.bool, device=boxes.device)
    for index in range(len(order)):
        if alive[index]:
            alive[index + 1 :] &= ~overlap[index, index + 1 :]
    return order[alive]


def _jpeg_header(data: bytes) -> tuple[int, int, bool] | None:
    """(width, height, rotated) of a JPEG from Pillow's header read, None if Pillow cannot."""
    if not _HAVE_PILLOW:
        return None
    try:
        with PilImage.open(io.BytesIO(data)) as image:
            orientation = image.getexif().get(_EXIF_ORIENTATION, 1)
            return image.width, image.height, orientation not in (1, None)
    except Exception:  # any parse failure: let OpenCV decide on the CPU path
        return None


class TorchPipeline(contract.Pipeline):
    """One model instance's device state: the captured network and its buffers."""

    def __init__(
        self,
        runner: torch_yolo.BatchRunner,
        *,
        max_pixels: int,
        nvjpeg: bool | None = None,
        input_size: int = torch_yolo.IMAGE_SIZE,
    ) -> None:
        self.runner = runner
        self.device = runner.device
        self._max_pixels = max_pixels
        self._size = input_size
        cuda = self.device.type == "cuda"
        self.nvjpeg = (cuda and _decode_jpeg is not None) if nvjpeg is None else nvjpeg
        self._nms: Callable[..., torch.Tensor] = (
            _batched_nms if _batched_nms is not None else greedy_nms
        )

    def _decode(
        self, images: Sequence[bytes], expected: Sequence[tuple[int, int] | None]
    ) -> tuple[list[torch.Tensor | None], list[contract.ImageResult | None]]:
        """Per image a CHW uint8 RGB tensor on the device, or the refusal."""
        frames: list[torch.Tensor | None] = [None] * len(images)
        refused: list[contract.ImageResult | None] = [None] * len(images)
        on_device: list[int] = []
        sizes: dict[int, tuple[int, int]] = {}
        for index, data in enumerate(images):
            header = _jpeg_header(data) if self.nvjpeg and data[:3] == _JPEG_MAGIC else None
            if header is not None and not header[2]:
                width, height = header[0], header[1]
                if width * height > self._max_pixels:
                    refused[index] = contract.ImageResult.refused(contract.STATUS_TOO_LARGE)
                elif not contract.size_matches(expected[index], width, height):
                    refused[index] = contract.ImageResult.refused(
                        contract.STATUS_SIZE_MISMATCH, width, height
                    )
                else:
                    on_device.append(index)
                    sizes[index] = (width, height)
                continue
            image, refusal = cpu_pipeline.decode_checked(data, self._max_pixels, expected[index])
            if image is None:
                refused[index] = refusal
                continue
            rgb = torch.from_numpy(np.ascontiguousarray(image[:, :, ::-1])).permute(2, 0, 1)
            frames[index] = rgb.to(self.device, non_blocking=True)
        if on_device and _decode_jpeg is not None:
            encoded = [torch.frombuffer(images[i], dtype=torch.uint8) for i in on_device]
            try:
                decoded = _decode_jpeg(encoded, mode=ImageReadMode.RGB, device=self.device)
            except RuntimeError:  # one bad file fails nvJPEG's batch: retry one by one
                decoded = [self._decode_one(data) for data in encoded]
            for index, frame in zip(on_device, decoded, strict=True):
                if frame is None or (frame.shape[2], frame.shape[1]) != sizes[index]:
                    refused[index] = contract.ImageResult.refused(contract.STATUS_UNDECODABLE)
                else:
                    frames[index] = frame
        return frames, refused

    def _decode_one(self, data: torch.Tensor) -> torch.Tensor | None:
        assert _decode_jpeg is not None
        try:
            return _decode_jpeg([data], mode=ImageReadMode.RGB, device=self.device)[0]
        except RuntimeError:
            return None

    def _letterbox(
        self, frames: Sequence[torch.Tensor]
    ) -> tuple[torch.Tensor, list[contract.Letterbox]]:
        """One padded NHWC uint8 batch on the device, and each image's geometry."""
        size = self._size
        batch = torch.full(
            (len(frames), size, size, 3), contract.PAD_VALUE, dtype=torch.uint8, device=self.device
        )
        boxes = [contract.Letterbox.fit(int(f.shape[2]), int(f.shape[1]), size) for f in frames]
        # Frames of one size (a video stream's, a camera's) are resized in one call.
        by_shape: dict[tuple[int, int], list[int]] = {}
        for slot, frame in enumerate(frames):
            by_shape.setdefault((int(frame.shape[1]), int(frame.shape[2])), []).append(slot)
        for slots in by_shape.values():
            box = boxes[slots[0]]
            stacked = torch.stack([frames[slot] for slot in slots]).float()
            resized = functional.interpolate(
                stacked,
                size=(box.new_height, box.new_width),
                mode="bilinear",
                align_corners=False,
                antialias=False,
            )
            pixels = resized.round_().clamp_(0, 255).permute(0, 2, 3, 1).to(torch.uint8)
            index = torch.tensor(slots, device=self.device)
            top, left = box.top, box.left
            region = batch[:, top : top + box.new_height, left : left + box.new_width]
            region.index_copy_(0, index, pixels)
        return batch, boxes

    def _select(
        self,
        candidates: torch.Tensor,
        boxes: Sequence[contract.Letterbox],
        options: Sequence[contract.ImageOptions],
    ) -> list[np.ndarray]:
        """Per image its kept rows in original pixels (numpy), all on the device until the end.

        Why it is written this way: a batch holds a few hundred candidates, so the time goes to
        kernel launches and host syncs, not arithmetic. Per-image thresholds are tensors (no
        loop over images), one ``batched_nms`` covers the batch (one group per image x class,
        float64 boxes so that its coordinate offsets stay exact for any group number), and
        the answer comes back in one copy with its owners.
        """
        count = candidates.shape[0]
        device = candidates.device
        scores, classes = candidates[..., 4], candidates[..., 5].long()
        host = np.array(
            [
                (o.confidence, o.max_detections, b.left, b.top, b.scale, b.width, b.height)
                for o, b in zip(options, boxes, strict=True)
            ],
            dtype=np.float64,
        )
        per_image = torch.from_numpy(host).to(device, non_blocking=True)
        keep = (scores >= per_image[:, 0:1].to(scores.dtype)) & (scores > 0)
        if any(o.class_mask is not None for o in options):
            width = max(len(o.class_mask) for o in options if o.class_mask is not None)
            masks = np.ones((count, max(width, _MAX_CLASSES)), dtype=bool)
            for index, option in enumerate(options):
                if option.class_mask is not None:
                    masks[index, :] = False
                    masks[index, : len(option.class_mask)] = option.class_mask
            allowed = torch.from_numpy(masks).to(device, non_blocking=True)
            keep &= allowed.gather(1, classes.clamp(0, allowed.shape[1] - 1))
        image_index, slot = keep.nonzero(as_tuple=True)
        rows = candidates[image_index, slot]
        groups = image_index * _MAX_CLASSES + rows[:, 5].long()
        # batched_nms wants boxes and scores of one dtype.
        wide, confidence = rows[:, :4].double(), rows[:, 4].double()
        ious = sorted({o.iou for o in options})
        if len(ious) == 1:
            kept = self._nms(wide, confidence, groups, ious[0])
        else:
            per_iou = torch.tensor([o.iou for o in options], device=device)[image_index]
            parts = []
            for iou in ious:
                members = (per_iou == iou).nonzero(as_tuple=True)[0]
                picked = self._nms(wide[members], confidence[members], groups[members], iou)
                parts.append(members[picked])
            kept = torch.cat(parts)
            kept = kept[torch.sort(rows[kept, 4], descending=True, stable=True).indices]
        # Score descending within each image (batched_nms keeps that order), then the cap.
        kept = kept[torch.sort(image_index[kept], stable=True).indices]
        owner = image_index[kept]
        starts = torch.zeros(count + 1, dtype=torch.int64, device=device)
        starts[1:] = torch.bincount(owner, minlength=count).cumsum(0)
        rank = torch.arange(len(kept), device=device) - starts[owner]
        kept = kept[rank < per_image[owner, 1]]
        owner = image_index[kept]
        geometry = per_image[owner].float()
        final = rows[kept].clone()
        offset = geometry[:, 2:4].repeat(1, 2)
        final[:, :4] = (final[:, :4] - offset) / geometry[:, 4:5]
        final[:, :4] = torch.minimum(final[:, :4].clamp(min=0), geometry[:, 5:7].repeat(1, 2))
        answer = torch.cat([final, owner[:, None].float()], dim=1).cpu().numpy()
        counts = np.bincount(answer[:, 6].astype(np.int64), minlength=count)
        return list(np.split(answer[:, :6], np.cumsum(counts)[:-1]))

    @torch.inference_mode()
    def run(
        self, request: contract.ImageBatch
    ) -> tuple[list[contract.ImageResult], contract.StageMs]:
        images, options, expected = request
        started = time.perf_counter()
        cuda = self.device.type == "cuda"
        marks = [torch.cuda.Event(enable_timing=True) for _ in range(3)] if cuda else []
        if cuda:
            marks[0].record()
        frames, refused = self._decode(images, expected)
        live = [i for i, frame in enumerate(frames) if frame is not None]
        batch, boxes = self._letterbox([frames[i] for i in live])
        decoded = time.perf_counter()
        if cuda:
            marks[1].record()
        candidates = self.runner.run_on_device(batch) if live else batch.new_zeros((0, 1, 6))
        ran = time.perf_counter()
        if cuda:
            marks[2].record()
        kept = self._select(candidates, boxes, [options[i] for i in live]) if live else []
        results: list[contract.ImageResult] = []
        by_index = dict(zip(live, zip(boxes, kept, strict=True), strict=True))
        for index in range(len(images)):
            if index in by_index:
                box, rows = by_index[index]
                ok = contract.STATUS_OK
                results.append(contract.ImageResult(ok, box.width, box.height, rows))
            else:
                result = refused[index]
                assert result is not None
                results.append(result)
        done = time.perf_counter()
        if cuda:
            # Device time of decode + letterbox and of the network (no stall: _select's copy
            # already waited for both); selection is the rest of the wall time.
            prepare_ms, network_ms = (
                marks[0].elapsed_time(marks[1]),
                marks[1].elapsed_time(marks[2]),
            )
            select_ms = (done - started) * 1e3 - prepare_ms - network_ms
            return results, (prepare_ms, network_ms, max(0.0, select_ms))
        return results, contract.stage_times(started, decoded, ran, done)
