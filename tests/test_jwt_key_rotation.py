"""A JWT signing-key rotation, step by step as docs/runbooks.md gives it, seen through the
gateway: a session that signed in before the rotation keeps working through every step, and
its token stops working once the previous key is removed and the gateway's key set has
aged out (JWKS_MAX_AGE_SECONDS).

One gateway runs throughout; the auth service is restarted on the same address for each step
with that step's keys, on real PostgreSQL and Redis, as a rollout replaces its pods.
"""

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import jwt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from auth_service.config import (
    ARGON2_MIN_MEMORY_COST_KIB,
    ARGON2_MIN_PARALLELISM,
    ARGON2_MIN_TIME_COST,
    AuthSettings,
)
from auth_service.server import runner
from auth_service.tokens.keys import SigningKey
from gateway.app import create_app
from gateway.config import GatewaySettings
from objectvision_devstack.processes import free_port
from objectvision_devstack.pytest_plugin import Infrastructure

SERVICE_TOKEN_SECRET = "key-rotation-test-service-secret"
PASSWORD = "correct horse battery staple"
JWKS_MAX_AGE_SECONDS = 0.5
# How long a restarted auth service may take to answer the gateway's reconnecting channel.
RECONNECT_SECONDS = 15.0
# Each gRPC call's deadline: generous, as a loaded CI machine can stall a call past the
# default for reasons unrelated to keys (a restart shows as UNAVAILABLE at once, not as this).
GRPC_DEADLINE_SECONDS = 15.0


def new_key() -> SigningKey:
    return SigningKey.from_private_key(Ed25519PrivateKey.generate())


class AuthDeployment:
    """The auth service on one fixed address, restarted with other keys for each step."""

    def __init__(self, infrastructure: Infrastructure, data_dir: Path) -> None:
        self._infrastructure = infrastructure
        self._data_dir = data_dir
        self.port = free_port()

    def settings(self, *, signing: SigningKey, verify_only: Sequence[SigningKey]) -> AuthSettings:
        return AuthSettings(
            _env_file=None,
            DATABASE_URL=self._infrastructure.database_url,
            REDIS_URL=self._infrastructure.redis_url,
            OBJECTVISION_DATA_DIR=self._data_dir,
            SERVICE_TOKEN_SECRET=SERVICE_TOKEN_SECRET,
            JWT_PRIVATE_KEY=signing.private_pem().decode(),
            JWT_VERIFY_ONLY_PUBLIC_KEYS="".join(key.public_pem().decode() for key in verify_only),
            AUTH_GRPC_PORT=self.port,
            AUTH_METRICS_PORT=0,
            ARGON2_TIME_COST=ARGON2_MIN_TIME_COST,
            ARGON2_MEMORY_COST_KIB=ARGON2_MIN_MEMORY_COST_KIB,
            ARGON2_PARALLELISM=ARGON2_MIN_PARALLELISM,
            GRPC_SHUTDOWN_GRACE_SECONDS=1,
        )

    @asynccontextmanager
    async def running(
        self, *, signing: SigningKey, verify_only: Sequence[SigningKey] = ()
    ) -> AsyncIterator[None]:
        settings = self.settings(signing=signing, verify_only=verify_only)
        await asyncio.to_thread(runner().migrate, settings)
        app = await runner().app(settings)
        await app.start()
        try:
            yield
        finally:
            await app.stop()


@asynccontextmanager
async def gateway_for(auth: AuthDeployment, redis_url: str) -> AsyncIterator[httpx.AsyncClient]:
    settings = GatewaySettings(
        _env_file=None,
        REDIS_URL=redis_url,
        AUTH_SERVICE_ADDR=f"127.0.0.1:{auth.port}",
        DETECTION_SERVICE_ADDR=f"127.0.0.1:{free_port()}",
        NOTIFICATION_SERVICE_ADDR=f"127.0.0.1:{free_port()}",
        SERVICE_TOKEN_SECRET=SERVICE_TOKEN_SECRET,
        GRPC_DEADLINE_SECONDS=GRPC_DEADLINE_SECONDS,
        RATE_LIMIT_SIGNUP="1000/60",
        RATE_LIMIT_LOGIN="1000/60",
        RATE_LIMIT_LOGIN_IP="1000/60",
        JWKS_MIN_REFRESH_SECONDS=0,
        JWKS_MAX_AGE_SECONDS=JWKS_MAX_AGE_SECONDS,
        LOG_JSON=False,
    )
    app = create_app(settings)
    address = f"2001:db8:{uuid.uuid4().hex[:4]}::1"
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False, client=(address, 4000))
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://gateway.test") as client,
    ):
        yield client


async def answered(client: httpx.AsyncClient, request: httpx.Request) -> httpx.Response:
    """The gateway's answer once the auth service it calls is reachable again (a restart
    makes the gateway's channel reconnect; meanwhile the gateway answers 503)."""
    deadline = time.monotonic() + RECONNECT_SECONDS
    while True:
        response = await client.send(request)
        if response.status_code != 503 or time.monotonic() > deadline:
            return response
        await asyncio.sleep(0.2)


async def profile_status(client: httpx.AsyncClient, token: str) -> int:
    request = client.build_request(
        "GET", "/api/v1/users/me", headers={"Authorization": f"Bearer {token}"}
    )
    return (await answered(client, request)).status_code


async def login(client: httpx.AsyncClient, email: str) -> str:
    request = client.build_request(
        "POST", "/api/v1/auth/login", json={"email": email, "password": PASSWORD}
    )
    response = await answered(client, request)
    assert response.status_code == 200, response.text
    token: str = response.json()["access_token"]
    return token


async def sign_up(client: httpx.AsyncClient) -> str:
    email = f"rotation-{uuid.uuid4().hex}@example.com"
    request = client.build_request(
        "POST",
        "/api/v1/auth/signup",
        json={"email": email, "password": PASSWORD, "name": "Ada Lovelace"},
    )
    response = await answered(client, request)
    assert response.status_code == 202, response.text
    return email


def key_id(token: str) -> str:
    kid: str = jwt.get_unverified_header(token)["kid"]
    return kid


async def test_a_session_from_before_a_key_rotation_lasts_through_it_until_its_key_is_removed(
    infrastructure: Infrastructure, tmp_path: Path
) -> None:
    previous, following = new_key(), new_key()
    auth = AuthDeployment(infrastructure, tmp_path)

    async with gateway_for(auth, infrastructure.redis_url) as gateway:
        async with auth.running(signing=previous):
            email = await sign_up(gateway)
            before = await login(gateway, email)
            assert await profile_status(gateway, before) == 200

        # 1. The following key is published; the previous one still signs.
        async with auth.running(signing=previous, verify_only=[following]):
            assert await profile_status(gateway, before) == 200
            assert key_id(await login(gateway, email)) == previous.kid

        # 2. The following key signs; the previous one only verifies, until its tokens expire.
        async with auth.running(signing=following, verify_only=[previous]):
            assert await profile_status(gateway, before) == 200
            after = await login(gateway, email)
            assert key_id(after) == following.kid
            assert await profile_status(gateway, after) == 200

        # 3. The previous key is removed: once the gateway's key set has aged out, its
        # tokens are refused, and the session's newer tokens are not.
        async with auth.running(signing=following):
            # First the gateway reaches the restarted service again: a refetch that fails
            # while it reconnects keeps the old keys (by design), which is not this step.
            await profile_status(gateway, after)
            await asyncio.sleep(JWKS_MAX_AGE_SECONDS)
            assert await profile_status(gateway, before) == 401
            assert await profile_status(gateway, after) == 200
