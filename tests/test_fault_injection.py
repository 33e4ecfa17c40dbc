"""Faults injected into a running system, and what users see through them.

The module has its own stack with everything embedded in a temporary data dir (PostgreSQL,
Redis, Triton, every service, the gateway, a mail sink): the tests stop and kill its parts,
which the session stack other suites share must never suffer. Fault timings are shortened
through the environment (a killed worker's job is reclaimed after JOB_CLAIM_IDLE_MS).

- kill -9 of any part mid-job (gateway, auth, detection, notification, Triton, Redis,
  PostgreSQL): the stack's supervision restarts it by itself, as `make run` does, the job
  completes with every item exactly once and one `job.completed` event, and the API answers
  again, with no other part restarted;
- a part that keeps crashing is restarted with a growing delay;
- Redis restarted mid-job: the job completes;
- Triton stopped: synchronous detection answers 503 + Retry-After at once, a queued job
  waits and completes when Triton is back;
- PostgreSQL stopped briefly: requests answer 503 with Retry-After (the one error shape, request
  id, no internals) and succeed again once it is back, with no service restarted;
- SIGTERM to the gateway and to detection-service with requests in flight: those finish
  (200) before the process exits.

The whole module is in the slow tier (`make test-slow`, which `.ci/run` runs after `make
test`): its own stack and the restarts it waits for take a minute or more, beyond what
`make test` can spend on 2 cores.
"""

import asyncio
import os
import signal
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from redis import Redis

from objectvision_common.outbox import event_from_stream
from objectvision_devstack.api_users import Account, fresh_network, signed_in
from objectvision_devstack.processes import free_port
from objectvision_devstack.pytest_plugin import served_model_path
from objectvision_devstack.stack import Stack, StackConfig

PASSWORD = "correct horse battery"
IMAGE = "/api/v1/detect/image"
BATCH = "/api/v1/detect/batch"
HISTORY = "/api/v1/detect/history"
ME = "/api/v1/users/me"
EVENTS_STREAM = "objectvision:events"
JOB_CLAIM_IDLE_MS = 3000
SHARED = Path(
    os.environ.get("OBJECTVISION_SHARED_DIR") or Path(__file__).resolve().parents[2] / "shared"
)
IMAGES = SHARED / "images"
BUS_JPG = IMAGES / "bus.jpg"

pytestmark = [
    pytest.mark.skipif(not BUS_JPG.exists(), reason=f"sample images not found under {IMAGES}"),
    pytest.mark.timeout(600),
    pytest.mark.slow,
]


def _coco8() -> list[Path]:
    return sorted(IMAGES.glob("coco8/images/*/*.jpg"))


@pytest.fixture(scope="module")
def isolated(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    stack = Stack(
        StackConfig(
            data_dir=tmp_path_factory.mktemp("faults"),
            gateway_port=free_port(),
            served_model=served_model_path().resolve(),
            extra_env={
                "LOG_LEVEL": "INFO",
                "TRUST_PROXY_HEADERS": "true",
                "WEBHOOK_ALLOW_PRIVATE": "true",
                # A dead worker's job message is claimed by another after this long idle.
                "JOB_CLAIM_IDLE_MS": str(JOB_CLAIM_IDLE_MS),
                "JOB_REQUEUE_AFTER_SECONDS": "10",
                # One image per Triton call, so a job of 8 takes long enough to be cut.
                "DETECT_MAX_BATCH": "1",
                # Faults must meet real inference: the tests send the same sample images
                # again and again, which the result cache would answer in a millisecond.
                "RESULT_CACHE_TTL_SECONDS": "0",
                "GRPC_SHUTDOWN_GRACE_SECONDS": "20",
                "GATEWAY_SHUTDOWN_GRACE_SECONDS": "20",
            },
        )
    )
    with stack.running():
        # As `make run` runs it: a part that dies without being stopped is restarted.
        stack.supervise()
        yield stack


@pytest.fixture
async def client(isolated: Stack) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=isolated.gateway_url, timeout=60) as opened:
        yield opened


@pytest.fixture(autouse=True)
def everything_runs_again(request: pytest.FixtureRequest) -> Iterator[None]:
    """Each test leaves the stack whole, even when it fails midway."""
    yield
    if "isolated" not in request.fixturenames:
        return
    stack: Stack = request.getfixturevalue("isolated")
    for name in ("postgres", "redis", "triton", "auth", "detection", "notification", "gateway"):
        if name in stack.processes and not stack.processes[name].running():
            stack.start_process(name)


async def _user(client: httpx.AsyncClient) -> Account:
    # Sign-up names no account (it answers alike for a taken address): read back who we are.
    return await signed_in(client, prefix="fault", name="Fault", read_back=True)


def _assert_clean_error(response: httpx.Response, *statuses: int) -> dict[str, Any]:
    """The one error shape, with the request id and nothing of the internals."""
    assert response.status_code in statuses, (response.status_code, response.text)
    assert response.headers["content-type"].startswith("application/json")
    error = response.json()["error"]
    assert error["request_id"] == response.headers["x-request-id"]
    for internal in ("Traceback", 'File "', "asyncpg", "sqlalchemy", "127.0.0.1", "grpc"):
        assert internal not in response.text, response.text
    return error


async def _eventually(
    probe: Callable[[], Awaitable[Any]], *, within: float, what: str, interval: float = 0.25
) -> Any:
    """The first truthy result of `probe`; failures and falsy results are retried."""
    deadline = time.monotonic() + within
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = await probe()
        except (httpx.HTTPError, OSError) as exc:
            last = exc
        else:
            if last:
                return last
        await asyncio.sleep(interval)
    raise AssertionError(f"{what} not within {within:.0f}s; last: {last!r}")


async def _job(client: httpx.AsyncClient, user: Account, job_id: str) -> dict[str, Any] | None:
    """The job, or None while the gateway cannot reach what it needs (503/504)."""
    response = await client.get(f"/api/v1/detect/jobs/{job_id}", headers=user.headers)
    if response.status_code in (502, 503, 504):
        _assert_clean_error(response, 502, 503, 504)
        return None
    assert response.status_code == 200, response.text
    return response.json()


async def _finished(client: httpx.AsyncClient, user: Account, job_id: str, within: float) -> dict:
    async def done() -> dict[str, Any] | None:
        job = await _job(client, user, job_id)
        return job if job and job["status"] in ("completed", "failed") else None

    return await _eventually(done, within=within, what=f"job {job_id} finished")


async def _submit(client: httpx.AsyncClient, user: Account, paths: list[Path]) -> dict[str, Any]:
    files = [("files", (path.name, path.read_bytes(), "image/jpeg")) for path in paths]
    submitted = await client.post(BATCH, files=files, headers=user.headers)
    assert submitted.status_code == 202, submitted.text
    return submitted.json()


def _completed_events(stack: Stack, job_id: str) -> list[str]:
    """Ids of the job.completed events for this job in the events stream (one per entry)."""
    redis = Redis.from_url(stack.redis_url)
    try:
        entries = redis.xrange(EVENTS_STREAM)
    finally:
        redis.close()
    ids = []
    for _, fields in entries:
        event = event_from_stream(fields)
        if event.type == "job.completed" and event.job_finished.job_id == job_id:
            ids.append(event.id)
    return ids


async def _assert_job_done_exactly_once(
    client: httpx.AsyncClient, stack: Stack, user: Account, job: dict[str, Any], total: int
) -> None:
    assert job["status"] == "completed", job
    assert (job["total"], job["processed"], job["failed"]) == (total, total, 0), job
    detection_ids = [item["detection_id"] for item in job["items"]]
    assert all(item["status"] == "completed" for item in job["items"]), job["items"]
    assert len(set(detection_ids)) == total
    history = await client.get(HISTORY, params={"limit": 100}, headers=user.headers)
    assert history.status_code == 200, history.text
    assert history.json()["total"] == total
    assert {item["detection_id"] for item in history.json()["items"]} == set(detection_ids)

    # The relay is at least once (consumers dedupe by event id): one distinct event.
    async def published() -> list[str]:
        return await asyncio.to_thread(_completed_events, stack, job["job_id"])

    events = await _eventually(published, within=30, what="job.completed published")
    assert len(set(events)) == 1, events


# ---------------------------------------------------------------- crash of detection-service


async def _processed_in_db(stack: Stack, job_id: str) -> int:
    """The committed item count, read past the services (which may be down right now)."""
    connection = await asyncpg.connect(
        stack.database_url.replace("postgresql+asyncpg://", "postgresql://")
    )
    try:
        return int(
            await connection.fetchval(
                "SELECT processed FROM detection.jobs WHERE id = $1", uuid.UUID(job_id)
            )
        )
    finally:
        await connection.close()


async def _cut_midway(
    stack: Stack,
    client: httpx.AsyncClient,
    fault: Callable[[], None],
    repair: Callable[[], None],
) -> tuple[Account, dict[str, Any], int]:
    """Submit coco8 (8 images) and inject `fault` once the first item is in; returns the
    user, the job and how many items had committed when the fault landed. A job that won
    the race and finished first is repaired around and tried again with a fresh user."""
    paths = _coco8()
    assert len(paths) == 8, f"coco8 images missing under {IMAGES}"
    for _attempt in range(3):
        user = await _user(client)
        job = await _submit(client, user, paths)

        async def started(job_id: str = job["job_id"], owner: Account = user) -> bool:
            current = await _job(client, owner, job_id)
            return bool(current and current["processed"] >= 1)

        await _eventually(started, within=60, what="first item", interval=0.02)
        await asyncio.to_thread(fault)
        cut_at = await _processed_in_db(stack, job["job_id"])
        if cut_at < len(paths):
            return user, job, cut_at
        await asyncio.to_thread(repair)
    pytest.skip("every job finished before the fault could land")


# ---------------------------------------------------------------- crashes, healed by supervision

PARTS = ("gateway", "auth", "detection", "notification", "triton", "redis", "postgres")


def _crash(stack: Stack, part: str) -> int:
    """kill -9 of the part's main process, as a person or the OOM killer would: its
    children (PostgreSQL backends, Triton stubs) are left to the supervision. Returns the pid."""
    pid = stack.processes[part].pid
    os.kill(pid, signal.SIGKILL)
    return pid


async def _restarted_by_itself(stack: Stack, part: str, before: int, dead_pid: int) -> None:
    """Supervision brought the part back and its readiness probe passed; nobody here helped."""

    async def back() -> bool:
        process = stack.processes[part]
        return stack.restarts.get(part, 0) > before and process.running()

    await _eventually(back, within=180, what=f"{part} restarted", interval=0.2)
    assert stack.processes[part].pid != dead_pid
    assert stack.restarts[part] == before + 1, stack.restarts


async def _api_answers(stack: Stack, client: httpx.AsyncClient, user: Account) -> None:
    async def answers() -> bool:
        me = await client.get(ME, headers=user.headers)
        ready = await client.get(f"{stack.gateway_metrics_url}/ready")
        return me.status_code == 200 and ready.status_code == 200

    await _eventually(answers, within=60, what="the API and /ready answering again")


@pytest.mark.parametrize("part", PARTS)
async def test_a_part_killed_mid_job_is_restarted_by_itself_and_the_job_completes_once(
    isolated: Stack, client: httpx.AsyncClient, part: str
) -> None:
    paths = _coco8()
    assert len(paths) == 8, f"coco8 images missing under {IMAGES}"
    others = {name: count for name, count in isolated.restarts.items() if name != part}
    for _attempt in range(3):
        user = await _user(client)
        job = await _submit(client, user, paths)
        last: dict[str, Any] = {}

        async def started(
            job_id: str = job["job_id"], owner: Account = user, seen: dict[str, Any] = last
        ) -> bool:
            current = await _job(client, owner, job_id)
            seen.update(current or {})
            return bool(current and current["processed"] >= 1)

        await _eventually(started, within=60, what="first item", interval=0.02)
        before = isolated.restarts.get(part, 0)
        dead_pid = await asyncio.to_thread(_crash, isolated, part)
        # What had committed when the fault landed (PostgreSQL itself: the last look before).
        cut_at = (
            last["processed"]
            if part == "postgres"
            else await _processed_in_db(isolated, job["job_id"])
        )
        await _restarted_by_itself(isolated, part, before, dead_pid)
        if cut_at < len(paths):
            break
    else:
        pytest.skip("every job finished before the fault could land")
    done = await _finished(client, user, job["job_id"], within=180)
    await _assert_job_done_exactly_once(client, isolated, user, done, len(paths))
    await _api_answers(isolated, client, user)
    # The crash stayed where it happened: no other part died of it.
    assert {n: c for n, c in isolated.restarts.items() if n != part} == others
    assert not isolated.exited()


async def test_a_part_that_keeps_crashing_is_restarted_with_a_growing_delay(
    isolated: Stack,
) -> None:
    """kill -9 of the mail sink three times over: each comes back, each a little later."""
    part = "mail-sink"
    gaps = []
    for _ in range(3):
        before = isolated.restarts.get(part, 0)
        dead_pid = await asyncio.to_thread(_crash, isolated, part)
        crashed_at = time.monotonic()
        await _restarted_by_itself(isolated, part, before, dead_pid)
        gaps.append(time.monotonic() - crashed_at)
    # 1 s, 2 s, 4 s of backoff (readiness adds a little to each).
    assert gaps[0] >= 0.9 and gaps[1] >= 1.9 and gaps[2] >= 3.9, gaps
    assert gaps[0] < gaps[1] < gaps[2], gaps


# ---------------------------------------------------------------- Redis restart


async def test_a_job_survives_a_redis_restart(isolated: Stack, client: httpx.AsyncClient) -> None:
    user, job, cut_at = await _cut_midway(
        isolated,
        client,
        fault=lambda: isolated.stop_process("redis"),
        repair=lambda: isolated.start_process("redis"),
    )
    assert cut_at < 8
    await asyncio.sleep(1.0)  # the workers meet the outage, not just the restart
    await asyncio.to_thread(isolated.start_process, "redis")
    done = await _finished(client, user, job["job_id"], within=120)
    await _assert_job_done_exactly_once(client, isolated, user, done, 8)
    # Authenticated requests work again (the revocation list is back).
    assert (await client.get(ME, headers=user.headers)).status_code == 200


# ---------------------------------------------------------------- Triton outage


async def test_without_triton_detection_is_a_503_and_queued_jobs_wait_for_it(
    isolated: Stack, client: httpx.AsyncClient
) -> None:
    user = await _user(client)
    image = BUS_JPG.read_bytes()
    await asyncio.to_thread(isolated.stop_process, "triton")
    try:
        started = time.perf_counter()
        refused = await client.post(
            IMAGE, files={"file": ("bus.jpg", image, "image/jpeg")}, headers=user.headers
        )
        _assert_clean_error(refused, 503)
        assert int(refused.headers["retry-after"]) >= 1
        assert time.perf_counter() - started < 15
        job = await _submit(client, user, _coco8()[:2])
        await asyncio.sleep(3)
        waiting = await _job(client, user, job["job_id"])
        assert waiting is not None
        assert waiting["status"] in ("pending", "processing"), waiting
        assert waiting["failed"] == 0
    finally:
        await asyncio.to_thread(isolated.start_process, "triton")
    done = await _finished(client, user, job["job_id"], within=120)
    assert (done["status"], done["processed"], done["failed"]) == ("completed", 2, 0), done

    async def detects() -> bool:
        again = await client.post(
            IMAGE, files={"file": ("bus.jpg", image, "image/jpeg")}, headers=user.headers
        )
        return again.status_code == 200

    await _eventually(detects, within=30, what="synchronous detection back")


# ---------------------------------------------------------------- PostgreSQL outage


async def test_a_brief_postgres_outage_answers_503_with_retry_after_and_heals_unrestarted(
    isolated: Stack, client: httpx.AsyncClient
) -> None:
    user = await _user(client)
    before = {name: isolated.processes[name].pid for name in ("auth", "detection", "gateway")}
    signup = {"email": f"pg-{uuid.uuid4().hex}@example.com", "password": PASSWORD, "name": "P"}

    def requests() -> list[Callable[[], Awaitable[httpx.Response]]]:
        return [
            lambda: client.get(ME, headers=user.headers),
            lambda: client.get(HISTORY, headers=user.headers),
            lambda: client.post("/api/v1/auth/signup", json=signup, headers=fresh_network()),
        ]

    await asyncio.to_thread(isolated.stop_process, "postgres")
    try:
        for send in requests():
            response = await send()
            error = _assert_clean_error(response, 503)
            assert error["code"] == "unavailable", error
            assert int(response.headers["retry-after"]) >= 1
    finally:
        await asyncio.to_thread(isolated.start_process, "postgres")

    async def healed() -> bool:
        responses = [await send() for send in requests()[:2]]
        return all(response.status_code == 200 for response in responses)

    await _eventually(healed, within=30, what="requests served again after the outage")
    created = await client.post("/api/v1/auth/signup", json=signup, headers=fresh_network())
    # 202 whether the sign-up during the outage had already committed or not.
    assert created.status_code == 202, created.text
    after = {name: isolated.processes[name].pid for name in ("auth", "detection", "gateway")}
    assert after == before, "a service was restarted"
    assert not isolated.exited()


# ---------------------------------------------------------------- graceful shutdown


async def _in_flight_detections(
    client: httpx.AsyncClient, user: Account, count: int
) -> tuple[list[asyncio.Task[httpx.Response]], Callable[[], int]]:
    image = BUS_JPG.read_bytes()
    finished = 0

    async def one() -> httpx.Response:
        nonlocal finished
        response = await client.post(
            IMAGE,
            params={"store": "false"},
            files={"file": ("bus.jpg", image, "image/jpeg")},
            headers=user.headers,
        )
        finished += 1
        return response

    tasks = [asyncio.create_task(one()) for _ in range(count)]
    return tasks, lambda: finished


@pytest.mark.parametrize("target", ["gateway", "detection"])
async def test_sigterm_lets_requests_in_flight_finish(
    isolated: Stack, client: httpx.AsyncClient, target: str
) -> None:
    user = await _user(client)
    # Warm: the model path is hot, so what is slow below is the queue, not a first call.
    warm = await client.post(
        IMAGE,
        params={"store": "false"},
        files={"file": ("bus.jpg", BUS_JPG.read_bytes(), "image/jpeg")},
        headers=user.headers,
    )
    assert warm.status_code == 200, warm.text
    tasks, finished = await _in_flight_detections(client, user, 12)
    await asyncio.sleep(0.3)
    done_at_sigterm = finished()
    process = isolated.processes[target]
    await asyncio.to_thread(process.stop, timeout=60)
    responses = await asyncio.gather(*tasks)
    assert done_at_sigterm < len(tasks), "nothing was in flight at SIGTERM"
    assert [response.status_code for response in responses] == [200] * len(tasks), [
        response.text for response in responses if response.status_code != 200
    ]
    # Uvicorn re-raises the SIGTERM it handled once it has drained, hence -15 for the gateway.
    assert process.returncode in (0, -signal.SIGTERM), process.log_tail()
    if target == "gateway":
        assert "Application shutdown complete" in process.log_tail(20)
    else:
        assert "gRPC server stopped" in process.log_tail(20)
    await asyncio.to_thread(isolated.start_process, target)
    after = await client.get(ME, headers=user.headers)
    assert after.status_code == 200
