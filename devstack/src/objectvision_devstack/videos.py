"""Short test videos the suites make themselves, from still images (PyAV, which the
detection service depends on): so a test knows exactly which frame shows what, and when.

`make_video` shows each scene's image for its number of frames at `fps`, letterboxed onto one
canvas size, encoded with the codec and container asked for. `panned` moves one image across
the canvas a few pixels a frame, so that what it shows moves as in a camera's pan: what
tracking tests follow.
"""

from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np


def letterboxed(image: Path, width: int, height: int) -> np.ndarray:
    """The image scaled to fit width x height (aspect kept), centred on grey."""
    picture = cv2.imread(str(image), cv2.IMREAD_COLOR)
    if picture is None:
        raise FileNotFoundError(image)
    scale = min(width / picture.shape[1], height / picture.shape[0])
    resized = cv2.resize(
        picture, (round(picture.shape[1] * scale), round(picture.shape[0] * scale))
    )
    canvas = np.full((height, width, 3), 114, dtype=np.uint8)
    top = (height - resized.shape[0]) // 2
    left = (width - resized.shape[1]) // 2
    canvas[top : top + resized.shape[0], left : left + resized.shape[1]] = resized
    return canvas


def panned(
    image: Path, frames: int, *, step: int, width: int = 640, height: int = 480
) -> list[np.ndarray]:
    """``frames`` frames of the letterboxed image, each shifted ``step`` pixels further right
    (grey fills what it uncovers)."""
    still = letterboxed(image, width, height)
    shots = []
    for n in range(frames):
        shifted = np.full_like(still, 114)
        offset = n * step
        shifted[:, offset:] = still[:, : width - offset]
        shots.append(shifted)
    return shots


def make_video(
    path: Path,
    scenes: Sequence[tuple[Path, int]],
    *,
    fps: int = 10,
    width: int = 640,
    height: int = 480,
    codec: str = "libx264",
    container: str = "mp4",
    pix_fmt: str = "yuv420p",
) -> Path:
    """Write the video: each (image, frame count) of `scenes` in turn, at `fps`."""
    frames = [letterboxed(image, width, height) for image, count in scenes for _ in range(count)]
    return write_video(path, frames, fps=fps, codec=codec, container=container, pix_fmt=pix_fmt)


def write_video(
    path: Path,
    frames: Sequence[np.ndarray],
    *,
    fps: int = 10,
    codec: str = "libx264",
    container: str = "mp4",
    pix_fmt: str = "yuv420p",
) -> Path:
    """Write ``frames`` (BGR, all of one size) as a video at ``fps``."""
    height, width = frames[0].shape[:2]
    with av.open(str(path), mode="w", format=container) as output:
        stream = output.add_stream(codec, rate=Fraction(fps))
        if not isinstance(stream, av.VideoStream):
            raise ValueError(f"{codec} is not a video codec")
        stream.width, stream.height, stream.pix_fmt = width, height, pix_fmt
        for index, frame_bgr in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(frame_bgr, format="bgr24")
            frame.pts = index
            frame.time_base = Fraction(1, fps)
            for packet in stream.encode(frame):
                output.mux(packet)
        for packet in stream.encode():
            output.mux(packet)
    return path
