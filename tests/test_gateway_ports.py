"""The gateway process's two listeners, for real: the public API port and the metrics port.

- A path with the other trailing slash is the JSON 404, never a redirect built from the
  request's Host header (an open redirect through any cache or proxy that keeps the Host).
- /ready and /metrics answer on GATEWAY_METRICS_PORT only; the public port keeps /health
  (liveness, for the console and probes) and answers 404 for them. The metrics port serves
  nothing of the API.
- A taken metrics port stops the gateway at start-up with a message naming the variable.

The gateway runs as `objectvision-gateway` against the session's real Redis; the gRPC
services are not started (the gateway starts without them, and /ready says so).
"""

import os
import socket
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from objectvision_devstack.health import http_ok
from objectvision_devstack.processes import ManagedProcess, free_port
from objectvision_devstack.pytest_plugin import Infrastructure

HOSTILE_HOST = "evil.example"


@dataclass(frozen=True)
class Gateway:
    url: str
    metrics_url: str
    process: ManagedProcess


def _env(infrastructure: Infrastructure, **overrides: str) -> dict[str, str]:
    closed = {name: f"127.0.0.1:{free_port()}" for name in ("AUTH", "DETECTION", "NOTIFICATION")}
    return {
        **os.environ,
        "REDIS_URL": infrastructure.redis_url,
        "SERVICE_TOKEN_SECRET": "test-only-service-secret",
        "AUTH_SERVICE_ADDR": closed["AUTH"],
        "DETECTION_SERVICE_ADDR": closed["DETECTION"],
        "NOTIFICATION_SERVICE_ADDR": closed["NOTIFICATION"],
        "READINESS_TIMEOUT_SECONDS": "0.5",
        "LOG_JSON": "false",
        **overrides,
    }


def _gateway_process(env: dict[str, str], logs: Path) -> ManagedProcess:
    return ManagedProcess(
        "gateway",
        [str(Path(sys.executable).with_name("objectvision-gateway"))],
        env=env,
        log_path=logs / "gateway.log",
    )


@pytest.fixture(scope="module")
def gateway(
    infrastructure: Infrastructure, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Gateway]:
    port, metrics_port = free_port(), free_port()
    env = _env(infrastructure, GATEWAY_PORT=str(port), GATEWAY_METRICS_PORT=str(metrics_port))
    process = _gateway_process(env, tmp_path_factory.mktemp("gateway-ports"))
    running = Gateway(f"http://127.0.0.1:{port}", f"http://127.0.0.1:{metrics_port}", process)
    process.start()
    try:
        process.wait_ready(lambda: http_ok(f"{running.url}/health"), timeout=60)
        yield running
    finally:
        process.stop()


def _metrics_port_up(gateway: Gateway) -> None:
    """The metrics listener starts right after the API's start-up."""
    gateway.process.wait_ready(lambda: http_ok(f"{gateway.metrics_url}/health"), timeout=10)


def _raw_get(url: str, path: str, host: str) -> httpx.Response:
    """GET with this exact Host header, following nothing."""
    with httpx.Client(base_url=url, follow_redirects=False, timeout=10) as client:
        return client.get(path, headers={"Host": host})


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/users/me/",
        "/api/v1/auth/login/",
        "/api/v1/detect/history/",
        "/health/",
        "/docs/",
        "/openapi.json/",
    ],
)
def test_a_trailing_slash_is_a_404_not_a_redirect_to_the_callers_host(
    gateway: Gateway, path: str
) -> None:
    response = _raw_get(gateway.url, path, HOSTILE_HOST)
    assert not response.is_redirect, (response.status_code, response.headers.get("location"))
    assert response.status_code == 404, response.text
    assert "location" not in response.headers
    assert HOSTILE_HOST not in response.text
    assert response.json()["error"]["code"] == "not_found"


def test_the_metrics_port_does_not_redirect_either(gateway: Gateway) -> None:
    _metrics_port_up(gateway)
    for path in ("/metrics/", "/ready/", "/health/"):
        response = _raw_get(gateway.metrics_url, path, HOSTILE_HOST)
        assert response.status_code == 404, (path, response.status_code)
        assert "location" not in response.headers


@pytest.mark.parametrize("path", ["/metrics", "/ready"])
def test_readiness_and_metrics_are_not_on_the_public_port(gateway: Gateway, path: str) -> None:
    response = httpx.get(f"{gateway.url}{path}", timeout=10)
    assert response.status_code == 404, (path, response.status_code, response.text[:200])
    assert response.json()["error"]["code"] == "not_found"
    document = httpx.get(f"{gateway.url}/openapi.json", timeout=10).json()
    assert path not in document["paths"]


def test_the_public_port_keeps_liveness(gateway: Gateway) -> None:
    response = httpx.get(f"{gateway.url}/health", timeout=10)
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_the_metrics_port_serves_metrics_readiness_and_liveness(gateway: Gateway) -> None:
    _metrics_port_up(gateway)
    # Traffic on the public port is what the metrics count.
    assert httpx.get(f"{gateway.url}/health", timeout=10).status_code == 200
    metrics = httpx.get(f"{gateway.metrics_url}/metrics", timeout=10)
    assert metrics.status_code == 200
    assert metrics.headers["content-type"].startswith("text/plain")
    assert 'http_requests_total{method="GET",route="/health",status="200"}' in metrics.text
    # The services are down here: readiness names them, in the one error shape.
    ready = httpx.get(f"{gateway.metrics_url}/ready", timeout=10)
    assert ready.status_code == 503, ready.text
    error = ready.json()["error"]
    assert error["code"] == "not_ready"
    assert error["request_id"] == ready.headers["x-request-id"]
    failed = {detail["loc"][-1] for detail in error["details"]}
    assert failed == {"auth", "detection", "notification"}
    assert httpx.get(f"{gateway.metrics_url}/health", timeout=10).json() == {"status": "ok"}


@pytest.mark.parametrize(
    "path", ["/api/v1/users/me", "/api/v1/auth/login", "/docs", "/openapi.json", "/"]
)
def test_the_metrics_port_serves_nothing_of_the_api(gateway: Gateway, path: str) -> None:
    _metrics_port_up(gateway)
    response = httpx.get(f"{gateway.metrics_url}{path}", timeout=10)
    assert response.status_code == 404, (path, response.status_code)


def test_a_taken_metrics_port_stops_the_gateway_at_start_up(
    infrastructure: Infrastructure, tmp_path: Path
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = _env(infrastructure, GATEWAY_PORT=str(free_port()), GATEWAY_METRICS_PORT=str(port))
        process = _gateway_process(env, tmp_path)
        process.start()
        deadline = time.monotonic() + 60
        while process.running() and time.monotonic() < deadline:
            time.sleep(0.1)
        try:
            assert not process.running(), "the gateway kept running without its metrics port"
        finally:
            process.stop()
    assert process.returncode not in (0, None)
    assert "GATEWAY_METRICS_PORT" in process.log_tail(), process.log_tail()
