"""The real auth service, started once per test session on real PostgreSQL and Redis.

Tests talk to it only through gRPC, as the gateway does, and look at the database and
Redis directly only to check what was (or was not) stored.
"""

import asyncio
import base64
import json
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from google.protobuf import json_format
from redis.asyncio import Redis
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from auth_service.config import (
    ARGON2_MIN_MEMORY_COST_KIB,
    ARGON2_MIN_PARALLELISM,
    ARGON2_MIN_TIME_COST,
    AuthSettings,
)
from auth_service.server import runner
from auth_service.tokens.keys import SigningKey
from objectvision.v1 import auth_pb2, auth_pb2_grpc, common_pb2, notification_pb2
from objectvision_common.db import create_engine_for
from objectvision_common.grpc_client import insecure_channel
from objectvision_common.identity import principal_metadata
from objectvision_common.sealing import event_secrets

SERVICE_TOKEN_SECRET = "test-service-token-secret"
PASSWORD = "correct horse battery staple"
Metadata = tuple[tuple[str, str], ...]


@pytest.fixture(scope="session")
def signing_key() -> SigningKey:
    return SigningKey.from_private_key(Ed25519PrivateKey.generate())


@pytest.fixture(scope="session")
def admin_email() -> str:
    return f"admin-{uuid.uuid4().hex}@example.com"


@pytest.fixture(scope="session")
def settings(
    infrastructure: Any, signing_key: SigningKey, admin_email: str, tmp_path_factory: Any
) -> AuthSettings:
    return AuthSettings(
        _env_file=None,
        DATABASE_URL=infrastructure.database_url,
        REDIS_URL=infrastructure.redis_url,
        OBJECTVISION_DATA_DIR=tmp_path_factory.mktemp("auth-data"),
        SERVICE_TOKEN_SECRET=SERVICE_TOKEN_SECRET,
        JWT_PRIVATE_KEY=signing_key.private_pem().decode(),
        AUTH_GRPC_PORT=0,
        AUTH_METRICS_PORT=0,
        # The OWASP floor the settings accept: real Argon2id, as fast as allowed.
        ARGON2_TIME_COST=ARGON2_MIN_TIME_COST,
        ARGON2_MEMORY_COST_KIB=ARGON2_MIN_MEMORY_COST_KIB,
        ARGON2_PARALLELISM=ARGON2_MIN_PARALLELISM,
        ADMIN_EMAILS=f" {admin_email.upper()} , someone-else@example.com",
        GRPC_SHUTDOWN_GRACE_SECONDS=1,
    )


@pytest.fixture(scope="session")
async def auth_address(settings: AuthSettings) -> AsyncIterator[str]:
    await asyncio.to_thread(runner().migrate, settings)
    app = await runner().app(settings)
    port = await app.start()
    yield f"127.0.0.1:{port}"
    await app.stop()


@pytest.fixture(scope="session")
async def channel(auth_address: str) -> AsyncIterator[grpc.aio.Channel]:
    async with insecure_channel(auth_address) as channel:
        yield channel


@pytest.fixture(scope="session")
def auth(channel: grpc.aio.Channel) -> auth_pb2_grpc.AuthServiceStub:
    return auth_pb2_grpc.AuthServiceStub(channel)


@pytest.fixture(scope="session")
async def db(settings: AuthSettings, auth_address: str) -> AsyncIterator[AsyncEngine]:
    """A separate connection for looking at what the service stored."""
    engine = create_engine_for(settings.database_url, pool_size=2)
    yield engine
    await engine.dispose()


@pytest.fixture(scope="session")
async def redis(settings: AuthSettings) -> AsyncIterator[Redis]:
    client = Redis.from_url(settings.redis_url, decode_responses=True)
    yield client
    await client.aclose()


def as_user(
    user_id: str,
    *,
    is_admin: bool = False,
    auth_method: str = "jwt",
    secret: str | None = None,
    session_id: str = "",
) -> Metadata:
    principal = common_pb2.Principal(
        user_id=user_id,
        is_admin=is_admin,
        auth_method=auth_method,
        credential_id="test",
        session_id=session_id,
    )
    return principal_metadata(principal, secret=secret or SERVICE_TOKEN_SECRET)


@dataclass(frozen=True)
class Account:
    user: auth_pb2.User
    email: str
    password: str

    @property
    def id(self) -> str:
        return self.user.id

    @property
    def metadata(self) -> Metadata:
        """What the gateway would forward for this user signed in with a JWT."""
        return as_user(self.user.id, is_admin=self.user.is_admin)


class Accounts:
    """Signs up fresh users, each with a unique email, through the real RPC.

    SignUp answers nothing about the account (it must not differ for a taken address), so
    the new account is read back as its owner would see it: GetUser as that user.
    """

    def __init__(
        self, auth: auth_pb2_grpc.AuthServiceStub, admin_email: str, database: "Database"
    ) -> None:
        self._auth = auth
        self._admin_email = admin_email
        self._database = database
        self._admin: Account | None = None

    @staticmethod
    def new_email() -> str:
        return f"user-{uuid.uuid4().hex}@example.com"

    async def create(self, *, password: str = PASSWORD, name: str = "Ada Lovelace") -> Account:
        email = self.new_email()
        await self._auth.SignUp(auth_pb2.SignUpRequest(email=email, password=password, name=name))
        return Account(user=await self.stored(email), email=email, password=password)

    async def stored(self, email: str) -> auth_pb2.User:
        """The account stored under `email`, as GetUser shows it to its owner."""
        user_id = await self._database.value(
            "SELECT id::text FROM auth.users WHERE email = :email", email=email
        )
        assert user_id is not None, f"no account for {email}"
        return await self._auth.GetUser(auth_pb2.GetUserRequest(), metadata=as_user(user_id))

    async def verification_token(self, user_id: str) -> str:
        """The token of the newest verification link staged for the account, read from the
        outbox where notification-service would read it (the email's link)."""
        payload = await self._database.value(
            "SELECT payload FROM auth.outbox WHERE event_type = :type"
            " AND payload->>'userId' = :id ORDER BY created_at DESC LIMIT 1",
            type="user.email_verification_requested",
            id=user_id,
        )
        assert payload is not None, f"no verification link for {user_id}"
        event = json_format.ParseDict(payload, notification_pb2.Event())
        return self._database.link_token(event.email_verification_requested)

    async def verify(self, account: Account) -> auth_pb2.User:
        """Open the account's newest verification link, as its owner would; the account as
        stored afterwards."""
        token = await self.verification_token(account.id)
        await self._auth.VerifyEmail(auth_pb2.VerifyEmailRequest(token=token))
        return await self.stored(account.email)

    async def change_email(self, account: Account, new_email: str) -> auth_pb2.User:
        """Move the account to `new_email` as its owner does (ADR 0033): ask for the change
        with the password, then open the link mailed to the new address; the account as
        stored afterwards."""
        await self._auth.UpdateUser(
            auth_pb2.UpdateUserRequest(email=new_email, current_password=account.password),
            metadata=account.metadata,
        )
        token = await self.verification_token(account.id)
        await self._auth.VerifyEmail(auth_pb2.VerifyEmailRequest(token=token))
        return await self._auth.GetUser(auth_pb2.GetUserRequest(), metadata=account.metadata)

    async def admin(self) -> Account:
        """The session's one admin: signed up with an address in ADMIN_EMAILS and promoted
        when it verified that address with the emailed link (ADR 0029)."""
        if self._admin is None:
            await self._auth.SignUp(
                auth_pb2.SignUpRequest(email=self._admin_email, password=PASSWORD, name="Admin")
            )
            signed_up = await self.stored(self._admin_email)
            assert not signed_up.is_admin, "ADMIN_EMAILS promoted an unverified address"
            user = await self.verify(
                Account(user=signed_up, email=self._admin_email, password=PASSWORD)
            )
            self._admin = Account(user=user, email=self._admin_email, password=PASSWORD)
        return self._admin

    async def login(self, account: Account) -> auth_pb2.TokenPair:
        return await self._auth.Login(
            auth_pb2.LoginRequest(email=account.email, password=account.password)
        )


@asynccontextmanager
async def started(settings: AuthSettings) -> AsyncIterator[auth_pb2_grpc.AuthServiceStub]:
    """Another auth service beside the session's, on the same database and Redis, started
    with `settings` (a deployment configured otherwise), stopped on exit."""
    app = await runner().app(settings)
    port = await app.start()
    try:
        async with insecure_channel(f"127.0.0.1:{port}") as channel:
            yield auth_pb2_grpc.AuthServiceStub(channel)
    finally:
        await app.stop()


@pytest.fixture(scope="session")
def accounts(
    auth: auth_pb2_grpc.AuthServiceStub, admin_email: str, database: "Database"
) -> Accounts:
    return Accounts(auth, admin_email, database)


@pytest.fixture(scope="session")
def principal() -> Callable[..., Metadata]:
    """Builds gateway-signed principal metadata for any user id."""
    return as_user


@pytest.fixture(scope="session")
def rejected() -> Callable[[grpc.StatusCode, Awaitable[Any]], Awaitable[grpc.aio.AioRpcError]]:
    """Awaits a call that must fail with `code`; returns the error for further checks."""

    async def check(code: grpc.StatusCode, call: Awaitable[Any]) -> grpc.aio.AioRpcError:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await call
        assert caught.value.code() == code, caught.value.details()
        return caught.value

    return check


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unsigned_token(header: dict[str, Any], claims: dict[str, Any]) -> str:
    """The first two parts of a JWT, with no signature yet."""
    return ".".join(
        _b64url(json.dumps(part, separators=(",", ":")).encode()) for part in (header, claims)
    )


class TokenForge:
    """Makes access tokens the service did not issue, to check it refuses the bad ones."""

    def __init__(self, settings: AuthSettings, signing_key: SigningKey) -> None:
        self.settings = settings
        self.key = signing_key

    def claims(self, user_id: str, **overrides: Any) -> dict[str, Any]:
        now = datetime.now(UTC)
        claims = {
            "iss": self.settings.jwt_issuer,
            "aud": self.settings.jwt_audience,
            "sub": user_id,
            "iat": int(now.timestamp()),
            "nbf": int(now.timestamp()),
            "exp": int((now + timedelta(minutes=5)).timestamp()),
            "jti": uuid.uuid4().hex,
            "typ": "access",
            "admin": False,
            "sid": str(uuid.uuid4()),
        }
        claims.update(overrides)
        return {name: value for name, value in claims.items() if value is not None}

    def sign(self, claims: dict[str, Any], *, key: SigningKey | None = None) -> str:
        key = key or self.key
        return jwt.encode(claims, key.private_key, algorithm="EdDSA", headers={"kid": key.kid})

    def token(self, user_id: str, **overrides: Any) -> str:
        """A correctly signed token for `user_id`; a claim set to None is left out."""
        return self.sign(self.claims(user_id, **overrides))


@pytest.fixture(scope="session")
def forge(settings: AuthSettings, signing_key: SigningKey) -> TokenForge:
    return TokenForge(settings, signing_key)


@pytest.fixture(scope="session")
def unsigned() -> Callable[[dict[str, Any], dict[str, Any]], str]:
    return unsigned_token


class Database:
    """Direct reads and writes, for checking storage and for setting up odd states."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def value(self, sql: str, **params: Any) -> Any:
        async with self._engine.connect() as connection:
            return (await connection.execute(text(sql), params)).scalar()

    async def row(self, sql: str, **params: Any) -> Any:
        async with self._engine.connect() as connection:
            return (await connection.execute(text(sql), params)).one_or_none()

    async def rows(self, sql: str, **params: Any) -> list[Any]:
        async with self._engine.connect() as connection:
            return list((await connection.execute(text(sql), params)).all())

    async def execute(self, sql: str, **params: Any) -> None:
        async with self._engine.begin() as connection:
            await connection.execute(text(sql), params)

    @staticmethod
    def link_token(
        requested: notification_pb2.PasswordResetRequested
        | notification_pb2.EmailVerificationRequested,
    ) -> str:
        """The token of a link event read from the outbox, opened as notification-service
        opens it: the event holds it only sealed (ADR 0021, amendment)."""
        assert not requested.token, "a link event carries its token in clear"
        return event_secrets(SERVICE_TOKEN_SECRET).open(requested.sealed_token)


@pytest.fixture(scope="session")
def database(db: AsyncEngine) -> Database:
    return Database(db)
