"""The service as a whole: schema matches the models, health, settings, the console script."""

import asyncio
import contextlib
import functools
import json
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import grpc
import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from grpc_health.v1 import health_pb2, health_pb2_grpc
from sqlalchemy import Engine, create_engine, text

from detection_service import outbox
from detection_service.config import DetectionSettings
from detection_service.database import SCHEMA, metadata
from detection_service.history import models as history_models
from detection_service.jobs import models as job_models
from detection_service.retention import models as retention_models
from detection_service.server import runner
from detection_service.sharing import models as sharing_models
from detection_service.usage import models as usage_models
from objectvision.v1 import detection_pb2
from objectvision_common.db import schema_revisions, sync_url, upgrade_to, upgrade_to_head
from objectvision_common.limits import MAX_DETECTIONS_LIMIT
from objectvision_devstack.databases import fresh_database
from objectvision_devstack.health import grpc_serving
from objectvision_devstack.processes import ManagedProcess, free_port


def _only_detection_schema(name: str | None, type_: str, parent_names: dict) -> bool:
    if type_ == "schema":
        return name == SCHEMA
    return not (type_ == "table" and name == "alembic_version")


def test_migrations_create_exactly_the_tables_the_models_describe(migrated):
    assert {
        outbox.OUTBOX,
        history_models.detections,
        job_models.jobs,
        usage_models.usage_days,
        usage_models.usage_quotas,
        retention_models.retention_periods,
        sharing_models.share_links,
        sharing_models.account_standings,
    } <= set(metadata.tables.values())
    engine = create_engine(sync_url(migrated.database_url))
    with engine.connect() as connection:
        context = MigrationContext.configure(
            connection,
            opts={
                "include_schemas": True,
                "include_name": _only_detection_schema,
                "compare_server_default": True,
            },
        )
        differences = compare_metadata(context, metadata)
    engine.dispose()
    assert differences == []


def test_migrating_twice_is_harmless(migrated):
    settings = DetectionSettings(_env_file=None, DATABASE_URL=migrated.database_url)
    migrations = runner().migrations
    assert migrations is not None
    runner().migrate(settings)
    runner().migrate(settings)
    state = schema_revisions(
        migrations_dir=migrations.directory,
        database_url=settings.database_url,
        schema=migrations.schema,
    )
    assert state.at_head and len(state.heads) == 1, state


@pytest.mark.parametrize("service", ["", "objectvision.v1.DetectionService"])
async def test_health_answers_serving(detection, service):
    health = health_pb2_grpc.HealthStub(detection.channel)
    reply = await health.Check(health_pb2.HealthCheckRequest(service=service), timeout=5)
    assert reply.status == health_pb2.HealthCheckResponse.SERVING


def test_settings_defaults_and_paths(tmp_path):
    settings = DetectionSettings(_env_file=None, OBJECTVISION_DATA_DIR=str(tmp_path))
    assert settings.grpc_port == 50052 and settings.metrics_port == 9102
    assert settings.objects_dir == tmp_path / "objects"
    assert settings.served_model_path == tmp_path / "models" / "yolov8n_served.onnx"
    assert (settings.confidence_threshold, settings.iou_threshold) == (0.25, 0.7)
    assert settings.job_stream == "detection:jobs"
    with pytest.raises(ValueError, match="CONFIDENCE_THRESHOLD"):
        DetectionSettings(_env_file=None, CONFIDENCE_THRESHOLD=0)


def test_the_default_max_detections_stays_within_what_a_request_may_ask():
    """MAX_DETECTIONS above the API's limit would answer more objects than any request may
    ask for; the service refuses to start with it."""
    assert DetectionSettings(_env_file=None, MAX_DETECTIONS=MAX_DETECTIONS_LIMIT).max_detections
    with pytest.raises(ValueError, match="MAX_DETECTIONS"):
        DetectionSettings(_env_file=None, MAX_DETECTIONS=MAX_DETECTIONS_LIMIT + 1)


def test_console_script_offers_serve_and_migrate():
    script = Path(sys.executable).with_name("objectvision-detection")
    usage = subprocess.run([script, "--help"], capture_output=True, text=True, check=True).stdout
    assert "serve" in usage and "migrate" in usage


async def test_stream_with_invalid_params_is_refused(detection, user, bus_jpg):
    async def frames():
        yield detection_pb2.Frame(
            sequence=1,
            image=detection_pb2.ImageInput(data=bus_jpg),
            params=detection_pb2.DetectionParams(classes=["unicorn"]),
        )

    with pytest.raises(grpc.aio.AioRpcError) as caught:
        async for _ in detection.stub.DetectStream(
            frames(), metadata=detection.metadata(user), timeout=30
        ):
            pass
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_serve_starts_and_stops_cleanly_on_sigterm(migrated, triton, served_model, tmp_path):
    port = free_port()
    server = ManagedProcess(
        "detection",
        [str(Path(sys.executable).with_name("objectvision-detection"))],
        env={
            "PATH": "/usr/bin:/bin",
            "DATABASE_URL": migrated.database_url,
            "REDIS_URL": migrated.redis_url,
            "TRITON_URL": triton.grpc_url,
            "SERVED_MODEL_PATH": str(served_model),
            "OBJECTVISION_DATA_DIR": str(tmp_path),
            "DETECTION_GRPC_PORT": str(port),
            "DETECTION_METRICS_PORT": str(free_port()),
            "JOB_STREAM": f"detection:jobs:sigterm:{port}",
        },
        log_path=tmp_path / "detection.log",
    )
    server.start()
    try:
        await asyncio.to_thread(
            server.wait_ready, lambda: grpc_serving(f"127.0.0.1:{port}"), timeout=60
        )
    finally:
        await asyncio.to_thread(server.stop, timeout=20)
    assert server.process is not None and server.process.returncode == 0, server.log_tail()
    log = server.log_tail(200)
    assert "gRPC server stopped" in log and "Traceback" not in log, log


@contextlib.contextmanager
def _database_at(infrastructure, revision: str) -> Iterator[tuple[Engine, Callable[[], None]]]:
    """A fresh database migrated to `revision` only, an engine on it, and the upgrade to the
    head: for tests of what a data migration does to rows written before it."""
    migrations = runner().migrations
    assert migrations is not None
    with fresh_database(infrastructure.database_url) as database_url:
        upgrade_to(
            migrations_dir=migrations.directory,
            database_url=database_url,
            schema=SCHEMA,
            revision=revision,
        )
        engine = create_engine(sync_url(database_url))
        try:
            yield (
                engine,
                functools.partial(
                    upgrade_to_head,
                    migrations_dir=migrations.directory,
                    database_url=database_url,
                    schema=SCHEMA,
                ),
            )
        finally:
            engine.dispose()


def test_jobs_that_ended_before_revision_0014_get_their_objects_per_class_counted(infrastructure):
    """0014 counts the objects of every job that had ended, as its final event did (a batch
    over its detections, a video over its frames); a job still running keeps none."""
    batch, video, running, empty = (uuid.uuid4() for _ in range(4))
    with _database_at(infrastructure, "0013") as (engine, upgrade):
        with engine.begin() as connection:
            for job_id, kind, status in (
                (batch, "batch", "completed"),
                (video, "video", "completed"),
                (running, "batch", "processing"),
                (empty, "batch", "cancelled"),
            ):
                connection.execute(
                    text(
                        "INSERT INTO detection.jobs (id, user_id, status, total, params, kind,"
                        " created_at, updated_at, heartbeat_at, queued_at) VALUES (:id, 'u',"
                        " :status, 1, '{}', :kind, now(), now(), now(), now())"
                    ),
                    {"id": job_id, "status": status, "kind": kind},
                )
            for job_id, classes in (
                (batch, ["person", "bus"]),
                (batch, ["person"]),
                (running, ["dog"]),
            ):
                detection_id = uuid.uuid4()
                connection.execute(
                    text(
                        "INSERT INTO detection.detections (id, user_id, job_id, status, width,"
                        " height, object_count, timings, params, created_at, updated_at)"
                        " VALUES (:id, 'u', :job, 'completed', 10, 10, :n, '{}', '{}', now(),"
                        " now())"
                    ),
                    {"id": detection_id, "job": job_id, "n": len(classes)},
                )
                for class_name in classes:
                    connection.execute(
                        text(
                            "INSERT INTO detection.results (detection_id, class_id, class_name,"
                            " confidence, x, y, width, height) VALUES (:id, 0, :name, 0.9, 1, 1,"
                            " 2, 2)"
                        ),
                        {"id": detection_id, "name": class_name},
                    )
            connection.execute(
                text(
                    "INSERT INTO detection.video_jobs (job_id, storage_key, size_bytes,"
                    " container, codec, width, height, duration_seconds, frame_rate,"
                    " frame_count, sample_every) VALUES (:id, 'k', 1, 'mp4', 'h264', 10, 10, 1,"
                    " 1, 2, 1)"
                ),
                {"id": video},
            )
            for index, classes in enumerate((["car", "car"], ["person"])):
                connection.execute(
                    text(
                        "INSERT INTO detection.video_frames (job_id, frame_index,"
                        " timestamp_seconds, objects, object_count) VALUES (:id, :index, :index,"
                        " CAST(:objects AS jsonb), :n)"
                    ),
                    {
                        "id": video,
                        "index": index,
                        "objects": json.dumps([{"class_name": name} for name in classes]),
                        "n": len(classes),
                    },
                )

        upgrade()
        with engine.connect() as connection:
            counted = dict(
                connection.execute(text("SELECT id, class_counts FROM detection.jobs")).all()
            )
    assert counted == {
        batch: {"person": 2, "bus": 1},
        video: {"car": 2, "person": 1},
        running: None,
        empty: {},
    }


def test_detections_made_before_revision_0015_carry_their_jobs_metadata(infrastructure):
    """0015 gives each job's detections the job's metadata, as the item would get it now; a
    detection of Detect, or of a job without metadata, keeps none."""
    tagged, untagged = uuid.uuid4(), uuid.uuid4()
    made = {tagged: uuid.uuid4(), untagged: uuid.uuid4(), None: uuid.uuid4()}
    with _database_at(infrastructure, "0014") as (engine, upgrade):
        with engine.begin() as connection:
            for job_id, metadata in ((tagged, {"camera": "north-gate"}), (untagged, {})):
                connection.execute(
                    text(
                        "INSERT INTO detection.jobs (id, user_id, status, total, params,"
                        " created_at, updated_at, heartbeat_at, queued_at, metadata) VALUES"
                        " (:id, 'u', 'completed', 1, '{}', now(), now(), now(), now(),"
                        " CAST(:metadata AS jsonb))"
                    ),
                    {"id": job_id, "metadata": json.dumps(metadata)},
                )
            for job_id, detection_id in made.items():
                connection.execute(
                    text(
                        "INSERT INTO detection.detections (id, user_id, job_id, status, width,"
                        " height, object_count, timings, params, created_at, updated_at)"
                        " VALUES (:id, 'u', :job, 'completed', 10, 10, 0, '{}', '{}', now(),"
                        " now())"
                    ),
                    {"id": detection_id, "job": job_id},
                )

        upgrade()
        with engine.connect() as connection:
            kept = dict(
                connection.execute(text("SELECT id, metadata FROM detection.detections")).all()
            )
    assert kept == {
        made[tagged]: {"camera": "north-gate"},
        made[untagged]: {},
        made[None]: {},
    }
