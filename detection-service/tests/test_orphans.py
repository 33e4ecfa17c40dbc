"""Stored images nothing refers to are removed after a grace period; referenced ones never."""

import os
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, Counter
from sqlalchemy.ext.asyncio import AsyncEngine

from detection_service.images.models import images
from detection_service.images.orphans import OrphanSweeper
from detection_service.images.storage import LocalDirectoryStorage
from objectvision_common.db import create_engine_for, session_factory
from objectvision_devstack.pytest_plugin import Infrastructure

GRACE_SECONDS = 3600.0


@pytest.fixture
async def engine(migrated: Infrastructure) -> AsyncIterator[AsyncEngine]:
    engine = create_engine_for(migrated.database_url, pool_size=2)
    yield engine
    await engine.dispose()


def _age(storage: LocalDirectoryStorage, key: str, seconds: float) -> None:
    path = storage.root / key[:2] / key
    past = time.time() - seconds
    os.utime(path, (past, past))


async def _refer_to(engine: AsyncEngine, key: str) -> None:
    async with engine.begin() as connection:
        await connection.execute(
            images.insert().values(
                id=uuid.uuid4(),
                user_id=f"user-{uuid.uuid4().hex}",
                storage_key=key,
                content_type="image/jpeg",
                size_bytes=3,
                processed=False,
                created_at=datetime.now(UTC),
            )
        )


def _sweeper(
    engine: AsyncEngine, storage: LocalDirectoryStorage
) -> tuple[OrphanSweeper, CollectorRegistry]:
    registry = CollectorRegistry()
    sweeper = OrphanSweeper(
        sessions=session_factory(engine),
        storage=storage,
        grace_s=GRACE_SECONDS,
        interval_s=3600,
        removed=Counter("orphans_removed", "Objects removed.", registry=registry),
    )
    return sweeper, registry


async def test_only_old_unreferenced_objects_are_removed(
    engine: AsyncEngine, tmp_path: Path
) -> None:
    storage = LocalDirectoryStorage(tmp_path / "objects")
    old_orphan = await storage.put(b"old")
    young_orphan = await storage.put(b"new")
    old_referenced = await storage.put(b"kept")
    await _refer_to(engine, old_referenced)
    for key in (old_orphan, old_referenced):
        _age(storage, key, GRACE_SECONDS + 60)
    sweeper, registry = _sweeper(engine, storage)

    assert await sweeper.sweep() == 1

    assert registry.get_sample_value("orphans_removed_total") == 1
    assert await storage.get(old_referenced) == b"kept"
    assert await storage.get(young_orphan) == b"new"
    assert await storage.keys_older_than(GRACE_SECONDS) == [old_referenced]
    assert await sweeper.sweep() == 0


async def test_a_temporary_file_left_by_a_crashed_write_is_cleared(
    engine: AsyncEngine, tmp_path: Path
) -> None:
    storage = LocalDirectoryStorage(tmp_path / "objects")
    key = uuid.uuid4().hex
    leftover = storage.root / key[:2] / f".{key}.tmp"
    leftover.parent.mkdir(parents=True)
    leftover.write_bytes(b"half an image")
    past = time.time() - GRACE_SECONDS - 60
    os.utime(leftover, (past, past))
    sweeper, _ = _sweeper(engine, storage)

    await sweeper.sweep()

    assert not leftover.exists()


async def test_a_sweep_over_an_empty_or_missing_store_removes_nothing(
    engine: AsyncEngine, tmp_path: Path
) -> None:
    sweeper, _ = _sweeper(engine, LocalDirectoryStorage(tmp_path / "never-written"))
    assert await sweeper.sweep() == 0


async def test_the_service_runs_the_sweep_beside_its_server(detection) -> None:
    assert detection.service.orphans in detection.service.background()
