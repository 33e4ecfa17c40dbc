"""The benchmark's image set: the same files, in the same order, for every stage."""

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bench.pipeline import decode, letterbox

SUFFIXES = {".jpg", ".jpeg", ".png"}


@dataclass(frozen=True)
class Image:
    name: str
    data: bytes
    content_type: str


def load_images(directory: Path) -> list[Image]:
    """bus.jpg, zidane.jpg and coco8/images/*/*.jpg (or whatever images the folder holds),
    sorted by path so every run cycles through them in the same order."""
    paths = sorted(p for p in directory.rglob("*") if p.suffix.lower() in SUFFIXES)
    if not paths:
        raise FileNotFoundError(f"no .jpg/.png images under {directory}")
    return [
        Image(
            name=p.name,
            data=p.read_bytes(),
            content_type="image/png" if p.suffix.lower() == ".png" else "image/jpeg",
        )
        for p in paths
    ]


def letterboxed(images: list[Image]) -> list[np.ndarray]:
    """Each image as the served model's input: [1, 640, 640, 3] uint8 RGB, letterboxed."""
    return [letterbox(decode(image.data))[0][np.newaxis] for image in images]
