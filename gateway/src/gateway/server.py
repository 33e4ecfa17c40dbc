"""`objectvision-gateway`: serve the gateway with uvicorn until SIGTERM, then drain.

Two listeners in one process and one event loop: the public API on GATEWAY_PORT, and
readiness and metrics on GATEWAY_METRICS_PORT (gateway.app.create_ops_app), which share the
API app's clients and metrics registry.
"""

import asyncio
import contextlib
import logging
import socket
from collections.abc import Iterator
from typing import Any

import uvicorn
from fastapi import FastAPI
from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

from gateway.app import create_app, create_ops_app
from gateway.config import GatewaySettings
from objectvision_common.logging import configure_logging
from objectvision_common.tracing import configure_tracing, tracing_enabled

logger = logging.getLogger(__name__)


class _SideServer(uvicorn.Server):
    """The metrics listener: the API server owns SIGTERM/SIGINT, and this one is stopped
    after the API server has drained (so scrapes and probes are answered meanwhile)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def _bind(host: str, port: int) -> socket.socket:
    """The metrics socket, bound before anything starts, so a taken port fails at once."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise SystemExit(
            f"gateway: cannot serve /ready and /metrics on {host}:{port} "
            f"(GATEWAY_METRICS_PORT): {exc.strerror}"
        ) from exc
    return sock


# Above the largest frame a live detection stream accepts, so that the stream, not uvicorn,
# sees an oversized one.
WS_FRAME_HEADROOM_BYTES = 1024 * 1024


def _config(app: FastAPI, host: str, port: int, **options: Any) -> uvicorn.Config:
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        # grpc.aio runs on the standard asyncio loop.
        loop="asyncio",
        # Our JSON logging stays in place; our middleware writes the access log without
        # query strings, which may carry secrets.
        log_config=None,
        access_log=False,
        # The client address for rate limits is decided by TRUST_PROXY_HEADERS alone.
        proxy_headers=False,
        server_header=False,
        # Each request in a fresh context. Without it a large upload (uvicorn pauses and
        # resumes reading inside the request's task) leaves that request's context, its
        # trace span included, on the connection: every later request on the keep-alive
        # connection joined the first one's trace and answered with its request id
        # (CPython gh-140947; tests/test_tracing_e2e.py).
        reset_contextvars=True,
        **options,
    )


async def _serve(api: uvicorn.Server, side: tuple[uvicorn.Server, socket.socket] | None) -> None:
    api_task = asyncio.create_task(api.serve())
    if side is None:
        await api_task
        return
    ops, ops_socket = side
    # /ready needs the clients the API app's lifespan opens: start once it has run. (uvicorn
    # offers no start-up event to wait on.)
    while not api.started and not api_task.done():  # noqa: ASYNC110
        await asyncio.sleep(0.05)
    if api_task.done():
        await api_task
        return
    ops_task = asyncio.create_task(ops.serve(sockets=[ops_socket]))
    host, port = ops_socket.getsockname()[:2]
    logger.info("serving /ready and /metrics on http://%s:%d", host, port)
    try:
        await api_task
    finally:
        ops.should_exit = True
        await ops_task


def main() -> None:
    settings = GatewaySettings()
    configure_logging("gateway", level=settings.log_level, json_output=settings.log_json)
    # Before the app and its gRPC channels exist: the instrumentations patch their libraries.
    flush_traces = configure_tracing("gateway")
    app = create_app(settings)
    if tracing_enabled():
        # One server span a request: the ASGI "http receive"/"http send" spans (one per body
        # chunk of an upload) said nothing an operator acts on and cost p50 at c=1 (make bench,
        # stage tracing).
        FastAPIInstrumentor.instrument_app(
            app, excluded_urls="/health", exclude_spans=["receive", "send"]
        )
    api = uvicorn.Server(
        _config(
            app,
            settings.gateway_host,
            settings.gateway_port,
            # On SIGTERM uvicorn stops accepting, lets in-flight requests finish for this
            # long, then runs the lifespan shutdown that closes the channels.
            timeout_graceful_shutdown=settings.shutdown_grace_seconds,
            lifespan="on",
            # A live detection frame (ADR 0059) may be as large as an upload; the stream
            # refuses a larger one itself, saying why, before uvicorn's 16 MiB default would
            # close the socket with no word.
            ws_max_size=settings.max_upload_bytes + WS_FRAME_HEADROOM_BYTES,
            # Frames are JPEGs already and answers a few KB of JSON: per-message deflate
            # (which browsers negotiate) would cost both ends CPU a frame for nothing.
            ws_per_message_deflate=False,
        )
    )
    side = None
    if settings.gateway_metrics_port:
        ops_socket = _bind(settings.gateway_host, settings.gateway_metrics_port)
        ops_config = _config(
            create_ops_app(app),
            settings.gateway_host,
            settings.gateway_metrics_port,
            timeout_graceful_shutdown=1.0,
            lifespan="off",
        )
        side = (_SideServer(ops_config), ops_socket)
    try:
        asyncio.run(_serve(api, side))
    finally:
        flush_traces()


if __name__ == "__main__":
    main()
