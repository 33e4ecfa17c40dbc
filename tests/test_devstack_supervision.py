"""Supervision: a part of the local system that crashes comes back by itself, as in a cluster.

The whole stack of `make run` is supervised (tests/test_fault_injection.py kills each part of
it); so is the Triton a test run shares, which every suite on a worker relies on: one crash of
it must cost the calls in flight, not every test after it, and a test that failed after a crash
says so in its report, with the end of Triton's log.
"""

import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from objectvision_devstack.health import http_ok
from objectvision_devstack.processes import ManagedProcess, free_port
from objectvision_devstack.supervision import Supervisor
from objectvision_devstack.waiting import until

REPOSITORY = Path(__file__).resolve().parents[1]


class HttpPart:
    """A small real server (Python's http.server) on a fixed port, started as a stack part."""

    def __init__(self, tmp_path: Path) -> None:
        self.port = free_port()
        self.process = ManagedProcess(
            "web",
            [sys.executable, "-m", "http.server", str(self.port), "--bind", "127.0.0.1"],
            log_path=tmp_path / "web.log",
            cwd=tmp_path,
        )
        self.lock = threading.RLock()

    def start(self) -> None:
        self.process = ManagedProcess(
            "web", self.process.argv, log_path=self.process.log_path, cwd=self.process.cwd
        )
        self.process.start()
        self.process.wait_ready(self.serving, timeout=30)

    def serving(self) -> bool:
        return http_ok(f"http://127.0.0.1:{self.port}/")


@pytest.fixture
def supervised(tmp_path: Path) -> Iterator[tuple[HttpPart, Supervisor]]:
    part = HttpPart(tmp_path)
    supervision = Supervisor(
        parts=lambda: {"web": part.process},
        start_part=lambda _name: part.start(),
        latest=lambda _name: part.process,
        part_lock=lambda _name: part.lock,
    )
    part.start()
    supervision.start()
    try:
        yield part, supervision
    finally:
        supervision.close()
        part.process.stop()


def test_a_part_killed_comes_back_on_its_port_and_the_crash_is_recorded(
    supervised: tuple[HttpPart, Supervisor],
) -> None:
    part, supervision = supervised
    dead_pid = part.process.pid

    part.process.kill()

    until(lambda: supervision.restarts.get("web") == 1, within=30, what="restarted")
    assert part.process.pid != dead_pid
    assert part.serving()
    [incident] = supervision.incidents
    assert (incident.part, incident.exit) == ("web", f"killed by {signal.SIGKILL.name}")
    # The log's end travels with the incident: http.server logged the readiness probe's GET.
    assert "GET / HTTP/1.1" in incident.log_tail
    assert incident.describe().startswith("web exited unexpectedly after ")
    assert " seen at " in incident.describe()


def test_a_part_stopped_on_purpose_stays_stopped(
    supervised: tuple[HttpPart, Supervisor],
) -> None:
    part, supervision = supervised

    part.process.stop()
    time.sleep(2)  # ten of the supervisor's looks at its parts

    assert not part.process.running()
    assert supervision.restarts == {} and list(supervision.incidents) == []


INNER_TESTS = """
import time

from objectvision_devstack.health import http_ok


def test_a_failure_before_any_crash():
    assert "before" == "a crash"


def test_the_shared_triton_is_killed(triton):
    triton.process.kill()


def test_it_comes_back_on_its_ports(triton):
    deadline = time.monotonic() + 180
    while not http_ok(f"http://127.0.0.1:{triton.http_port}/v2/health/ready"):
        assert time.monotonic() < deadline, "the shared Triton did not come back"
        time.sleep(0.2)


def test_a_failure_after_the_crash():
    assert "after" == "a crash"
"""


def test_the_shared_triton_comes_back_after_a_crash_and_later_failures_say_so(
    tmp_path: Path,
) -> None:
    (tmp_path / "test_inner.py").write_text(INNER_TESTS)
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "objectvision_devstack.pytest_plugin",
            "-p",
            "no:cacheprovider",
            "-c",
            "/dev/null",
            f"--rootdir={tmp_path}",
            f"--basetemp={tmp_path / 'inner'}",
            str(tmp_path / "test_inner.py"),
        ],
        capture_output=True,
        text=True,
        timeout=420,
        cwd=REPOSITORY,
    )
    output = run.stdout + run.stderr

    assert "2 failed, 2 passed" in output, output
    # Only the failure after the crash carries it, with how Triton ended and its log's end.
    assert output.count("shared Triton crashed during this run") == 1, output
    after = output.split("test_a_failure_after_the_crash", 1)[1]
    assert "triton exited unexpectedly after" in after
    assert f"killed by {signal.SIGKILL.name}" in after
    assert "triton.log" in after
