"""An in-process gateway on real Redis, with its gRPC services pointed at closed ports.

That is the gateway as it behaves while the services are down: everything that does not
need a service (validation, limits, authentication failures, error shape, probes, metrics)
is exercised for real, and upstream calls fail the way a dead service makes them fail.
"""

import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from gateway.app import create_app
from gateway.config import GatewaySettings
from objectvision_devstack.processes import free_port
from objectvision_devstack.pytest_plugin import Infrastructure


@pytest.fixture(scope="session")
def redis_url(infrastructure: Infrastructure) -> str:
    return infrastructure.redis_url


@pytest.fixture
def make_settings(redis_url: str) -> Callable[..., GatewaySettings]:
    def make(**overrides: Any) -> GatewaySettings:
        values: dict[str, Any] = {
            "REDIS_URL": redis_url,
            "AUTH_SERVICE_ADDR": f"127.0.0.1:{free_port()}",
            "DETECTION_SERVICE_ADDR": f"127.0.0.1:{free_port()}",
            "NOTIFICATION_SERVICE_ADDR": f"127.0.0.1:{free_port()}",
            "GRPC_DEADLINE_SECONDS": 2,
            "READINESS_TIMEOUT_SECONDS": 1,
            "RATE_LIMIT_SIGNUP": "1000/60",
            "RATE_LIMIT_LOGIN": "1000/60",
            "RATE_LIMIT_LOGIN_IP": "1000/60",
            "RATE_LIMIT_LOGIN_ACCOUNT": "1000/60",
            "SERVICE_TOKEN_SECRET": "gateway-tests-secret",
            "LOG_JSON": False,
        }
        values.update(overrides)
        return GatewaySettings(**values)

    return make


async def _client_for(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    # Each client its own address, so per-IP rate limits never carry over between tests.
    address = f"2001:db8:{uuid.uuid4().hex[:4]}:{uuid.uuid4().hex[:4]}::1"
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False, client=(address, 4000))
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://gateway.test") as client,
    ):
        yield client


@pytest.fixture
async def app_client(
    make_settings: Callable[..., GatewaySettings],
) -> AsyncIterator[Callable[..., Any]]:
    """Builds an app from setting overrides and yields a client for it; closed after the test."""
    stack: list[AsyncIterator[httpx.AsyncClient]] = []

    async def open_client(
        *, app: FastAPI | None = None, **overrides: Any
    ) -> tuple[FastAPI, httpx.AsyncClient]:
        app = app or create_app(make_settings(**overrides))
        generator = _client_for(app)
        stack.append(generator)
        return app, await anext(generator)

    yield open_client
    for generator in reversed(stack):
        await generator.aclose()


@pytest.fixture
async def client(app_client: Callable[..., Any]) -> httpx.AsyncClient:
    _, opened = await app_client()
    return opened
