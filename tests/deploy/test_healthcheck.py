"""deploy/docker/healthcheck.py, the images' HEALTHCHECK, against real servers on loopback."""

import http.server
import subprocess
import sys
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import grpc
import pytest
from deploy_validate import REPO_ROOT
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

SCRIPT = REPO_ROOT / "deploy" / "docker" / "healthcheck.py"


def _run(*args: str, env: dict[str, str]) -> int:
    result = subprocess.run(
        [sys.executable, str(SCRIPT), *args], env=env, capture_output=True, text=True, timeout=30
    )
    return result.returncode


@pytest.fixture
def grpc_server() -> Iterator[tuple[int, health.HealthServicer]]:
    server = grpc.server(ThreadPoolExecutor(max_workers=2))
    servicer = health.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        yield port, servicer
    finally:
        server.stop(None)


def test_grpc_serving_not_serving_and_down(grpc_server):
    port, servicer = grpc_server
    env = {"AUTH_GRPC_PORT": str(port)}
    args = ("grpc", "--port-env", "AUTH_GRPC_PORT", "--default-port", "1", "--timeout", "2")
    servicer.set("", health_pb2.HealthCheckResponse.SERVING)
    assert _run(*args, env=env) == 0
    servicer.set("", health_pb2.HealthCheckResponse.NOT_SERVING)
    assert _run(*args, env=env) == 1
    assert _run("grpc", "--port-env", "UNSET", "--default-port", "1", "--timeout", "1", env={}) == 1


class _Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200 if self.path == "/health" else 503)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


def test_http_ok_and_failing():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        env = {"GATEWAY_PORT": str(server.server_address[1])}
        args = ("http", "--port-env", "GATEWAY_PORT", "--default-port", "1")
        assert _run(*args, "--path", "/health", env=env) == 0
        assert _run(*args, "--path", "/ready", env=env) == 1
    finally:
        server.shutdown()
        server.server_close()
