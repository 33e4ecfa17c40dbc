"""Serialize the DALI pipeline of ``yolov8n_preprocess`` (its ``1/model.dali``).

Usage: dali_letterbox.py OUTPUT [--max-batch 64]

Why DALI: decoding is the most expensive step per image on a CPU, and nvJPEG on the GPU (the
A100/H100 hardware JPEG engines where present) decodes a whole batch in one call; resizing and
padding on the same device leaves the letterboxed batch where the TensorRT engine reads it.

The letterbox is Ultralytics' (shared/models/README.md, detect_contract.Letterbox): scale the
longer side to 640 keeping the aspect ratio, bilinear without antialiasing (what cv2's
INTER_LINEAR does), pad to 640 x 640 with 114 around the centred image. The decoded shape goes
out too: the Python model maps boxes back and checks the caller's expected size with it.

Run with the DALI of the Triton image that will load the file (its DALI backend ships one under
/opt/tritonserver/backends/dali/wheel/dali): a pipeline serialized by one DALI release is not
guaranteed to load in another. nvidia.dali is imported only when serializing, so the module
compiles and lints where DALI is not installed.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

INPUT_SIZE = 640
PAD_VALUE = 114
# Triton's max_batch_size of yolov8n_preprocess; DALI refuses a batch above the pipeline's.
DEFAULT_MAX_BATCH = 64
# Host threads for the parts of decoding nvJPEG leaves to the CPU (Huffman decoding of the
# images the hardware engine does not take) and for slicing the padded input.
NUM_THREADS = 4
# Where the image sits in the padded square. Ultralytics pads floor(margin / 2) before it; a
# centred crop (0.5) rounds the anchor half away from zero, which put the odd pixel of an odd
# margin before the image instead (measured: a 425-row image started at row 108, not 107), so
# every box would come back one pixel off. 0.5 - 2**-11 rounds each margin 0..640 down, and
# the products are exact in float32 (11 + 10 significant bits), so no rounding mode can differ.
CROP_POS = 0.5 - 2**-11
# The names of the Triton inputs: the DALI backend feeds each external source by name.
INPUTS = ("encoded", "lengths")
# The Triton outputs, in the order the pipeline returns them: the DALI backend assigns the
# config's outputs to the pipeline's by position.
OUTPUTS = ("letterboxed", "shapes")


def build_pipeline(
    *, max_batch_size: int, device_id: int | None = 0, decoder: str = "mixed"
) -> Any:
    """The letterbox pipeline. Serializing it with a ``device_id`` needs CUDA (the DALI backend
    replaces the id with its instance's GPU when loading); ``decoder="cpu"`` with
    ``device_id=None`` runs the same steps on a host without a GPU, to check the arithmetic
    against the reference letterbox."""
    from nvidia.dali import fn, pipeline_def, types

    @pipeline_def(
        batch_size=max_batch_size,
        num_threads=NUM_THREADS,
        device_id=device_id,
        output_dtype=[types.UINT8, types.INT32],
        output_ndim=[3, 1],
    )
    def letterbox() -> tuple[Any, Any]:
        # Triton sends one [B, L] tensor: every file zero-padded to the batch's longest one.
        # The padding must go before decoding, or trailing zeros could make a file corrupt.
        encoded = fn.external_source(name=INPUTS[0], device="cpu", dtype=types.UINT8, ndim=1)
        lengths = fn.external_source(name=INPUTS[1], device="cpu", dtype=types.INT32, ndim=1)
        data = fn.slice(encoded, start=[0], shape=lengths, axes=[0])
        # adjust_orientation stated, not defaulted: a DALI that cannot apply the EXIF
        # orientation must fail here, not answer boxes for a rotated image.
        images = fn.decoders.image(
            data, device=decoder, output_type=types.RGB, adjust_orientation=True
        )
        shapes = fn.shapes(images, dtype=types.INT32)
        # subpixel_scale off: each axis maps the whole source onto its rounded size, as cv2
        # does; on, DALI keeps one exact scale and shifts the rows of the rounded axis by a
        # fraction of a pixel (measured: up to 44 levels off on a 641 x 213 image).
        resized = fn.resize(
            images,
            resize_longer=INPUT_SIZE,
            antialias=False,
            interp_type=types.INTERP_LINEAR,
            subpixel_scale=False,
        )
        boxed = fn.crop(
            resized,
            crop=(INPUT_SIZE, INPUT_SIZE),
            crop_pos_x=CROP_POS,
            crop_pos_y=CROP_POS,
            out_of_bounds_policy="pad",
            fill_values=PAD_VALUE,
        )
        return boxed, shapes

    return letterbox()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("output", type=Path, help="where to write model.dali")
    parser.add_argument("--max-batch", type=int, default=DEFAULT_MAX_BATCH)
    args = parser.parse_args(argv)
    if args.max_batch < 1:
        parser.error("--max-batch must be >= 1")

    import nvidia.dali

    pipeline = build_pipeline(max_batch_size=args.max_batch)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    # Through a temporary name: Triton, or a second writer, never reads half a file.
    partial = args.output.with_name(f".{args.output.name}.{os.getpid()}")
    pipeline.serialize(filename=str(partial))
    partial.replace(args.output)
    print(f"dali_letterbox: wrote {args.output} (DALI {nvidia.dali.__version__})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
