"""Receiving an uploaded video: streamed to a scratch file, judged before it is decoded.

The bytes arrive in chunks and go straight to disk (never all in memory); the container is
sniffed from the first few KiB, so a file that is not MP4, MOV or WebM is refused after its
first chunk; the byte limit is enforced as the bytes come. Then the probe (in a sandboxed
child process, ADR 0040) opens the file with that container's demuxer only and checks codec,
frame size and duration. A
refused upload leaves nothing behind: the scratch file is removed by whoever raised.
"""

import asyncio
from collections.abc import AsyncIterator
from concurrent.futures import Executor
from pathlib import Path
from typing import BinaryIO

from detection_service.sandbox.limits import SandboxLimits
from detection_service.video.probe import (
    SNIFF_BYTES,
    Sampling,
    VideoContainer,
    VideoLimits,
    VideoProbe,
    sniff_container,
)
from detection_service.video.sandbox import probe_in_sandbox
from objectvision_common.errors import InvalidArgument, PayloadTooLarge
from objectvision_common.sizes import readable_size


def too_large(size: int, limits: VideoLimits) -> PayloadTooLarge:
    return PayloadTooLarge(
        f"the video is {'over ' if size > limits.max_bytes else ''}{readable_size(size)}; at most"
        f" {readable_size(limits.max_bytes)} per video are accepted"
    )


async def receive(
    chunks: AsyncIterator[bytes], *, scratch: Path, limits: VideoLimits
) -> tuple[VideoContainer, int]:
    """Write the upload to `scratch`; its container and size. Raises (leaving the scratch
    file for the caller to remove) on a file that is not a supported video or too large."""
    size = 0
    head = b""
    container: VideoContainer | None = None
    file: BinaryIO = await asyncio.to_thread(scratch.open, "wb")
    try:
        async for chunk in chunks:
            size += len(chunk)
            if size > limits.max_bytes:
                raise too_large(size, limits)
            if container is None:
                head += chunk[: SNIFF_BYTES - len(head)]
                if len(head) >= SNIFF_BYTES:
                    container = sniff_container(head)
            await asyncio.to_thread(file.write, chunk)
        if size == 0:
            raise InvalidArgument("the video file is empty")
        if container is None:
            container = sniff_container(head)
        await asyncio.to_thread(file.flush)
    finally:
        await asyncio.to_thread(file.close)
    return container, size


async def inspect(
    scratch: Path,
    container: VideoContainer,
    *,
    limits: VideoLimits,
    sampling: Sampling,
    sandbox: SandboxLimits,
    executor: Executor,
) -> VideoProbe:
    """Codec, frame size, duration and frame count from the container (no decoding), read
    by a sandboxed child (ADR 0040) that a CPU-pool thread waits on."""
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(
        executor, probe_in_sandbox, scratch, container, limits, sampling, sandbox
    )
