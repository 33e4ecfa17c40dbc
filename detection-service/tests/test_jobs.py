"""Batch jobs end to end: Redis Stream, workers, exactly-once items, crashes and Triton outages."""

import asyncio
import sys
import time
import uuid
from pathlib import Path

import grpc
import pytest
import sqlalchemy as sa
from redis.asyncio import Redis

from detection_service.history.models import detections
from detection_service.images.storage import LocalDirectoryStorage
from detection_service.images.uploads import Upload
from detection_service.jobs.models import job_items
from detection_service.jobs.queue import JobQueue
from detection_service.jobs.service import submit_job
from detection_service.jobs.worker import JobSweeper
from detection_service.outbox import OUTBOX
from detection_service.pipeline.header import read_header
from objectvision.v1 import detection_pb2
from objectvision_common.db import session_factory
from objectvision_common.outbox import event_from_stream
from objectvision_devstack.processes import ManagedProcess, free_port
from objectvision_devstack.triton import LocalTriton

DONE = (detection_pb2.JOB_STATUS_COMPLETED, detection_pb2.JOB_STATUS_FAILED)


def _inputs(images: list[tuple[str, bytes]]) -> list[detection_pb2.ImageInput]:
    return [detection_pb2.ImageInput(data=data, filename=name) for name, data in images]


async def _submit(harness, user, images, **kwargs) -> detection_pb2.Job:
    return await harness.stub.SubmitJob(
        detection_pb2.SubmitJobRequest(images=_inputs(images), **kwargs),
        metadata=harness.metadata(user),
        timeout=30,
    )


async def _get(harness, user, job_id: str) -> detection_pb2.Job:
    return await harness.stub.GetJob(
        detection_pb2.GetJobRequest(job_id=job_id), metadata=harness.metadata(user), timeout=30
    )


async def _wait(harness, user, job_id: str, *, within_s: float = 60) -> detection_pb2.Job:
    deadline = time.monotonic() + within_s
    while True:
        job = await _get(harness, user, job_id)
        if job.status in DONE:
            return job
        assert time.monotonic() < deadline, f"job still {job.status} after {within_s}s: {job}"
        await asyncio.sleep(0.1)


async def _events(harness, job_id: str) -> list[tuple[str, int]]:
    """(event type, processed count) of this job's outbox rows, by processed count.

    Items commit concurrently, so outbox rows are ordered by progress, not by created_at.
    """
    payload = OUTBOX.c.payload
    async with harness.service.engine.connect() as conn:
        rows = await conn.execute(
            sa.select(OUTBOX.c.event_type, OUTBOX.c.payload).where(
                (payload["jobProgress"]["jobId"].astext == job_id)
                | (payload["jobFinished"]["jobId"].astext == job_id)
            )
        )
    found = []
    for row in rows:
        body = row.payload.get("jobProgress") or row.payload["jobFinished"]
        found.append((row.event_type, int(body.get("processed", 0))))
    return sorted(found, key=lambda e: (e[1], e[0] != "job.progress"))


async def _detections_of(harness, job_id: str) -> int:
    async with harness.service.engine.connect() as conn:
        return await conn.scalar(
            sa.select(sa.func.count())
            .select_from(detections)
            .where(detections.c.job_id == uuid.UUID(job_id))
        )


async def test_coco8_job_completes_and_reaches_history(detection, user, coco8):
    images = [(name, data) for name, data, _ in coco8]
    job = await _submit(detection, user, images, idempotency_key="coco8-once")
    assert job.status in (detection_pb2.JOB_STATUS_PENDING, detection_pb2.JOB_STATUS_PROCESSING)
    assert (job.total, len(job.items)) == (8, 8)
    assert [item.filename for item in job.items] == [name for name, _ in images]

    done = await _wait(detection, user, job.id)
    assert done.status == detection_pb2.JOB_STATUS_COMPLETED
    assert (done.processed, done.failed) == (8, 0)
    assert done.HasField("completed_at")
    assert all(i.status == detection_pb2.JOB_STATUS_COMPLETED for i in done.items)
    assert len({i.detection_id for i in done.items}) == 8
    assert sum(i.object_count for i in done.items) > 10

    history = await detection.stub.ListDetections(
        detection_pb2.ListDetectionsRequest(), metadata=detection.metadata(user), timeout=30
    )
    assert history.total == 8
    assert {d.id for d in history.items} == {i.detection_id for i in done.items}
    assert {d.job_id for d in history.items} == {job.id}
    by_id = {d.id: d for d in history.items}
    for item in done.items:
        assert len(by_id[item.detection_id].result.objects) == item.object_count
        assert by_id[item.detection_id].result.filename == item.filename

    events = await _events(detection, job.id)
    assert events == [("job.progress", n) for n in range(1, 9)] + [("job.completed", 8)]

    # The outbox relay publishes the final event to the events stream.
    deadline = time.monotonic() + 10
    while True:
        entries = await detection.service.redis.xrange(detection.settings.events_stream)
        published = [event_from_stream(fields) for _, fields in entries]
        finished = [e for e in published if e.job_finished.job_id == job.id]
        if finished or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.1)
    (event,) = finished
    assert (event.type, event.user_id, event.job_finished.status) == (
        "job.completed",
        user,
        "completed",
    )
    assert event.job_finished.class_counts["person"] >= 1

    again = await _submit(detection, user, images[:1], idempotency_key="coco8-once")
    assert again.id == job.id and again.total == 8
    assert (await detection.counts(user))["jobs"] == 1


async def test_concurrent_retries_with_one_key_make_one_job(detection, user, bus_jpg):
    jobs = await asyncio.gather(
        *(_submit(detection, user, [("bus.jpg", bus_jpg)], idempotency_key="k") for _ in range(4))
    )
    assert len({j.id for j in jobs}) == 1
    await _wait(detection, user, jobs[0].id)
    counts = await detection.counts(user)
    assert (counts["jobs"], counts["images"], counts["detections"]) == (1, 1, 1)


async def test_another_users_job_is_not_found(detection, user, bus_jpg):
    job = await _submit(detection, user, [("bus.jpg", bus_jpg)], idempotency_key="mine")
    stranger = f"user-{uuid.uuid4()}"
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await _get(detection, stranger, job.id)
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND
    # The same key is another user's own: it makes a new job.
    theirs = await _submit(detection, stranger, [("bus.jpg", bus_jpg)], idempotency_key="mine")
    assert theirs.id != job.id
    await _wait(detection, user, job.id)
    await _wait(detection, stranger, theirs.id)


async def test_a_bad_image_fails_its_item_not_the_job(detection, user, bus_jpg, make_png):
    corrupt = make_png(64, 64, idat=b"\x78\x9c" + b"\xde\xad\xbe\xef" * 16)
    job = await _submit(detection, user, [("bus.jpg", bus_jpg), ("corrupt.png", corrupt)])
    done = await _wait(detection, user, job.id)
    assert done.status == detection_pb2.JOB_STATUS_COMPLETED
    assert (done.processed, done.failed) == (2, 1)
    good, bad = done.items
    assert good.status == detection_pb2.JOB_STATUS_COMPLETED and good.object_count >= 5
    assert bad.status == detection_pb2.JOB_STATUS_FAILED and "cannot be decoded" in bad.error
    assert bad.detection_id == ""

    only_bad = await _submit(detection, user, [("corrupt.png", corrupt)])
    failed = await _wait(detection, user, only_bad.id)
    assert failed.status == detection_pb2.JOB_STATUS_FAILED
    assert await _events(detection, only_bad.id) == [("job.progress", 1), ("job.failed", 1)]


async def test_a_job_whose_enqueue_failed_is_swept_onto_the_stream(detection, user, bus_jpg):
    """Commit succeeded, XADD did not (Redis unreachable): the sweeper finds and enqueues it."""
    service = detection.service
    dead_redis_queue = JobQueue(
        Redis.from_url(f"redis://127.0.0.1:{free_port()}/0"),
        stream=service.queue.stream,
        group=service.queue.group,
    )
    sessions = session_factory(service.engine)
    view = await submit_job(
        sessions=sessions,
        storage=LocalDirectoryStorage(detection.settings.objects_dir),
        queue=dead_redis_queue,
        user_id=user,
        uploads=[(0, Upload(bus_jpg, "bus.jpg", read_header(bus_jpg)))],
        options=service.pipeline.detector.options(),
        idempotency_key=None,
    )
    await dead_redis_queue.redis.aclose()
    await asyncio.sleep(1.5)
    assert (await _get(detection, user, str(view.id))).status == detection_pb2.JOB_STATUS_PENDING

    sweeper = JobSweeper(sessions=sessions, queue=service.queue, requeue_after_s=1.0)
    assert await sweeper.sweep() >= 1
    done = await _wait(detection, user, str(view.id))
    assert done.status == detection_pb2.JOB_STATUS_COMPLETED
    assert await _detections_of(detection, str(view.id)) == 1


@pytest.mark.slow  # a fault injected (a worker killed, Triton stopped): make test-slow
async def test_a_killed_worker_is_replaced_and_the_job_completes_exactly_once(
    detection, make_harness, user, coco8, triton, tmp_path
):
    """A consumer in another process dies mid-job (SIGKILL); another reclaims with XAUTOCLAIM."""
    stream = f"detection:jobs:kill:{uuid.uuid4().hex[:8]}"
    submitter = await make_harness(JOB_STREAM=stream, JOB_WORKERS=0)
    settings = submitter.settings
    env = {
        "DATABASE_URL": settings.database_url,
        "REDIS_URL": settings.redis_url,
        "TRITON_URL": settings.triton_url,
        "SERVED_MODEL_PATH": str(settings.served_model_path),
        "STORAGE_DIR": str(settings.objects_dir),
        "SERVICE_TOKEN_SECRET": settings.service_token_secret,
        "JOB_STREAM": stream,
        "JOB_WORKERS": "1",
        "JOB_CLAIM_IDLE_MS": "1000",
        # One image at a time, so the job is surely unfinished when the worker dies.
        "DETECT_MAX_BATCH": "1",
        "DETECTION_GRPC_PORT": str(free_port()),
        "DETECTION_METRICS_PORT": str(free_port()),
        "LOG_JSON": "false",
        "PATH": "/usr/bin:/bin",
    }
    worker = ManagedProcess(
        "detection-worker",
        [str(Path(sys.executable).with_name("objectvision-detection")), "serve"],
        env=env,
        log_path=tmp_path / "worker.log",
    )
    worker.start()
    try:
        images = [(f"{n}-{name}", data) for n in range(3) for name, data, _ in coco8]
        job = await _submit(submitter, user, images)
        deadline = time.monotonic() + 60
        while (await _get(submitter, user, job.id)).processed < 2:
            assert worker.running(), worker.log_tail()
            assert time.monotonic() < deadline, worker.log_tail()
            await asyncio.sleep(0.02)
        worker.kill()
    finally:
        worker.kill()
    at_death = await _get(submitter, user, job.id)
    assert 2 <= at_death.processed < at_death.total == 24
    pending = await submitter.service.redis.xpending(stream, settings.job_consumer_group)
    assert pending["pending"] == 1, "the dead consumer's message must still be unacknowledged"

    await make_harness(JOB_STREAM=stream, JOB_WORKERS=1, JOB_CLAIM_IDLE_MS=1000)
    done = await _wait(submitter, user, job.id)
    assert done.status == detection_pb2.JOB_STATUS_COMPLETED
    assert (done.processed, done.failed) == (24, 0)
    assert await _detections_of(submitter, job.id) == 24
    assert len({item.detection_id for item in done.items}) == 24
    events = await _events(submitter, job.id)
    assert events == [("job.progress", n) for n in range(1, 25)] + [("job.completed", 24)]
    pending = await submitter.service.redis.xpending(stream, settings.job_consumer_group)
    assert pending["pending"] == 0


@pytest.mark.slow  # a fault injected (a worker killed, Triton stopped): make test-slow
async def test_triton_down_means_unavailable_then_queued_work_finishes(
    make_harness, user, bus_jpg, zidane_jpg, served_model, tmp_path
):
    own_triton = LocalTriton(tmp_path / "triton", served_model=served_model)
    await asyncio.to_thread(own_triton.start)
    try:
        harness = await make_harness(TRITON_URL=own_triton.grpc_url, JOB_WORKERS=1)
        request = detection_pb2.DetectRequest(images=_inputs([("bus.jpg", bus_jpg)]))
        reply = await harness.stub.Detect(request, metadata=harness.metadata(user), timeout=30)
        assert len(reply.results[0].objects) >= 5

        await asyncio.to_thread(own_triton.stop)
        started = time.monotonic()
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await harness.stub.Detect(request, metadata=harness.metadata(user), timeout=30)
        assert time.monotonic() - started < 5
        assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
        trailers = dict(caught.value.trailing_metadata())
        assert trailers["error-code"] == "unavailable"
        assert int(trailers["retry-after"]) >= 1

        job = await _submit(harness, user, [("bus.jpg", bus_jpg), ("zidane.jpg", zidane_jpg)])
        await asyncio.sleep(2)
        waiting = await _get(harness, user, job.id)
        assert waiting.status == detection_pb2.JOB_STATUS_PROCESSING and waiting.processed == 0

        await asyncio.to_thread(own_triton.start)
        done = await _wait(harness, user, job.id, within_s=60)
        assert done.status == detection_pb2.JOB_STATUS_COMPLETED
        assert (done.processed, done.failed) == (2, 0)
        reply = await harness.stub.Detect(request, metadata=harness.metadata(user), timeout=30)
        assert len(reply.results[0].objects) >= 5
    finally:
        await asyncio.to_thread(own_triton.stop)


async def test_items_are_recorded_once_even_when_two_workers_race(detection, user, coco8):
    """The same job run twice at once (a duplicate message) still yields one row per item."""
    job = await _submit(detection, user, [(name, data) for name, data, _ in coco8])
    await asyncio.gather(
        detection.service.processor.run(uuid.UUID(job.id)),
        detection.service.processor.run(uuid.UUID(job.id)),
    )
    done = await _wait(detection, user, job.id)
    assert (done.status, done.processed) == (detection_pb2.JOB_STATUS_COMPLETED, 8)
    assert await _detections_of(detection, job.id) == 8
    async with detection.service.engine.connect() as conn:
        linked = await conn.scalar(
            sa.select(sa.func.count(sa.distinct(job_items.c.detection_id))).where(
                job_items.c.job_id == uuid.UUID(job.id)
            )
        )
    assert linked == 8
    assert [e for e, _ in await _events(detection, job.id)].count("job.completed") == 1


async def test_workers_recreate_a_lost_stream_and_group(make_harness, user, bus_jpg):
    """Redis lost its data (or someone deleted the key): the next job still gets processed."""
    harness = await make_harness(JOB_WORKERS=1)
    await harness.service.redis.delete(harness.settings.job_stream)
    job = await _submit(harness, user, [("bus.jpg", bus_jpg)])
    done = await _wait(harness, user, job.id, within_s=30)
    assert (done.status, done.processed) == (detection_pb2.JOB_STATUS_COMPLETED, 1)
