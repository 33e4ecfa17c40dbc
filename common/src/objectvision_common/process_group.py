"""Several serving processes behind one port, one metrics endpoint for all of them.

Why: a Python process serves gRPC on one core (the GIL holds protobuf building, header checks
and the asyncio loop); a pod in front of a GPU needs several. The children bind the same port
with SO_REUSEPORT and the kernel spreads connections over them; the parent only supervises and
serves the children's metrics merged by prometheus_client's multiprocess mode.

The parent stops every child on SIGTERM/SIGINT (each drains its calls) and, when one child
dies, stops the rest and exits non-zero: the orchestrator (Kubernetes, compose, the local
supervisor) restarts the pod as a whole, which keeps one restart policy in one place.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import shutil
import signal
import tempfile
import time
from collections.abc import Callable
from multiprocessing.process import BaseProcess

from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead

logger = logging.getLogger(__name__)

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
_STOP_WAIT_SECONDS = 30.0


def run_process_group(
    child: Callable[[int], None],
    *,
    count: int,
    metrics_host: str,
    metrics_port: int,
) -> int:
    """Run ``child(index)`` in ``count`` spawned processes until a signal or a child's death.

    ``child`` must be importable by name (spawned children import it afresh). Returns the exit
    status for the parent: 0 after a requested stop, 1 when a child died on its own.
    """
    metrics_dir = tempfile.mkdtemp(prefix="objectvision-metrics-")
    # Children inherit this before they import prometheus_client, so their metrics go to files.
    os.environ[MULTIPROC_ENV] = metrics_dir
    context = multiprocessing.get_context("spawn")
    children: list[BaseProcess] = [
        context.Process(target=child, args=(index,), name=f"serving-{index}")
        for index in range(count)
    ]
    stopping = False

    def request_stop(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True
        logger.info("stopping the serving processes", extra={"signal": signum})

    previous = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        for process in children:
            process.start()
        if metrics_port:
            registry = CollectorRegistry()
            MultiProcessCollector(registry, path=metrics_dir)
            start_http_server(metrics_port, addr=metrics_host, registry=registry)
        logger.info(
            "serving processes started",
            extra={"count": count, "pids": [p.pid for p in children]},
        )
        died: BaseProcess | None = None
        while not stopping and died is None:
            time.sleep(0.2)
            died = next((p for p in children if not p.is_alive()), None)
        if died is not None:
            logger.error(
                "a serving process died; stopping the others",
                extra={"process": died.name, "exit_code": died.exitcode},
            )
        _stop(children, metrics_dir)
        return 0 if died is None else 1
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        shutil.rmtree(metrics_dir, ignore_errors=True)


def _stop(children: list[BaseProcess], metrics_dir: str) -> None:
    """SIGTERM each child (it drains), wait, then SIGKILL what is left."""
    for process in children:
        if process.is_alive() and process.pid is not None:
            os.kill(process.pid, signal.SIGTERM)
    deadline = time.monotonic() + _STOP_WAIT_SECONDS
    for process in children:
        process.join(max(0.0, deadline - time.monotonic()))
        if process.is_alive():
            process.kill()
            process.join(5)
        if process.pid is not None:
            mark_process_dead(process.pid, metrics_dir)
