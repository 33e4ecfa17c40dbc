"""`objectvision-dev run`: the whole system in the foreground until Ctrl-C."""

import argparse
import logging
import signal
import sys
import threading
from types import FrameType

from objectvision_common.logging import configure_logging
from objectvision_devstack.stack import Stack, StackConfig

logger = logging.getLogger(__name__)


def _banner(stack: Stack) -> str:
    """Where everything listens, one part a line, the addresses in one column."""
    parts = [
        ("Gateway (REST, OpenAPI at /docs)", stack.gateway_url),
        ("Gateway /ready and /metrics", stack.gateway_metrics_url),
        ("PostgreSQL", stack.database_url),
        ("Redis", stack.redis_url),
        ("Triton gRPC", stack.triton_url),
        *((f"{name} gRPC", stack.service_address(name)) for name in stack.service_ports),
        ("Data and logs", f"{stack.data_dir} (logs/)"),
    ]
    width = max(len(label) for label, _ in parts) + 2
    return "\n".join(
        [
            "",
            "ObjectVision is running.",
            *(f"  {label + ':':<{width}}{address}" for label, address in parts),
            "A part that crashes is restarted (see the log above). Press Ctrl-C to stop.",
            "",
        ]
    )


def run() -> int:
    config = StackConfig.from_environment()
    stack = Stack(config)
    stopping = threading.Event()

    def request_stop(signum: int, _frame: FrameType | None) -> None:
        logger.info("received %s, stopping", signal.Signals(signum).name)
        stopping.set()

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    exit_code = 0
    try:
        stack.start()
        # A part that crashes is restarted with backoff (Stack.supervise); only Ctrl-C or
        # SIGTERM stops the whole system.
        stack.supervise()
        print(_banner(stack), flush=True)
        while not stopping.wait(1.0):
            pass
    except Exception:
        logger.exception("start-up failed; logs are in %s", stack.logs_dir)
        exit_code = 1
    finally:
        stack.stop()
        logger.info("stopped")
    return exit_code


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="objectvision-dev")
    parser.add_argument("command", choices=["run"], help="run: start everything in the foreground")
    parser.parse_args(argv)
    configure_logging("devstack", json_output=False)
    sys.exit(run())
