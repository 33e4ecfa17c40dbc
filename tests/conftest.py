"""The whole system, started once for the end-to-end suite, on free ports."""

from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

from objectvision_devstack.processes import free_port
from objectvision_devstack.pytest_plugin import Infrastructure, served_model_path
from objectvision_devstack.stack import Stack, StackConfig
from objectvision_devstack.triton import LocalTriton


@pytest.fixture(scope="session")
def stack(
    infrastructure: Infrastructure,
    triton: LocalTriton,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Stack]:
    running = Stack(
        StackConfig(
            data_dir=tmp_path_factory.mktemp("stack"),
            gateway_port=free_port(),
            database_url=infrastructure.database_url,
            redis_url=infrastructure.redis_url,
            triton_url=triton.grpc_url,
            served_model=served_model_path(),
            extra_env={
                "LOG_LEVEL": "INFO",
                "WEBHOOK_ALLOW_PRIVATE": "true",
                "TRUST_PROXY_HEADERS": "true",
            },
        )
    )
    try:
        running.start()
        yield running
    finally:
        running.stop()


@pytest.fixture
async def gateway_client(stack: Stack) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=stack.gateway_url, timeout=30.0) as client:
        yield client
