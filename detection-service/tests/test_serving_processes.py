"""Several serving processes behind one port: the real `objectvision-detection` command.

With DETECTION_SERVING_PROCESSES=2 the parent spawns two servers that share the gRPC port
(SO_REUSEPORT): connections land on both, every call is answered, the parent's one metrics
endpoint counts the calls of both, and SIGTERM stops the whole group.
"""

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import psutil
import pytest
import requests
from grpc_health.v1 import health_pb2, health_pb2_grpc

from detection_service.config import DetectionSettings
from objectvision.v1 import common_pb2, detection_pb2, detection_pb2_grpc
from objectvision_common.identity import principal_metadata
from objectvision_devstack.processes import free_port
from objectvision_devstack.pytest_plugin import Infrastructure
from objectvision_devstack.triton import LocalTriton

CONNECTIONS = 16
SECRET = "serving-processes-test-secret"


@pytest.fixture
def group(
    migrated: Infrastructure, triton: LocalTriton, served_model: Path, tmp_path: Path
) -> Iterator[tuple[subprocess.Popen[bytes], int, int]]:
    port, metrics_port = free_port(), free_port()
    env = {
        **os.environ,
        "DATABASE_URL": migrated.database_url,
        "REDIS_URL": migrated.redis_url,
        "TRITON_URL": triton.grpc_url,
        "SERVED_MODEL_PATH": str(served_model),
        "STORAGE_DIR": str(tmp_path / "objects"),
        "SERVICE_TOKEN_SECRET": SECRET,
        "BIND_HOST": "127.0.0.1",
        "DETECTION_GRPC_PORT": str(port),
        "DETECTION_METRICS_PORT": str(metrics_port),
        "DETECTION_SERVING_PROCESSES": "2",
        "JOB_STREAM": f"detection:jobs:test:{port}",
        "GRPC_SHUTDOWN_GRACE_SECONDS": "1",
    }
    command = [sys.executable, "-c", "from detection_service.server import main; main()"]
    log = (tmp_path / "detection.log").open("wb")
    process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        yield process, port, metrics_port
    finally:
        if process.poll() is None:
            process.kill()
        for child in psutil.Process().children(recursive=True):
            if "multiprocessing" in " ".join(child.cmdline()):
                child.kill()
        log.close()


def _wait_serving(port: int, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        assert process.poll() is None, "the service exited during start-up"
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            try:
                answer = health_pb2_grpc.HealthStub(channel).Check(
                    health_pb2.HealthCheckRequest(), timeout=1
                )
                if answer.status == health_pb2.HealthCheckResponse.SERVING:
                    return
            except grpc.RpcError:
                pass
        time.sleep(0.5)
    raise AssertionError("the serving processes never answered")


def _detect_calls(text: str) -> float:
    total = 0.0
    for line in text.splitlines():
        if line.startswith("grpc_server_handled_total") and 'method="Detect"' in line:
            total += float(line.rsplit(" ", 1)[1])
    return total


def test_two_processes_share_the_port_answer_every_call_and_stop_together(
    group: tuple[subprocess.Popen[bytes], int, int], bus_jpg: bytes
) -> None:
    process, port, metrics_port = group
    _wait_serving(port, process)
    # Spawned servers, not multiprocessing's resource tracker.
    servers = [
        child
        for child in psutil.Process(process.pid).children()
        if "spawn_main" in " ".join(child.cmdline())
    ]
    assert len(servers) == 2
    metadata = principal_metadata(
        common_pb2.Principal(user_id="serving-processes", auth_method="jwt"), secret=SECRET
    )
    request = detection_pb2.DetectRequest(
        images=[detection_pb2.ImageInput(data=bus_jpg, filename="bus.jpg")], store=False
    )
    channels = [
        grpc.insecure_channel(f"127.0.0.1:{port}", options=[("grpc.use_local_subchannel_pool", 1)])
        for _ in range(CONNECTIONS)
    ]
    try:
        for channel in channels:
            answer = detection_pb2_grpc.DetectionServiceStub(channel).Detect(
                request, metadata=metadata, timeout=60
            )
            assert len(answer.results[0].objects) == 5
        serving = [
            server
            for server in servers
            if any(
                c.status == psutil.CONN_ESTABLISHED and c.laddr.port == port
                for c in server.net_connections(kind="tcp")
            )
        ]
        assert len(serving) == 2, "the kernel gave every connection to one process"
    finally:
        for channel in channels:
            channel.close()
    metrics = requests.get(f"http://127.0.0.1:{metrics_port}/metrics", timeout=10).text
    assert _detect_calls(metrics) == CONNECTIONS

    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=60) == 0
    assert not any(server.is_running() and server.status() != "zombie" for server in servers)


def test_one_process_is_the_default() -> None:
    assert DetectionSettings(_env_file=None).serving_processes == 1
