"""Slow webhook receivers (a hostile try): a receiver that trickles its answer a byte at a
time is cut off at WEBHOOK_TIMEOUT_SECONDS for the whole exchange, one account's slow
receivers take at most DELIVERY_CONCURRENCY_PER_ACCOUNT of the dispatcher's slots while
other accounts' deliveries go on, and asking for ping after ping queues one ping.

The receiver is a real TCP server on 127.0.0.1 that reads each request whole, then sends a
valid `200 OK` one byte every quarter of a second: under the per-read timeout every time, so
only a deadline on the whole exchange ends it before its last byte (about 10 s).
"""

import socket
import socketserver
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import insert, select, update

from notification_service.deliveries.models import deliveries, delivery_attempts
from notification_service.deliveries.service import claim_due, queue_ping
from notification_service.events.models import processed_events
from notification_service.links import ConsoleLinks
from notification_service.webhooks.service import owned_webhook
from objectvision.v1 import notification_pb2

from .test_webhooks import create, webhook_rows

ANSWER = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
BYTE_SECONDS = 0.25
# tests/conftest.py's settings: WEBHOOK_TIMEOUT_SECONDS and the dispatcher's share per account.
TIMEOUT_SECONDS = 2
PER_ACCOUNT = 4


@dataclass
class Trickler:
    url: str = ""
    paths: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def received(self, prefix: str) -> list[str]:
        with self.lock:
            return [path for path in self.paths if path.startswith(prefix)]


@pytest.fixture(scope="module")
def trickler() -> Iterator[Trickler]:
    state = Trickler()

    class Handler(socketserver.StreamRequestHandler):
        def handle(self) -> None:
            request_line = self.rfile.readline().decode("latin-1")
            length = 0
            while (line := self.rfile.readline()) not in (b"\r\n", b""):
                name, _, value = line.decode("latin-1").partition(":")
                if name.strip().lower() == "content-length":
                    length = int(value)
            self.rfile.read(length)
            with state.lock:
                state.paths.append(request_line.split(" ")[1])
            try:
                for byte in ANSWER:
                    self.wfile.write(bytes([byte]))
                    self.wfile.flush()
                    time.sleep(BYTE_SECONDS)
            except OSError:
                pass  # the sender hung up: what this server is here to see

    class Server(socketserver.ThreadingTCPServer):
        daemon_threads = True
        allow_reuse_address = True

    server = Server(("127.0.0.1", 0), Handler)
    server.socket.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield state
    server.shutdown()
    server.server_close()


async def _attempts(service, user_id: str):
    async with service.runtime.sessions() as session:
        rows = await session.execute(
            select(delivery_attempts, deliveries.c.event_type)
            .join(deliveries, deliveries.c.id == delivery_attempts.c.delivery_id)
            .where(deliveries.c.user_id == uuid.UUID(user_id), deliveries.c.channel == "webhook")
            .order_by(delivery_attempts.c.started_at)
        )
        return rows.all()


async def test_a_receiver_trickling_its_answer_is_cut_off_at_the_deadline(
    service, producer, trickler, new_user, as_user, events, wait
) -> None:
    user_id, _ = new_user()
    await create(service, as_user, user_id, f"{trickler.url}/slow/{user_id}", ["job.completed"])
    event_id = await producer.publish(events.finished(user_id, str(uuid.uuid4())))

    first = (await wait(lambda: _attempts(service, user_id), within=30))[0]
    assert first.succeeded is False
    assert first.error == f"the receiver did not answer within {TIMEOUT_SECONDS} s"
    # Cut off at the deadline, not when the answer's last byte came (about 10 s).
    assert first.duration_ms < 2 * TIMEOUT_SECONDS * 1000, first.duration_ms
    [row] = await webhook_rows(service, event_id)
    assert row.last_error == first.error


async def test_one_accounts_slow_receivers_take_its_share_of_the_dispatcher_not_all_of_it(
    service, producer, receiver, trickler, new_user, as_user, events, wait
) -> None:
    slow_user, _ = new_user()
    hooks = [
        await create(service, as_user, slow_user, f"{trickler.url}/share/{slow_user}/{n}")
        for n in range(PER_ACCOUNT + 2)
    ]
    pings = []
    for hook in hooks:
        pings.append(
            await service.stub.PingWebhook(
                notification_pb2.PingWebhookRequest(webhook_id=hook.webhook.id),
                metadata=as_user(slow_user),
            )
        )
    # Asked again while its ping waits or is being sent: the same ping, not a second one.
    again = await service.stub.PingWebhook(
        notification_pb2.PingWebhookRequest(webhook_id=hooks[0].webhook.id),
        metadata=as_user(slow_user),
    )
    assert again.id == pings[0].id

    # Another account's event is delivered while the slow account's pings are still sent.
    other_user, _ = new_user()
    path = f"/fair/{other_user}"
    await create(service, as_user, other_user, receiver.url(path), ["job.completed"])
    event_id = await producer.publish(events.finished(other_user, str(uuid.uuid4())))
    await wait(lambda: receiver.received(path), within=30)
    slow_attempts = await _attempts(service, slow_user)
    assert len(slow_attempts) < 3 * len(pings), "the other account waited for every slow send"

    # Every ping reached the receiver, never more than the account's share at once.
    async def all_tried() -> bool:
        return {row.delivery_id for row in await _attempts(service, slow_user)} == {
            uuid.UUID(ping.id) for ping in pings
        }

    await wait(all_tried, within=60)
    spans = [
        (row.started_at, row.started_at + timedelta(milliseconds=row.duration_ms))
        for row in await _attempts(service, slow_user)
    ]
    most_at_once = max(
        sum(1 for start, end in spans if start <= moment < end) for moment, _ in spans
    )
    assert 2 <= most_at_once <= PER_ACCOUNT, spans
    assert len(trickler.received(f"/share/{slow_user}/")) >= len(pings)
    [delivered] = await webhook_rows(service, event_id)
    assert delivered.state == "delivered"


async def test_a_claim_takes_each_account_within_its_share_and_reaches_past_a_backlog(
    service,
) -> None:
    """The rows are inserted and claimed in one transaction that is rolled back, so the
    running dispatcher never sees them."""
    backlog, other, busy = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()

    def due(account: uuid.UUID | None, n: int) -> dict[str, object]:
        return {
            "id": uuid.uuid4(),
            "event_id": uuid.uuid4(),
            "event_type": "job.completed",
            "user_id": account,
            "channel": "email",
            "target": f"someone-{n}@example.test",
            "payload": {},
            # Earliest first: the backlog's, then the others'.
            "next_attempt_at": datetime.now(UTC) - timedelta(minutes=60 - n),
        }

    rows = [
        *(due(backlog, n) for n in range(10)),
        due(busy, 20),
        due(other, 21),
        due(None, 22),
        due(None, 23),
    ]
    async with service.runtime.sessions() as session:
        await session.execute(
            insert(processed_events),
            [{"event_id": row["event_id"], "event_type": "job.completed"} for row in rows],
        )
        await session.execute(insert(deliveries), rows)
        claimed = await claim_due(
            session=session,
            limit=16,
            lease_seconds=60,
            per_account=PER_ACCOUNT,
            in_flight={busy: PER_ACCOUNT, backlog: 1},
        )
        mine = [d for d in claimed if d.user_id in (backlog, busy, other, None)]
        by_account = Counter(d.user_id for d in mine if d.target.startswith("someone-"))
        await session.rollback()
    # The backlog gets what its share leaves (one in flight: three more), the busy account
    # none, and the rest are reached behind the backlog; an address alone is its own account.
    assert by_account == {backlog: PER_ACCOUNT - 1, other: 1, None: 2}


async def test_pinging_again_tries_a_ping_waiting_for_its_retry_now_and_leaves_one_being_sent(
    service, receiver, new_user, as_user
) -> None:
    """Both states are written in a transaction that is rolled back, so the running
    dispatcher never sends them."""
    user_id, _ = new_user()
    created = await create(service, as_user, user_id, receiver.url(f"/ping-again/{user_id}"))
    links = ConsoleLinks("https://objectvision.test")
    later = datetime.now(UTC) + timedelta(hours=1)

    async def pinged_again(*, attempts: int, recorded: int):
        async with service.runtime.sessions() as session:
            hook = await owned_webhook(
                session=session, user_id=user_id, webhook_id=created.webhook.id
            )
            first = await queue_ping(session=session, webhook=hook, links=links)
            await session.execute(
                update(deliveries)
                .where(deliveries.c.id == first.id)
                .values(attempts=attempts, next_attempt_at=later)
            )
            for attempt in range(1, recorded + 1):
                await session.execute(
                    insert(delivery_attempts).values(
                        delivery_id=first.id,
                        attempt=attempt,
                        started_at=datetime.now(UTC),
                        duration_ms=5.0,
                        succeeded=False,
                        status_code=500,
                    )
                )
            again = await queue_ping(session=session, webhook=hook, links=links)
            due_at = await session.scalar(
                select(deliveries.c.next_attempt_at).where(deliveries.c.id == again.id)
            )
            await session.rollback()
        assert again.id == first.id
        return due_at

    # Failed once, waiting an hour for its retry: due now.
    assert await pinged_again(attempts=1, recorded=1) <= datetime.now(UTC)
    # Claimed for its second attempt, not yet recorded: being sent, left alone.
    assert await pinged_again(attempts=2, recorded=1) == later
