"""Live job progress over SubscribeJobProgress, for the job's owner only."""

import asyncio
import time
import uuid

import grpc
import pytest

from objectvision.v1 import detection_pb2, notification_pb2


def job(job_id: str, status: int, processed: int = 0) -> detection_pb2.Job:
    found = detection_pb2.Job(id=job_id, status=status, total=4, processed=processed)
    found.updated_at.GetCurrentTime()
    return found


def subscribe(service, as_user, user_id: str, job_id: str):
    return service.stub.SubscribeJobProgress(
        notification_pb2.SubscribeJobProgressRequest(job_id=job_id),
        metadata=as_user(user_id),
        timeout=30,
    )


async def test_the_owner_sees_progress_then_completion_and_the_stream_ends(
    service, producer, peers, new_user, as_user, events
) -> None:
    user_id, _ = new_user()
    job_id = str(uuid.uuid4())
    peers.detection.jobs[job_id] = (user_id, job(job_id, detection_pb2.JOB_STATUS_PROCESSING, 1))
    stream = subscribe(service, as_user, user_id, job_id)

    snapshot = await stream.read()
    assert snapshot.type == "job.progress" and snapshot.job_progress.processed == 1
    await producer.publish(events.progress(user_id, job_id, 2))
    await producer.publish(events.progress(user_id, job_id, 3))
    done = events.finished(user_id, job_id, counts={"person": 5})
    await producer.publish(done)

    rest = [event async for event in stream]
    assert [event.type for event in rest] == ["job.progress", "job.progress", "job.completed"]
    assert [e.job_progress.processed for e in rest[:2]] == [2, 3]
    assert rest[-1].id == done.id
    assert dict(rest[-1].job_finished.class_counts) == {"person": 5}
    assert await stream.code() == grpc.StatusCode.OK


async def test_a_subscriber_to_a_running_counting_video_job_gets_its_counts_so_far_at_once(
    service, peers, new_user, as_user
) -> None:
    user_id, _ = new_user()
    job_id = str(uuid.uuid4())
    running = job(job_id, detection_pb2.JOB_STATUS_PROCESSING, 2)
    count = detection_pb2.ZoneCount(zone="bay", class_id=0, class_name="person", visited=2, peak=1)
    running.video.zones.add(name="bay")
    running.video.zone_counts.append(count)
    peers.detection.jobs[job_id] = (user_id, running)
    stream = subscribe(service, as_user, user_id, job_id)

    snapshot = (await stream.read()).job_progress
    assert snapshot.processed == 2
    assert list(snapshot.counts.zone_counts) == [count]
    assert list(snapshot.counts.line_counts) == []
    stream.cancel()


async def test_a_job_that_counts_nothing_starts_with_no_counts(
    service, peers, new_user, as_user
) -> None:
    user_id, _ = new_user()
    job_id = str(uuid.uuid4())
    peers.detection.jobs[job_id] = (user_id, job(job_id, detection_pb2.JOB_STATUS_PROCESSING, 1))
    stream = subscribe(service, as_user, user_id, job_id)

    assert not (await stream.read()).job_progress.HasField("counts")
    stream.cancel()


async def test_a_cancelled_job_ends_the_stream_with_its_final_event(
    service, producer, peers, new_user, as_user, events
) -> None:
    user_id, _ = new_user()
    job_id = str(uuid.uuid4())
    peers.detection.jobs[job_id] = (user_id, job(job_id, detection_pb2.JOB_STATUS_PROCESSING))
    stream = subscribe(service, as_user, user_id, job_id)

    assert (await stream.read()).type == "job.progress"
    await producer.publish(events.progress(user_id, job_id, 1))
    stopped = events.cancelled(user_id, job_id, processed=1, counts={"dog": 3})
    await producer.publish(stopped)

    rest = [event async for event in stream]
    assert [event.type for event in rest] == ["job.progress", "job.cancelled"]
    assert rest[-1].id == stopped.id
    finished = rest[-1].job_finished
    assert (finished.status, finished.processed, finished.total) == ("cancelled", 1, 4)
    assert dict(finished.class_counts) == {"dog": 3}
    assert await stream.code() == grpc.StatusCode.OK


async def test_a_late_subscriber_to_a_cancelled_job_gets_its_final_event_at_once(
    service, producer, peers, new_user, as_user, events, wait
) -> None:
    user_id, _ = new_user()
    job_id = str(uuid.uuid4())
    stopped = events.cancelled(user_id, job_id)
    await producer.publish(stopped)
    await wait(lambda: service.runtime.redis.exists(f"objectvision:jobs:{job_id}:final"))
    peers.detection.jobs[job_id] = (user_id, job(job_id, detection_pb2.JOB_STATUS_CANCELLED, 1))

    received = [event async for event in subscribe(service, as_user, user_id, job_id)]
    assert [(event.id, event.type) for event in received] == [(stopped.id, "job.cancelled")]


async def test_a_late_subscriber_gets_the_final_event_at_once(
    service, producer, peers, new_user, as_user, events, mail_sink, mail, wait
) -> None:
    user_id, email = new_user()
    job_id = str(uuid.uuid4())
    done = events.finished(user_id, job_id, counts={"dog": 2})
    await producer.publish(done)
    await wait(lambda: mail(mail_sink, email))
    peers.detection.jobs[job_id] = (user_id, job(job_id, detection_pb2.JOB_STATUS_COMPLETED, 4))

    received = [event async for event in subscribe(service, as_user, user_id, job_id)]
    assert [event.id for event in received] == [done.id]
    assert dict(received[0].job_finished.class_counts) == {"dog": 2}


async def test_a_finished_job_without_a_stored_event_is_rebuilt_from_the_job(
    service, peers, new_user, as_user
) -> None:
    """Finished long ago: its stored final event has expired and no other is coming."""
    user_id, _ = new_user()
    job_id = str(uuid.uuid4())
    failed = job(job_id, detection_pb2.JOB_STATUS_FAILED, 2)
    failed.completed_at.FromSeconds(int(time.time()) - 3600)
    peers.detection.jobs[job_id] = (user_id, failed)
    [final] = [event async for event in subscribe(service, as_user, user_id, job_id)]
    assert final.type == "job.failed" and final.job_finished.processed == 2


async def test_a_cancelled_job_without_a_stored_event_is_rebuilt_as_cancelled(
    service, peers, new_user, as_user
) -> None:
    user_id, _ = new_user()
    job_id = str(uuid.uuid4())
    stopped = job(job_id, detection_pb2.JOB_STATUS_CANCELLED, 1)
    stopped.completed_at.FromSeconds(int(time.time()) - 3600)
    peers.detection.jobs[job_id] = (user_id, stopped)
    [final] = [event async for event in subscribe(service, as_user, user_id, job_id)]
    assert final.type == "job.cancelled"
    assert (final.job_finished.status, final.job_finished.processed) == ("cancelled", 1)


async def test_a_subscriber_between_the_finish_and_its_event_gets_the_real_event(
    service, producer, peers, new_user, as_user, events, wait
) -> None:
    """Detection-service already says completed, the job.completed event is still on its
    way: the stream waits for it (class counts, the id webhooks carry) instead of ending
    with an event rebuilt from the job, which has neither. Found end to end: a WebSocket
    opened as a batch job finished got `class_counts: {}`."""
    user_id, _ = new_user()
    job_id = str(uuid.uuid4())
    peers.detection.jobs[job_id] = (user_id, job(job_id, detection_pb2.JOB_STATUS_COMPLETED, 4))
    stream = subscribe(service, as_user, user_id, job_id)

    async def subscribed() -> bool:
        [(_, subscribers)] = await service.runtime.redis.pubsub_numsub(
            f"objectvision:jobs:{job_id}"
        )
        return subscribers == 1

    await wait(subscribed, within=5)
    done = events.finished(user_id, job_id, counts={"giraffe": 2})
    await producer.publish(done)

    received = [event async for event in stream]
    assert [event.id for event in received] == [done.id]
    assert dict(received[0].job_finished.class_counts) == {"giraffe": 2}


async def test_a_stream_that_hears_nothing_asks_detection_again(
    service, peers, new_user, as_user
) -> None:
    """Events lost while the consumer was down: the poll still ends the stream."""
    user_id, _ = new_user()
    job_id = str(uuid.uuid4())
    peers.detection.jobs[job_id] = (user_id, job(job_id, detection_pb2.JOB_STATUS_PROCESSING))
    stream = subscribe(service, as_user, user_id, job_id)
    assert (await stream.read()).type == "job.progress"
    peers.detection.jobs[job_id] = (user_id, job(job_id, detection_pb2.JOB_STATUS_COMPLETED, 4))
    final = await asyncio.wait_for(stream.read(), timeout=5)
    assert final.type == "job.completed"
    assert await stream.read() == grpc.aio.EOF


async def test_someone_elses_job_is_not_found(service, peers, new_user, as_user) -> None:
    owner, _ = new_user()
    intruder, _ = new_user()
    job_id = str(uuid.uuid4())
    peers.detection.jobs[job_id] = (owner, job(job_id, detection_pb2.JOB_STATUS_PROCESSING))
    for user_id, requested in ((intruder, job_id), (owner, str(uuid.uuid4()))):
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            async for _ in subscribe(service, as_user, user_id, requested):
                pass
        assert refused.value.code() == grpc.StatusCode.NOT_FOUND


async def test_events_of_another_user_on_the_channel_are_not_relayed(
    service, producer, peers, new_user, as_user, events
) -> None:
    owner, _ = new_user()
    other, _ = new_user()
    job_id = str(uuid.uuid4())
    peers.detection.jobs[job_id] = (owner, job(job_id, detection_pb2.JOB_STATUS_PROCESSING))
    stream = subscribe(service, as_user, owner, job_id)
    await stream.read()
    await producer.publish(events.progress(other, job_id, 3))
    await producer.publish(events.finished(owner, job_id))
    rest = [event async for event in stream]
    assert [event.user_id for event in rest] == [owner]
