"""Removes stored images that no database row refers to.

An upload is written to storage before its row is committed (so a committed row always has
its bytes). If the process dies between the two, or a failed request could not delete what
it wrote, the bytes stay behind with nothing pointing at them; this sweep finds them. Only
objects older than a grace period are considered, so an upload whose transaction is still
open is never taken.

Deletions (images.service.remove) commit the removal of rows before they delete the objects,
so a crash between the two leaves the same kind of leftover, and this sweep is what finishes
such a deletion. The grace period counts from when an object was written, not from when its
rows went: an object deleted long after its upload is taken at the next sweep, one whose
upload is more recent than the grace period waits until it has passed. Either way a reader
never meets a row without its bytes, and the grace period that protects an upload in flight
is never shortened for a deletion.
"""

import asyncio
import logging

import sqlalchemy as sa
from prometheus_client import Counter
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from detection_service.images.models import images
from detection_service.images.storage import ObjectStorage
from detection_service.video.models import video_jobs
from objectvision_common.background import BackgroundLoop

logger = logging.getLogger(__name__)

# Keys per database round trip.
_CHUNK = 500


class OrphanSweeper(BackgroundLoop):
    """`sweep()` every `interval_s`. Stopping mid-sweep is harmless: each deletion stands
    alone and the query only reads."""

    cancel_on_stop = True

    def __init__(
        self,
        *,
        sessions: async_sessionmaker[AsyncSession],
        storage: ObjectStorage,
        grace_s: float,
        interval_s: float,
        removed: Counter,
    ) -> None:
        self._sessions = sessions
        self._storage = storage
        self._grace_s = grace_s
        self._interval_s = interval_s
        self._removed = removed

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self._interval_s)
            try:
                await self.sweep()
            except Exception:
                logger.exception("orphaned object sweep failed; next try in one interval")

    async def sweep(self) -> int:
        """Delete old unreferenced objects; returns how many were removed."""
        candidates = await self._storage.keys_older_than(self._grace_s)
        removed = 0
        for start in range(0, len(candidates), _CHUNK):
            chunk = candidates[start : start + _CHUNK]
            async with self._sessions() as session:
                referenced = set(
                    await session.scalars(
                        sa.select(images.c.storage_key).where(images.c.storage_key.in_(chunk))
                    )
                )
                # Video jobs keep their upload and their annotated video in the same storage.
                referenced.update(
                    await session.scalars(
                        sa.select(video_jobs.c.storage_key).where(
                            video_jobs.c.storage_key.in_(chunk)
                        )
                    )
                )
                referenced.update(
                    await session.scalars(
                        sa.select(video_jobs.c.annotated_key).where(
                            video_jobs.c.annotated_key.in_(chunk)
                        )
                    )
                )
            for key in chunk:
                if key in referenced:
                    continue
                await self._storage.delete(key)
                removed += 1
        if removed:
            self._removed.inc(removed)
            logger.info("removed orphaned objects", extra={"count": removed})
        return removed
