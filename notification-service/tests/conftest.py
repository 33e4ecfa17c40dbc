"""The notification service in-process against real servers: the session's PostgreSQL and
Redis, a real SMTP server (aiosmtpd), a real HTTP server for webhook receivers and Brevo,
and real gRPC servers standing in for auth-service and detection-service.

Events travel the production path: a producer's outbox table, the OutboxRelay, the Redis
stream, the consumer group.
"""

import asyncio
import base64
import json
import threading
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import grpc
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from redis.asyncio import Redis
from sqlalchemy import Table, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from notification_service.config import NotificationSettings
from notification_service.dev_smtp import MailSink
from notification_service.server import Runtime, runner
from objectvision.v1 import (
    auth_pb2,
    auth_pb2_grpc,
    common_pb2,
    detection_pb2,
    detection_pb2_grpc,
    notification_pb2,
    notification_pb2_grpc,
)
from objectvision_common.db import create_engine_for, schema_metadata, session_factory
from objectvision_common.errors import NotFound, PermissionDenied, Unauthenticated, Unavailable
from objectvision_common.grpc_client import insecure_channel
from objectvision_common.grpc_server import GrpcApp, ServiceRegistration
from objectvision_common.identity import principal_from_metadata, principal_metadata
from objectvision_common.outbox import OutboxRelay, add_event, outbox_table
from objectvision_common.runner import service_app
from objectvision_devstack.processes import free_port
from objectvision_devstack.pytest_plugin import Infrastructure

SERVICE_SECRET = "notification-tests-service-secret"
BREVO_PATH = "/v3/smtp/email"


# --- a real HTTP server: webhook receivers and Brevo's endpoint --------------------------


@dataclass(frozen=True)
class ReceivedRequest:
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    """Records every request; answers each path from its script, then with `default`."""

    base_url: str = ""
    requests: list[ReceivedRequest] = field(default_factory=list)
    scripts: dict[str, list[int]] = field(default_factory=dict)
    defaults: dict[str, int] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def url(self, path: str) -> str:
        return f"{self.base_url}{path}"

    def script(self, path: str, statuses: list[int], *, then: int = 200) -> None:
        with self.lock:
            self.scripts[path] = list(statuses)
            self.defaults[path] = then

    def status_for(self, path: str) -> int:
        with self.lock:
            script = self.scripts.get(path)
            if script:
                return script.pop(0)
            return self.defaults.get(path, 201 if path == BREVO_PATH else 200)

    def record(self, request: ReceivedRequest) -> None:
        with self.lock:
            self.requests.append(request)

    def received(self, path: str) -> list[ReceivedRequest]:
        with self.lock:
            return [request for request in self.requests if request.path == path]


def _handler_for(receiver: Receiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            body = self.rfile.read(length)
            receiver.record(
                ReceivedRequest(
                    path=self.path, headers={k: v for k, v in self.headers.items()}, body=body
                )
            )
            status = receiver.status_for(self.path)
            answer = json.dumps({"messageId": f"<{uuid.uuid4()}@brevo>"}).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, format: str, *args: Any) -> None:
            return

    return Handler


@pytest.fixture(scope="session")
def receiver() -> Iterator[Receiver]:
    state = Receiver()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(state))
    state.base_url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield state
    server.shutdown()
    server.server_close()


# --- a real SMTP server --------------------------------------------------------------------


@pytest.fixture(scope="session")
def mail_sink(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MailSink]:
    sink = MailSink(tmp_path_factory.mktemp("mail"), port=free_port())
    sink.start()
    yield sink
    sink.stop()


def mail_to(sink: MailSink, address: str) -> list[Any]:
    return [message for message in sink.messages() if address in str(message["To"])]


# --- auth-service and detection-service as real gRPC servers --------------------------------


@dataclass
class StoredUser:
    email: str
    name: str
    notifications_enabled: bool = True
    # The address the account waits to move to (ADR 0033); empty when none.
    pending_email: str = ""
    # Answer UNAVAILABLE this many times first, like an auth-service restarting.
    unavailable_times: int = 0
    # A disabled account: auth-service refuses its principal (UNAUTHENTICATED), as it does
    # any caller whose account is disabled or gone.
    active: bool = True


class StandInAuth(auth_pb2_grpc.AuthServiceServicer):
    """GetUser and GetSettings with the real service's rules (signed callers see themselves,
    if their account exists and is active), and GetJwks publishing a real Ed25519 key that
    `access_token` signs with."""

    KEY_ID = "notification-tests"
    ISSUER = "objectvision-auth"
    AUDIENCE = "objectvision"

    def __init__(self) -> None:
        self.users: dict[str, StoredUser] = {}
        self.signing_key = Ed25519PrivateKey.generate()

    def access_token(self, user_id: str, *, admin: bool = False) -> str:
        now = int(time.time())
        claims = {
            "sub": user_id,
            "jti": uuid.uuid4().hex,
            "iat": now,
            "nbf": now,
            "exp": now + 300,
            "iss": self.ISSUER,
            "aud": self.AUDIENCE,
            "typ": "access",
            "admin": admin,
            # The session (refresh-token family) the gateway checks against its revocation list.
            "sid": str(uuid.uuid4()),
        }
        return jwt.encode(claims, self.signing_key, algorithm="EdDSA", headers={"kid": self.KEY_ID})

    async def GetJwks(self, request, context):  # noqa: N802
        public = self.signing_key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        key = auth_pb2.JsonWebKey(
            kty="OKP",
            crv="Ed25519",
            x=base64.urlsafe_b64encode(public).rstrip(b"=").decode(),
            kid=self.KEY_ID,
            alg="EdDSA",
            use="sig",
        )
        return auth_pb2.Jwks(keys=[key], issuer=self.ISSUER, audience=self.AUDIENCE)

    def _user(self, requested: str, context: grpc.aio.ServicerContext) -> tuple[str, StoredUser]:
        principal = principal_from_metadata(context.invocation_metadata(), secret=SERVICE_SECRET)
        caller = self.users.get(principal.user_id)
        if caller is None or not caller.active:
            raise Unauthenticated("the caller's account does not exist or is disabled")
        user_id = requested or principal.user_id
        if user_id != principal.user_id and not principal.is_admin:
            raise PermissionDenied("not yours")
        user = self.users.get(user_id)
        if user is None:
            raise NotFound("no such user")
        if user.unavailable_times > 0:
            user.unavailable_times -= 1
            raise Unavailable("restarting")
        return user_id, user

    async def GetUser(self, request, context):  # noqa: N802
        user_id, user = self._user(request.user_id, context)
        return auth_pb2.User(
            id=user_id,
            email=user.email,
            name=user.name,
            is_active=True,
            pending_email=user.pending_email,
        )

    async def GetSettings(self, request, context):  # noqa: N802
        user_id, user = self._user(request.user_id, context)
        return auth_pb2.UserSettings(
            user_id=user_id, notifications_enabled=user.notifications_enabled
        )


class StandInDetection(detection_pb2_grpc.DetectionServiceServicer):
    """GetJob with the real service's rule: a job is visible to its owner only."""

    def __init__(self) -> None:
        self.jobs: dict[str, tuple[str, detection_pb2.Job]] = {}

    async def GetJob(self, request, context):  # noqa: N802
        principal = principal_from_metadata(context.invocation_metadata(), secret=SERVICE_SECRET)
        owner, job = self.jobs.get(request.job_id, ("", None))
        if job is None or owner != principal.user_id:
            raise NotFound("no such job")
        return job


@dataclass
class Peers:
    address: str
    auth: StandInAuth
    detection: StandInDetection


@pytest.fixture(scope="session")
async def peers() -> AsyncIterator[Peers]:
    auth, detection = StandInAuth(), StandInDetection()
    app = GrpcApp(
        [
            ServiceRegistration(
                "objectvision.v1.AuthService", auth, auth_pb2_grpc.add_AuthServiceServicer_to_server
            ),
            ServiceRegistration(
                "objectvision.v1.DetectionService",
                detection,
                detection_pb2_grpc.add_DetectionServiceServicer_to_server,
            ),
        ],
        host="127.0.0.1",
        port=0,
    )
    port = await app.start()
    yield Peers(f"127.0.0.1:{port}", auth, detection)
    await app.stop()


# --- the service under test -----------------------------------------------------------------


@pytest.fixture(scope="session")
def settings(
    infrastructure: Infrastructure, mail_sink: MailSink, peers: Peers
) -> NotificationSettings:
    return NotificationSettings(
        _env_file=None,
        DATABASE_URL=infrastructure.database_url,
        REDIS_URL=infrastructure.redis_url,
        SERVICE_TOKEN_SECRET=SERVICE_SECRET,
        LOG_JSON=False,
        NOTIFICATION_GRPC_PORT=0,
        NOTIFICATION_METRICS_PORT=0,
        EVENTS_STREAM=f"test:notification:events:{uuid.uuid4().hex[:8]}",
        EVENTS_BLOCK_MS=100,
        EVENTS_CLAIM_IDLE_SECONDS=0.5,
        EMAIL_TRANSPORT="smtp",
        SMTP_HOST="127.0.0.1",
        SMTP_PORT=mail_sink.port,
        EMAIL_SENDER="noreply@objectvision.test",
        PUBLIC_BASE_URL="https://objectvision.test",
        DELIVERY_MAX_ATTEMPTS=3,
        DELIVERY_BACKOFF_BASE_SECONDS=0.05,
        DELIVERY_BACKOFF_MAX_SECONDS=0.2,
        DELIVERY_POLL_SECONDS=0.05,
        WEBHOOK_TIMEOUT_SECONDS=2,
        WEBHOOK_ALLOW_PRIVATE=True,
        WEBHOOK_SECRET_KEY="notification-tests-webhook-key",
        # A webhook whose deliveries fail is disabled after three dead-lettered in a row,
        # however quickly (ADR 0046): several tests make one or two on purpose.
        WEBHOOK_DISABLE_AFTER_FAILURES=3,
        WEBHOOK_DISABLE_AFTER_SECONDS=0,
        AUTH_SERVICE_ADDR=peers.address,
        DETECTION_SERVICE_ADDR=peers.address,
        JOB_PROGRESS_POLL_SECONDS=1,
    )


@pytest.fixture(scope="session")
def migrated(settings: NotificationSettings) -> NotificationSettings:
    runner().migrate(settings)
    return settings


@dataclass
class Service:
    runtime: Runtime
    stub: notification_pb2_grpc.NotificationServiceStub
    address: str


@pytest.fixture(scope="session")
async def service(migrated: NotificationSettings) -> AsyncIterator[Service]:
    runtime = Runtime.build(migrated)
    app = service_app(migrated, runtime.parts())
    port = await app.start()
    address = f"127.0.0.1:{port}"
    async with insecure_channel(address) as channel:
        yield Service(runtime, notification_pb2_grpc.NotificationServiceStub(channel), address)
    await app.stop()


# --- a producer: its outbox, and the relay that publishes it --------------------------------


@dataclass
class Producer:
    sessions: async_sessionmaker[AsyncSession]
    table: Table

    async def publish(self, event: notification_pb2.Event) -> str:
        """Stage the event as a producer would; the running relay takes it to the stream."""
        async with self.sessions() as session, session.begin():
            return str(await add_event(session, self.table, event))

    async def publish_again(self, event_id: str) -> None:
        """Make the relay publish an event a second time, as after a crash before commit."""
        async with self.sessions() as session, session.begin():
            await session.execute(
                update(self.table)
                .where(self.table.c.id == uuid.UUID(event_id))
                .values(published_at=None)
            )


@pytest.fixture(scope="session")
async def producer(
    infrastructure: Infrastructure, settings: NotificationSettings
) -> AsyncIterator[Producer]:
    schema = f"producer_{uuid.uuid4().hex[:8]}"
    metadata = schema_metadata(schema)
    table = outbox_table(metadata)
    engine = create_engine_for(infrastructure.database_url, pool_size=2)
    async with engine.begin() as connection:
        await connection.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
        await connection.run_sync(metadata.create_all)
    sessions = session_factory(engine)
    redis = Redis.from_url(infrastructure.redis_url)
    relay = OutboxRelay(sessions, table, redis, stream=settings.events_stream, poll_interval=0.05)
    task = asyncio.create_task(relay.run())
    yield Producer(sessions, table)
    relay.stop()
    await task
    await redis.aclose()
    async with engine.begin() as connection:
        await connection.exec_driver_sql(f'DROP SCHEMA "{schema}" CASCADE')
    await engine.dispose()


# --- helpers for tests ----------------------------------------------------------------------


def signed(user_id: str, *, admin: bool = False) -> tuple[tuple[str, str], ...]:
    """The metadata the gateway would attach for this caller."""
    principal = common_pb2.Principal(user_id=user_id, is_admin=admin, auth_method="jwt")
    return principal_metadata(principal, secret=SERVICE_SECRET)


@pytest.fixture
def new_user(peers: Peers) -> Callable[..., tuple[str, str]]:
    """A user known to the auth stand-in: returns (user_id, email)."""

    def make(
        *,
        notifications: bool = True,
        name: str = "Ada",
        unavailable_times: int = 0,
        active: bool = True,
    ):
        user_id = str(uuid.uuid4())
        email = f"user-{user_id[:8]}@example.test"
        peers.auth.users[user_id] = StoredUser(
            email=email,
            name=name,
            notifications_enabled=notifications,
            unavailable_times=unavailable_times,
            active=active,
        )
        return user_id, email

    return make


async def eventually(
    check: Callable[[], Awaitable[Any] | Any], *, within: float = 15.0, interval: float = 0.05
) -> Any:
    """Poll until `check` returns something truthy; return it."""
    deadline = asyncio.get_running_loop().time() + within
    while True:
        result = check()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return result
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(interval)


@pytest.fixture(scope="session")
def wait() -> Callable[..., Awaitable[Any]]:
    return eventually


@pytest.fixture(scope="session")
def mail() -> Callable[[MailSink, str], list[Any]]:
    return mail_to


@pytest.fixture(scope="session")
def as_user() -> Callable[..., tuple[tuple[str, str], ...]]:
    return signed


def registered(user_id: str, email: str, name: str) -> notification_pb2.Event:
    return notification_pb2.Event(
        type="user.registered",
        user_id=user_id,
        user_registered=notification_pb2.UserRegistered(email=email, name=name),
    )


def address_notice(event_type: str, user_id: str) -> notification_pb2.Event:
    """`user.signup_attempted` or `user.email_change_attempted`: only the account, as
    auth-service writes them."""
    return notification_pb2.Event(type=event_type, user_id=user_id)


def finished(
    user_id: str, job_id: str, *, status: str = "completed", counts: dict[str, int] | None = None
) -> notification_pb2.Event:
    counts = counts if counts is not None else {"person": 3, "car": 1}
    return notification_pb2.Event(
        type=f"job.{status}",
        user_id=user_id,
        job_finished=notification_pb2.JobFinished(
            job_id=job_id,
            status=status,
            total=4,
            processed=4 if status == "completed" else 2,
            failed=0 if status == "completed" else 2,
            class_counts=counts,
            error="" if status == "completed" else "model server unavailable",
        ),
    )


def cancelled(
    user_id: str, job_id: str, *, processed: int = 1, counts: dict[str, int] | None = None
) -> notification_pb2.Event:
    """A job its owner stopped after `processed` of its 4 images (detection's CancelJob)."""
    return notification_pb2.Event(
        type="job.cancelled",
        user_id=user_id,
        job_finished=notification_pb2.JobFinished(
            job_id=job_id,
            status="cancelled",
            total=4,
            processed=processed,
            class_counts=counts if counts is not None else {"person": 2},
        ),
    )


def progress(user_id: str, job_id: str, processed: int, total: int = 4) -> notification_pb2.Event:
    return notification_pb2.Event(
        type="job.progress",
        user_id=user_id,
        job_progress=notification_pb2.JobProgress(job_id=job_id, total=total, processed=processed),
    )


class Events:
    """Builders of the envelopes producers write."""

    registered = staticmethod(registered)
    address_notice = staticmethod(address_notice)
    finished = staticmethod(finished)
    cancelled = staticmethod(cancelled)
    progress = staticmethod(progress)


@pytest.fixture(scope="session")
def events() -> type[Events]:
    return Events
