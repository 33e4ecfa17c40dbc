"""Several serving processes behind one port: the real `objectvision-detection` command.

With DETECTION_SERVING_PROCESSES=2 the parent spawns two servers that share the gRPC port
(SO_REUSEPORT): connections land on both, every call is answered, the parent's one metrics
endpoint counts the calls of both, and SIGTERM stops the whole group.
"""

import signal
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager as ContextManager
from typing import Any

import grpc
import psutil
import pytest
import requests

from detection_service.config import DetectionSettings
from objectvision.v1 import common_pb2, detection_pb2, detection_pb2_grpc
from objectvision_common.identity import principal_metadata

from .conftest import handled_detect_calls

CONNECTIONS = 16
SECRET = "serving-processes-test-secret"


@pytest.fixture
def group(launch_service: Callable[..., ContextManager[Any]]) -> Iterator[Any]:
    with launch_service(secret=SECRET, DETECTION_SERVING_PROCESSES="2") as service:
        yield service


def test_two_processes_share_the_port_answer_every_call_and_stop_together(
    group: Any, bus_jpg: bytes
) -> None:
    process, port, metrics_port = group.process, group.port, group.metrics_port
    servers = group.serving_processes()
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
    assert handled_detect_calls(metrics) == CONNECTIONS
    # The backlog gauges, measured by the one process that runs the background loops, reach
    # the parent's merged endpoint once (multiprocess_mode livemostrecent), without a pid label.
    outbox_age = [
        line
        for line in metrics.splitlines()
        if line.startswith("objectvision_outbox_backlog_age_seconds{")
    ]
    assert outbox_age and all('outbox="detection"' in line for line in outbox_age), outbox_age
    assert len(outbox_age) == 1 and "pid=" not in outbox_age[0], outbox_age

    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=60) == 0
    assert not any(server.is_running() and server.status() != "zombie" for server in servers)


def test_one_process_is_the_default() -> None:
    assert DetectionSettings(_env_file=None).serving_processes == 1
