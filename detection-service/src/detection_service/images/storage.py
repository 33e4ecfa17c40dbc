"""Where uploaded images live: a small object-store interface and a local-directory backend.

Keys are random and chosen here, never derived from a caller's filename, so an upload cannot
name a path; a key that is not one of ours is refused before it touches the filesystem.
"""

import asyncio
import logging
import os
import re
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Protocol

logger = logging.getLogger(__name__)

CHUNK_BYTES = 64 * 1024
_KEY = re.compile(r"[0-9a-f]{32}")


class ObjectNotFoundError(LookupError):
    pass


class ObjectStorage(Protocol):
    async def put(self, data: bytes) -> str:
        """Store the bytes under a new key and return it."""
        ...

    async def get(self, key: str) -> bytes: ...

    def open(self, key: str, *, chunk_bytes: int = CHUNK_BYTES) -> AsyncIterator[bytes]:
        """The object in chunks, without holding it all in memory."""
        ...

    async def delete(self, key: str) -> None:
        """Remove the object; a missing one is not an error."""
        ...

    async def keys_older_than(self, age_seconds: float) -> list[str]:
        """Keys of objects written more than `age_seconds` ago (candidates for a sweep)."""
        ...

    def scratch_path(self) -> Path:
        """A fresh local path to write a large object to piece by piece (a video upload, an
        annotated video) before `put_file` takes it in; left-over scratch files are swept."""
        ...

    async def put_file(self, path: Path) -> str:
        """Take a finished scratch file in under a new key (the file is moved, not copied)."""
        ...

    async def local_path(self, key: str) -> Path:
        """A local, seekable file with the object's bytes, for readers that need one (a video
        demuxer); an object-store backend would download it first."""
        ...


class LocalDirectoryStorage:
    """Objects as files under one directory, fanned out by the first two characters of the key."""

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()

    def _path(self, key: str) -> Path:
        if not _KEY.fullmatch(key):
            raise ObjectNotFoundError(key)
        return self.root / key[:2] / key

    def _write(self, path: Path, data: bytes) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp")
        with tmp.open("wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        tmp.replace(path)

    async def put(self, data: bytes) -> str:
        key = uuid.uuid4().hex
        await asyncio.to_thread(self._write, self._path(key), data)
        return key

    async def get(self, key: str) -> bytes:
        path = self._path(key)
        try:
            return await asyncio.to_thread(path.read_bytes)
        except FileNotFoundError:
            raise ObjectNotFoundError(key) from None

    async def open(self, key: str, *, chunk_bytes: int = CHUNK_BYTES) -> AsyncIterator[bytes]:
        path = self._path(key)
        try:
            file = await asyncio.to_thread(path.open, "rb")
        except FileNotFoundError:
            raise ObjectNotFoundError(key) from None
        try:
            while chunk := await asyncio.to_thread(file.read, chunk_bytes):
                yield chunk
        finally:
            file.close()

    async def delete(self, key: str) -> None:
        await asyncio.to_thread(self._path(key).unlink, missing_ok=True)

    def scratch_path(self) -> Path:
        # A fan-out directory of its own whose names the sweep treats as temporary files.
        path = self.root / "scratch" / f".{uuid.uuid4().hex}.tmp"
        path.parent.mkdir(parents=True, exist_ok=True)
        return path

    def _adopt(self, source: Path, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        with source.open("rb") as file:
            os.fsync(file.fileno())
        source.replace(path)

    async def put_file(self, path: Path) -> str:
        key = uuid.uuid4().hex
        await asyncio.to_thread(self._adopt, path, self._path(key))
        return key

    async def local_path(self, key: str) -> Path:
        path = self._path(key)
        if not await asyncio.to_thread(path.is_file):
            raise ObjectNotFoundError(key)
        return path

    async def keys_older_than(self, age_seconds: float) -> list[str]:
        return await asyncio.to_thread(self._scan_older_than, time.time() - age_seconds)

    def _scan_older_than(self, cutoff: float) -> list[str]:
        """Also removes temporary files a crash left behind mid-write."""
        keys: list[str] = []
        if not self.root.is_dir():
            return keys
        for fan_out in self.root.iterdir():
            if not fan_out.is_dir():
                continue
            for path in fan_out.iterdir():
                try:
                    modified = path.stat().st_mtime
                except FileNotFoundError:
                    continue
                if modified >= cutoff:
                    continue
                if _KEY.fullmatch(path.name):
                    keys.append(path.name)
                elif path.name.startswith(".") and path.name.endswith(".tmp"):
                    path.unlink(missing_ok=True)
        return keys


async def discard(storage: ObjectStorage, keys: list[str]) -> None:
    """Best-effort removal of objects whose database rows were never committed."""
    for key in keys:
        try:
            await storage.delete(key)
        except OSError:
            logger.warning("could not delete an unreferenced object", extra={"key": key})
