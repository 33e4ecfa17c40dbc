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
    lines = [
        "",
        "ObjectVision is running.",
        f"  Gateway (REST, OpenAPI at /docs): {stack.gateway_url}",
        f"  Gateway /ready and /metrics: {stack.gateway_metrics_url}",
        f"  PostgreSQL:  {stack.database_url}",
        f"  Redis:       {stack.redis_url}",
        f"  Triton gRPC: {stack.triton_url}",
    ]
    lines += [
        f"  {name + ' gRPC:':<13}{stack.service_address(name)}" for name in stack.service_ports
    ]
    lines += [
        f"  Data and logs: {stack.data_dir} (logs/)",
        "A part that crashes is restarted (see the log above). Press Ctrl-C to stop.",
        "",
    ]
    return "\n".join(lines)


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
