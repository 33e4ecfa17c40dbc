"""`objectvision-dev run`, what `make run` starts, kept up through a crash.

The CLI runs for real with everything embedded (PostgreSQL, Redis, Triton, the mail sink,
every service, the gateway) in a temporary data directory. kill -9 of detection-service
must not take the system down: the supervisor restarts it with its port, the API is ready
again, and only Ctrl-C stops everything, leaving no process behind. What a restart does to
work in flight, for every part, is in tests/test_fault_injection.py.
"""

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil
import pytest

from objectvision_devstack.processes import free_port
from objectvision_devstack.pytest_plugin import served_model_path
from objectvision_devstack.waiting import until

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

BANNER = "ObjectVision is running."


def _ok(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def _processes(cli: subprocess.Popen[bytes], command: str) -> list[psutil.Process]:
    found = []
    for child in psutil.Process(cli.pid).children(recursive=True):
        try:
            if any(part.endswith(command) for part in child.cmdline()):
                found.append(child)
        except psutil.NoSuchProcess:
            continue
    return found


class Run:
    def __init__(self, tmp_path: Path) -> None:
        self.data_dir = tmp_path / "data"
        (self.data_dir / "models").mkdir(parents=True)
        (self.data_dir / "models" / "yolov8n_served.onnx").symlink_to(served_model_path().resolve())
        self.gateway_url = f"http://127.0.0.1:{free_port()}"
        self.metrics_url = f"http://127.0.0.1:{free_port()}"
        self.output = tmp_path / "make-run.log"
        env = {
            key: value
            for key, value in os.environ.items()
            if key not in {"DATABASE_URL", "REDIS_URL", "TRITON_URL", "SMTP_HOST"}
        }
        env |= {
            "OBJECTVISION_DATA_DIR": str(self.data_dir),
            "GATEWAY_PORT": self.gateway_url.rsplit(":", 1)[1],
            "GATEWAY_METRICS_PORT": self.metrics_url.rsplit(":", 1)[1],
        }
        with self.output.open("wb") as output:
            self.cli = subprocess.Popen(
                [str(Path(sys.executable).with_name("objectvision-dev")), "run"],
                stdout=output,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=env,
                start_new_session=True,
            )

    def text(self) -> str:
        return self.output.read_text(errors="replace")

    def running(self) -> bool:
        return self.cli.poll() is None


@pytest.fixture
def run(tmp_path: Path) -> Iterator[Run]:
    started = Run(tmp_path)
    try:
        until(
            lambda: BANNER in started.text() or not started.running(),
            within=300,
            what="the banner",
            interval=0.25,
        )
        assert started.running(), started.text()[-4000:]
        yield started
    finally:
        if started.running():
            started.cli.send_signal(signal.SIGINT)
            try:
                started.cli.wait(timeout=120)
            except subprocess.TimeoutExpired:
                os.killpg(started.cli.pid, signal.SIGKILL)
                started.cli.wait()


def test_a_killed_service_is_restarted_and_only_ctrl_c_stops_the_system(run: Run) -> None:
    everything = psutil.Process(run.cli.pid).children(recursive=True)
    (detection,) = _processes(run.cli, "objectvision-detection")
    assert _ok(f"{run.metrics_url}/ready")

    os.kill(detection.pid, signal.SIGKILL)

    def restarted() -> bool:
        again = _processes(run.cli, "objectvision-detection")
        return bool(again) and again[0].pid != detection.pid and _ok(f"{run.metrics_url}/ready")

    until(
        restarted,
        within=120,
        what="detection-service restarted and the gateway ready",
        interval=0.25,
    )
    assert run.running(), run.text()[-4000:]
    assert "detection exited unexpectedly" in run.text()
    assert "killed by SIGKILL" in run.text()
    assert "detection restarted and ready" in run.text()
    # Nothing else was restarted, and the API answers.
    for command in ("objectvision-auth", "objectvision-gateway", "objectvision-notification"):
        (process,) = _processes(run.cli, command)
        assert process in everything, command
    assert _ok(f"{run.gateway_url}/health")

    # Ctrl-C stops the whole system, and nothing outlives it.
    survivors = psutil.Process(run.cli.pid).children(recursive=True)
    run.cli.send_signal(signal.SIGINT)
    assert run.cli.wait(timeout=120) == 0, run.text()[-4000:]
    _, alive = psutil.wait_procs(survivors, timeout=30)
    assert not alive, [process.pid for process in alive]
