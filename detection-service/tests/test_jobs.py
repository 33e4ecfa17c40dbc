"""Batch jobs end to end: Redis Stream, workers, exactly-once items, crashes and Triton outages."""

import asyncio
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import grpc
import pytest
import sqlalchemy as sa
from redis.asyncio import Redis

from detection_service.history.models import detections
from detection_service.images.storage import LocalDirectoryStorage
from detection_service.images.uploads import Upload
from detection_service.jobs.models import job_items, jobs
from detection_service.jobs.queue import JobQueue
from detection_service.jobs.service import (
    ProgressEstimate,
    estimate_progress,
    start_job,
    submit_job,
)
from detection_service.jobs.worker import JobSweeper
from detection_service.outbox import OUTBOX
from detection_service.pipeline.header import read_header
from detection_service.video.service import start_video_job
from objectvision.v1 import detection_pb2
from objectvision_common.db import session_factory
from objectvision_common.outbox import event_from_stream
from objectvision_devstack.processes import ManagedProcess, free_port
from objectvision_devstack.triton import LocalTriton

from .conftest import submit_video_job

DONE = (detection_pb2.JOB_STATUS_COMPLETED, detection_pb2.JOB_STATUS_FAILED)
# Harnesses whose own sweeper stays out of the way of the one a test runs.
NO_SWEEPING = {"JOB_REQUEUE_AFTER_SECONDS": 3600}


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
        max_unfinished=detection.settings.max_unfinished_jobs_per_user,
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


async def _messages_for(harness, job_ids: list[str]) -> list[str]:
    """The job ids of the messages on the harness's job stream that name one of `job_ids`,
    read by a consumer or not, one entry per message."""
    entries = await harness.service.redis.xrange(harness.settings.job_stream)
    return sorted(fields["job_id"] for _, fields in entries if fields.get("job_id") in job_ids)


async def _age_heartbeats(harness, job_ids: list[str], *, seconds: float) -> None:
    """Set the jobs' last sign of life `seconds` into the past: a worker that went quiet."""
    async with harness.service.engine.begin() as conn:
        await conn.execute(
            sa.update(jobs)
            .where(jobs.c.id.in_([uuid.UUID(job_id) for job_id in job_ids]))
            .values(heartbeat_at=sa.func.now() - timedelta(seconds=seconds))
        )


async def test_jobs_waiting_their_turn_keep_one_message_however_long_the_queue(
    make_harness, user, bus_jpg
):
    """A backlog that lasts longer than JOB_REQUEUE_AFTER_SECONDS is waiting, not lost: the
    sweeper puts back only jobs with no message on the stream, so a long queue does not
    multiply itself (nor get each job run twice at once)."""
    harness = await make_harness(JOB_WORKERS=0, **NO_SWEEPING)
    waiting = [(await _submit(harness, user, [("bus.jpg", bus_jpg)])).id for _ in range(3)]
    await _age_heartbeats(harness, waiting, seconds=120)

    sweeper = JobSweeper(
        sessions=session_factory(harness.service.engine),
        queue=harness.service.queue,
        requeue_after_s=60.0,
    )
    await sweeper.sweep()
    await sweeper.sweep()
    assert await _messages_for(harness, waiting) == sorted(waiting)


async def test_a_job_whose_worker_died_and_whose_message_was_lost_is_put_back_and_completes(
    make_harness, user, bus_jpg
):
    """Redis lost the message of a job a worker had started (no consumer will reclaim it):
    the sweeper finds the job quiet and off the stream, puts it back once, and it completes."""
    harness = await make_harness(JOB_WORKERS=0, **NO_SWEEPING)
    job = await _submit(harness, user, [("bus.jpg", bus_jpg)])
    async with session_factory(harness.service.engine).begin() as session:
        assert await start_job(session=session, job_id=uuid.UUID(job.id)) is not None
    await harness.service.redis.delete(harness.settings.job_stream)
    await _age_heartbeats(harness, [job.id], seconds=120)

    sessions = session_factory(harness.service.engine)
    sweepers = [
        JobSweeper(sessions=sessions, queue=harness.service.queue, requeue_after_s=60.0)
        for _ in range(2)
    ]
    await asyncio.gather(*(sweeper.sweep() for sweeper in sweepers))
    assert await _messages_for(harness, [job.id]) == [job.id]
    requeued = await _get(harness, user, job.id)
    assert requeued.status == detection_pb2.JOB_STATUS_PENDING

    await make_harness(JOB_STREAM=harness.settings.job_stream, JOB_WORKERS=1, **NO_SWEEPING)
    done = await _wait(harness, user, job.id)
    assert (done.status, done.processed) == (detection_pb2.JOB_STATUS_COMPLETED, 1)
    assert await _detections_of(harness, job.id) == 1


def test_a_running_jobs_finish_is_its_pace_since_it_started_carried_over_what_is_left():
    started = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
    now = started + timedelta(seconds=10)
    # Resumed with 20 of 100 done; 5 more in the 10 s since: 0.5 a second, 75 left: 150 s.
    estimate = estimate_progress(
        total=100, processed=25, processed_at_start=20, started_at=started, now=now
    )
    assert estimate == ProgressEstimate(
        items_per_second=0.5, completion_at=now + timedelta(seconds=150)
    )
    # Nothing finished yet in this run (a model loading), or never started: no estimate.
    assert (
        estimate_progress(
            total=100, processed=20, processed_at_start=20, started_at=started, now=now
        )
        is None
    )
    assert (
        estimate_progress(total=100, processed=0, processed_at_start=None, started_at=None, now=now)
        is None
    )


async def test_a_processing_job_says_its_pace_and_when_it_should_end(make_harness, user, coco8):
    harness = await make_harness(JOB_WORKERS=0, **NO_SWEEPING)
    job = await _submit(harness, user, [(name, data) for name, data, _ in coco8])
    pending = await _get(harness, user, job.id)
    assert not pending.HasField("items_per_second")
    assert not pending.HasField("estimated_completion_at")

    async with session_factory(harness.service.engine).begin() as session:
        assert await start_job(session=session, job_id=uuid.UUID(job.id)) is not None
    started = await _get(harness, user, job.id)
    assert started.status == detection_pb2.JOB_STATUS_PROCESSING
    assert not started.HasField("estimated_completion_at"), "nothing finished in this run yet"

    # A worker that finished one image 4 s after it started: 0.25 a second, the rest in ~12 s.
    async with harness.service.engine.begin() as conn:
        await conn.execute(
            sa.update(jobs)
            .where(jobs.c.id == uuid.UUID(job.id))
            .values(processed=1, started_at=sa.func.now() - timedelta(seconds=4))
        )
    asked_at = datetime.now(UTC)
    running = await _get(harness, user, job.id)
    assert running.items_per_second == pytest.approx(0.25, rel=0.05)
    left = (running.estimated_completion_at.ToDatetime(UTC) - asked_at).total_seconds()
    assert left == pytest.approx((len(coco8) - 1) / 0.25, rel=0.05)

    # That worker went quiet before recording its image; another takes the job over and ends
    # it: no estimate any more.
    async with harness.service.engine.begin() as conn:
        await conn.execute(
            sa.update(jobs).where(jobs.c.id == uuid.UUID(job.id)).values(processed=0)
        )
    await _age_heartbeats(harness, [job.id], seconds=harness.settings.job_lease.total_seconds() + 1)
    await harness.service.processor.run(uuid.UUID(job.id))
    done = await _get(harness, user, job.id)
    assert (done.status, done.processed) == (detection_pb2.JOB_STATUS_COMPLETED, len(coco8))
    assert not done.HasField("items_per_second")
    assert not done.HasField("estimated_completion_at")


def _turns_given(harness) -> float:
    """detection_job_turns_given_total of the harness's service."""
    (family,) = harness.service.metrics.job_turns_given.collect()
    return sum(sample.value for sample in family.samples if sample.name.endswith("_total"))


async def _completion_order(harness, jobs_of: dict[str, list[str]]) -> list[str]:
    """The ids of the owners' jobs (`jobs_of`: owner to job ids), once all are done, in the
    order they completed."""
    finished = [
        await _wait(harness, owner, job_id) for owner, ids in jobs_of.items() for job_id in ids
    ]
    assert all(job.status == detection_pb2.JOB_STATUS_COMPLETED for job in finished)
    return [job.id for job in sorted(finished, key=lambda job: job.completed_at.ToDatetime())]


async def test_accounts_take_turns_at_the_workers_however_many_jobs_one_queued_first(
    make_harness, bus_jpg
):
    """One account queues three jobs, then another account one. With one worker the other
    account's job does not wait for all three: it starts second, as the first account was
    served last and it never was. The first account's jobs keep their order."""
    busy, other = f"user-{uuid.uuid4()}", f"user-{uuid.uuid4()}"
    queued = await make_harness(JOB_WORKERS=0, **NO_SWEEPING)
    busy_jobs = [(await _submit(queued, busy, [("bus.jpg", bus_jpg)])).id for _ in range(3)]
    other_job = (await _submit(queued, other, [("bus.jpg", bus_jpg)])).id

    worker = await make_harness(JOB_STREAM=queued.settings.job_stream, JOB_WORKERS=1, **NO_SWEEPING)
    order = await _completion_order(queued, {busy: busy_jobs, other: [other_job]})
    assert order == [busy_jobs[0], other_job, busy_jobs[1], busy_jobs[2]]
    assert _turns_given(worker) == 2


async def test_a_job_gives_way_only_to_one_queued_behind_it_so_a_lost_message_stalls_nothing(
    make_harness, user, bus_jpg
):
    """Another account's pending job whose message was lost (or is on another stream) is
    never reached on this stream: a job gives it one turn at most, then runs."""
    served = f"user-{uuid.uuid4()}"
    queued = await make_harness(JOB_WORKERS=0, **NO_SWEEPING)
    worker = await make_harness(JOB_STREAM=queued.settings.job_stream, JOB_WORKERS=1, **NO_SWEEPING)
    first = await _submit(queued, served, [("bus.jpg", bus_jpg)])
    await _wait(queued, served, first.id)
    await worker.stop()

    waiting = await _submit(queued, served, [("bus.jpg", bus_jpg)])
    lost = await _submit(queued, user, [("bus.jpg", bus_jpg)])
    ((lost_message, fields),) = await queued.service.redis.xrevrange(
        queued.settings.job_stream, count=1
    )
    assert fields["job_id"] == lost.id
    await queued.service.redis.xdel(queued.settings.job_stream, lost_message)

    worker = await make_harness(JOB_STREAM=queued.settings.job_stream, JOB_WORKERS=1, **NO_SWEEPING)
    done = await _wait(queued, served, waiting.id)
    assert done.status == detection_pb2.JOB_STATUS_COMPLETED
    assert _turns_given(worker) == 1
    assert (await _get(queued, user, lost.id)).status == detection_pb2.JOB_STATUS_PENDING


async def _refusal(submission) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await submission
    return refused.value


def _too_many_jobs(refused: grpc.aio.AioRpcError) -> bool:
    trailers = dict(refused.trailing_metadata() or ())
    return (
        refused.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        and trailers.get("error-code") == "too_many_jobs"
        and int(trailers.get("retry-after", "0")) > 0
    )


async def test_an_account_at_its_limit_of_unfinished_jobs_is_refused_until_one_ends(
    make_harness, user, bus_jpg, panned_video
):
    """MAX_UNFINISHED_JOBS_PER_USER bounds what one account can queue: its next batch or
    video job is refused (429 too_many_jobs, with Retry-After) and stores nothing, while a
    retry of a job it has is still answered, another account is not held back, and a job
    that ends (here: cancelled) makes room for the next."""
    harness = await make_harness(JOB_WORKERS=0, MAX_UNFINISHED_JOBS_PER_USER=2, **NO_SWEEPING)
    first = await _submit(harness, user, [("bus.jpg", bus_jpg)], idempotency_key="first")
    second = await _submit(harness, user, [("bus.jpg", bus_jpg)])
    stored = await harness.counts(user)

    refused = await _refusal(_submit(harness, user, [("bus.jpg", bus_jpg)]))
    assert _too_many_jobs(refused), refused
    assert "2 unfinished jobs" in refused.details()
    assert _too_many_jobs(
        await _refusal(submit_video_job(harness, user, panned_video, track=False))
    )
    assert await harness.counts(user) == stored

    retried = await _submit(harness, user, [("bus.jpg", bus_jpg)], idempotency_key="first")
    assert retried.id == first.id
    await _submit(harness, f"user-{uuid.uuid4()}", [("bus.jpg", bus_jpg)])

    await harness.stub.CancelJob(
        detection_pb2.CancelJobRequest(job_id=second.id), metadata=harness.metadata(user)
    )
    third = await _submit(harness, user, [("bus.jpg", bus_jpg)])
    assert third.status == detection_pb2.JOB_STATUS_PENDING


async def test_concurrent_submissions_cannot_slip_past_the_limit_together(
    make_harness, user, bus_jpg
):
    """Six submissions at once from an account that may have three unfinished jobs: three are
    accepted and three refused, whatever their interleaving."""
    harness = await make_harness(JOB_WORKERS=0, MAX_UNFINISHED_JOBS_PER_USER=3, **NO_SWEEPING)
    outcomes = await asyncio.gather(
        *(_submit(harness, user, [("bus.jpg", bus_jpg)]) for _ in range(6)),
        return_exceptions=True,
    )
    accepted = [job for job in outcomes if isinstance(job, detection_pb2.Job)]
    refused = [error for error in outcomes if isinstance(error, grpc.aio.AioRpcError)]
    assert len(accepted) == 3 and len(refused) == 3
    assert all(_too_many_jobs(error) for error in refused)
    assert (await harness.counts(user))["jobs"] == 3


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
    """The same items run twice at once (two workers that both started the job, the second
    after the first's lease ran out) still yield one row per item."""
    job = await _submit(detection, user, [(name, data) for name, data, _ in coco8])
    async with session_factory(detection.service.engine).begin() as session:
        started = await start_job(session=session, job_id=uuid.UUID(job.id))
    assert started is not None
    options, items = started
    await asyncio.gather(
        detection.service.processor.process(options, items),
        detection.service.processor.process(options, items),
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


async def test_a_job_a_live_worker_holds_is_not_run_again_until_its_lease_runs_out(
    make_harness, user, coco8, panned_video
):
    """A second message for a job that a worker is on (a consumer that stalled past the claim
    time, its message reclaimed) starts no second run while the job's heartbeat is younger
    than the lease; once it is older (the worker died), the job is taken over and completes."""
    harness = await make_harness(JOB_WORKERS=0, **NO_SWEEPING)
    lease = harness.settings.job_lease
    sessions = session_factory(harness.service.engine)
    batch = await _submit(harness, user, [(name, data) for name, data, _ in coco8])
    video = await submit_video_job(harness, user, panned_video, track=False)
    async with sessions.begin() as session:
        assert await start_job(session=session, job_id=uuid.UUID(batch.id), lease=lease)
        assert await start_video_job(session=session, job_id=uuid.UUID(video.id), lease=lease)

    for job in (batch, video):
        await harness.service.processor.run(uuid.UUID(job.id))
        held = await _get(harness, user, job.id)
        assert (held.status, held.processed) == (detection_pb2.JOB_STATUS_PROCESSING, 0)

    await _age_heartbeats(harness, [batch.id, video.id], seconds=lease.total_seconds() + 1)
    for job in (batch, video):
        await harness.service.processor.run(uuid.UUID(job.id))
        done = await _get(harness, user, job.id)
        assert done.status == detection_pb2.JOB_STATUS_COMPLETED
        assert done.processed == done.total > 0


async def test_workers_recreate_a_lost_stream_and_group(make_harness, user, bus_jpg):
    """Redis lost its data (or someone deleted the key): the next job still gets processed."""
    harness = await make_harness(JOB_WORKERS=1)
    await harness.service.redis.delete(harness.settings.job_stream)
    job = await _submit(harness, user, [("bus.jpg", bus_jpg)])
    done = await _wait(harness, user, job.id, within_s=30)
    assert (done.status, done.processed) == (detection_pb2.JOB_STATUS_COMPLETED, 1)
