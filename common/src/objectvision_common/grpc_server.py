"""An async gRPC server with what every service needs around its servicers.

Interceptors give each call a request id, a log line, Prometheus metrics and the one
mapping from domain errors to status codes; health and reflection are registered beside the
service; `stop()` marks the server NOT_SERVING and lets in-flight calls finish. With TLS files
the port requires mutual TLS; a health-only plaintext port can serve the kubelet's probes.
Signals, background workers and the order of shutdown belong to `runner.py`.
"""

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, cast

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection
from prometheus_client import Counter, Histogram, start_http_server

from objectvision_common.errors import DomainError, PeerNotAllowed, trailers_for
from objectvision_common.outages import outage_error
from objectvision_common.peer_policy import PEER_POLICY_VARIABLE, PeerPolicy
from objectvision_common.request_context import (
    REQUEST_ID_HEADER,
    sanitize_request_id,
    set_request_id,
)
from objectvision_common.servicer import ServicerContext
from objectvision_common.tls import TlsFiles
from objectvision_common.tracing import current_trace_id

logger = logging.getLogger(__name__)

MAX_MESSAGE_BYTES = 64 * 1024 * 1024

GRPC_STARTED = Counter(
    "grpc_server_started_total", "RPCs started on the server.", ["grpc_service", "grpc_method"]
)
GRPC_HANDLED = Counter(
    "grpc_server_handled_total",
    "RPCs completed on the server, by status code.",
    ["grpc_service", "grpc_method", "grpc_code"],
)
GRPC_LATENCY = Histogram(
    "grpc_server_handling_seconds",
    "Time to handle an RPC, by method.",
    ["grpc_service", "grpc_method"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)


def _split_method(full_method: str) -> tuple[str, str]:
    _, service, method = full_method.split("/", 2)
    return service, method


def _request_id_from(context: ServicerContext) -> str:
    """The gateway's request id (its trace id), else this call's trace id, else a new id: one
    id finds the trace, the log lines and the error."""
    metadata = dict(context.invocation_metadata() or ())
    value = metadata.get(REQUEST_ID_HEADER)
    if not isinstance(value, str):
        value = current_trace_id()
    return sanitize_request_id(value)


async def _abort_for(error: Exception, context: ServicerContext) -> None:
    outage = None if isinstance(error, DomainError) else outage_error(error)
    if outage is not None:
        logger.warning("dependency unavailable", exc_info=True)
        error = outage
    if isinstance(error, DomainError):
        context.set_trailing_metadata(trailers_for(error))
        await context.abort(error.status, error.message)
    if isinstance(error, NotImplementedError) and context.code() == grpc.StatusCode.UNIMPLEMENTED:
        # A method the generated base class answers: this process does not serve it (the
        # detection realtime role, ADR 0019), which is the caller's routing, not our fault.
        await context.abort(grpc.StatusCode.UNIMPLEMENTED, "this method is not served here")
    logger.exception("unhandled error in RPC")
    await context.abort(grpc.StatusCode.INTERNAL, "internal error")


class _Observed:
    """Bookkeeping for one call: request id, metrics and the final log line."""

    def __init__(self, full_method: str, context: ServicerContext) -> None:
        self.service, self.method = _split_method(full_method)
        self.context = context
        self.started = time.perf_counter()
        set_request_id(_request_id_from(context))
        GRPC_STARTED.labels(self.service, self.method).inc()

    def finish(self, code: grpc.StatusCode) -> None:
        elapsed = time.perf_counter() - self.started
        GRPC_HANDLED.labels(self.service, self.method, code.name).inc()
        GRPC_LATENCY.labels(self.service, self.method).observe(elapsed)
        level = logging.WARNING if code == grpc.StatusCode.INTERNAL else logging.INFO
        logger.log(
            level,
            "rpc finished",
            extra={
                "rpc": f"{self.service}/{self.method}",
                "code": code.name,
                "duration_ms": round(elapsed * 1000, 2),
            },
        )

    def code_of(self, error: BaseException | None) -> grpc.StatusCode:
        if error is None:
            code = self.context.code()
            return code if isinstance(code, grpc.StatusCode) else grpc.StatusCode.OK
        if isinstance(error, DomainError):
            return error.status
        if isinstance(error, Exception) and outage_error(error) is not None:
            return grpc.StatusCode.UNAVAILABLE
        if isinstance(error, asyncio.CancelledError):
            return grpc.StatusCode.CANCELLED
        code = self.context.code()
        return code if isinstance(code, grpc.StatusCode) else grpc.StatusCode.INTERNAL


# grpc's stubs describe a synchronous server's method handlers; on a grpc.aio server the same
# attributes hold coroutine functions (one response) and async generator functions (a stream).
_AsyncUnaryBehavior = Callable[[Any, ServicerContext], Awaitable[Any]]
_AsyncStreamBehavior = Callable[[Any, ServicerContext], AsyncIterator[Any]]


def _check_peer(context: ServicerContext, policy: PeerPolicy, full_method: str) -> None:
    """Refuse a caller whose certificate's common name the policy does not list, or lists
    without this method. mTLS proves who signed the certificate; this says which services
    may call this one, and what. The message names the caller and the method, never the
    peers that are allowed."""
    if policy.serves_every_peer:
        return
    names = {name.decode() for name in context.auth_context().get("x509_common_name", ())}
    if any(policy.allows(name, full_method) for name in names):
        return
    listed = sorted(name for name in names if policy.lists(name))
    if listed:
        raise PeerNotAllowed(f"this service does not serve {', '.join(listed)} on {full_method}")
    shown = ", ".join(sorted(names)) or "a caller without a certificate name"
    raise PeerNotAllowed(f"this service does not serve {shown}")


@asynccontextmanager
async def _observed_call(
    full_method: str, context: ServicerContext, allowed_peers: PeerPolicy
) -> AsyncIterator[None]:
    """Around one call's handling, unary or streaming alike: the bookkeeping of `_Observed`,
    the caller's certificate and this method checked against `allowed_peers`, and a failure
    turned into the status the caller gets (an abort passes through as it is)."""
    call = _Observed(full_method, context)
    error: BaseException | None = None
    try:
        _check_peer(context, allowed_peers, full_method)
        yield
    except Exception as exc:
        error = exc
        if isinstance(exc, grpc.aio.AbortError):
            raise
        await _abort_for(exc, context)
    finally:
        call.finish(call.code_of(error))


def _wrap_unary_response(
    behavior: _AsyncUnaryBehavior, full_method: str, allowed_peers: PeerPolicy
) -> _AsyncUnaryBehavior:
    async def handler(request_or_iterator: Any, context: ServicerContext) -> Any:
        async with _observed_call(full_method, context, allowed_peers):
            return await behavior(request_or_iterator, context)

    return handler


def _wrap_stream_response(
    behavior: _AsyncStreamBehavior, full_method: str, allowed_peers: PeerPolicy
) -> _AsyncStreamBehavior:
    async def handler(request_or_iterator: Any, context: ServicerContext) -> Any:
        async with _observed_call(full_method, context, allowed_peers):
            async for response in behavior(request_or_iterator, context):
                yield response

    return handler


# A wrapped behavior goes back into a handler of its own kind, by (request streaming,
# response streaming): the interceptor wraps the four kinds in one way.
_HANDLER_FACTORIES: dict[tuple[bool, bool], Callable[..., "grpc.RpcMethodHandler[Any, Any]"]] = {
    (False, False): grpc.unary_unary_rpc_method_handler,
    (True, False): grpc.stream_unary_rpc_method_handler,
    (False, True): grpc.unary_stream_rpc_method_handler,
    (True, True): grpc.stream_stream_rpc_method_handler,
}


class ObservabilityInterceptor(grpc.aio.ServerInterceptor):
    """Every call but health and reflection: metrics, logs, the domain-to-status mapping, and
    with `allowed_peers` the caller's certificate name checked against the method called
    (PeerNotAllowed)."""

    def __init__(self, allowed_peers: PeerPolicy) -> None:
        self._allowed = allowed_peers

    async def intercept_service(
        self,
        continuation: Callable[
            [grpc.HandlerCallDetails], Awaitable["grpc.RpcMethodHandler[Any, Any] | None"]
        ],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> "grpc.RpcMethodHandler[Any, Any] | None":
        handler = await continuation(handler_call_details)
        method = handler_call_details.method
        if handler is None or method.startswith(("/grpc.health", "/grpc.reflection")):
            return handler
        behavior = (
            handler.unary_unary
            or handler.stream_unary
            or handler.unary_stream
            or handler.stream_stream
        )
        wrapped: _AsyncUnaryBehavior | _AsyncStreamBehavior
        if handler.response_streaming:
            wrapped = _wrap_stream_response(
                cast(_AsyncStreamBehavior, behavior), method, self._allowed
            )
        else:
            wrapped = _wrap_unary_response(
                cast(_AsyncUnaryBehavior, behavior), method, self._allowed
            )
        make_handler = _HANDLER_FACTORIES[handler.request_streaming, handler.response_streaming]
        return make_handler(wrapped, handler.request_deserializer, handler.response_serializer)


@dataclass
class ServiceRegistration:
    """One servicer and the generated function that adds it to a server."""

    name: str
    servicer: object
    add_to_server: Callable[[Any, grpc.aio.Server], None]


@dataclass
class GrpcApp:
    """A configured server: `start()` it, `stop()` drains it (runner.ServiceApp does both).

    `tls`: the port accepts only mutual TLS with a client certificate signed by the CA, and
    picks up rotated files on the next handshake. `health_port`: grpc.health.v1 alone, in
    plaintext, for probes that cannot present a certificate (the kubelet's); it reports the
    same status as the main port, NOT_SERVING from SIGTERM on. `max_connection_age_seconds`:
    connections are asked to go away (GOAWAY) after about that long, so clients reconnect
    and spread over replicas added since; calls in flight finish first. 0: never.
    """

    registrations: Sequence[ServiceRegistration]
    host: str
    port: int
    metrics_port: int = 0
    shutdown_grace_seconds: float = 10.0
    tls: TlsFiles | None = None
    health_port: int | None = None
    max_connection_age_seconds: float = 0.0
    # Several processes of one service share its port (process_group); otherwise a second
    # bind of a taken port must fail rather than silently split the traffic.
    reuse_port: bool = False
    # The client certificates served and the methods each may call (with `tls`); the
    # default serves every certificate on every method.
    allowed_peers: PeerPolicy = field(default_factory=PeerPolicy)
    server: grpc.aio.Server | None = None
    health_server: grpc.aio.Server | None = None
    health_servicer: health.aio.HealthServicer | None = None
    bound_port: int = 0
    bound_health_port: int = 0

    async def start(self) -> int:
        self._refuse_peer_methods_not_served()
        options: list[tuple[str, int]] = [
            ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
            ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
            ("grpc.so_reuseport", 1 if self.reuse_port else 0),
        ]
        if self.max_connection_age_seconds > 0:
            options.append(
                ("grpc.max_connection_age_ms", int(self.max_connection_age_seconds * 1000))
            )
        self.server = grpc.aio.server(
            interceptors=[ObservabilityInterceptor(self.allowed_peers)], options=options
        )
        self.health_servicer = health.aio.HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(self.health_servicer, self.server)
        names = [health.SERVICE_NAME, reflection.SERVICE_NAME]
        for registration in self.registrations:
            registration.add_to_server(registration.servicer, self.server)
            names.append(registration.name)
        reflection.enable_server_reflection(names, self.server)
        address = f"{self.host}:{self.port}"
        if self.tls is None:
            self.bound_port = self.server.add_insecure_port(address)
        else:
            self.bound_port = self.server.add_secure_port(address, self.tls.server_credentials())
        if self.bound_port == 0:
            raise RuntimeError(f"could not bind gRPC port {address}")
        if self.health_port is not None:
            await self._start_health_server(self.health_servicer, self.health_port)
        if self.metrics_port:
            start_http_server(self.metrics_port, addr=self.host)
        await self.server.start()
        for name in ["", *(r.name for r in self.registrations)]:
            await self.health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
        logger.info(
            "gRPC server listening",
            extra={
                "address": f"{self.host}:{self.bound_port}",
                "tls": self.tls is not None,
                "health_port": self.bound_health_port or None,
            },
        )
        return self.bound_port

    def _refuse_peer_methods_not_served(self) -> None:
        """Methods of a service this server does not have (a list meant for another service,
        a typo in the package) would never match, and the peer would be refused on every
        call: better not to start, saying why."""
        served = {registration.name for registration in self.registrations}
        foreign = self.allowed_peers.services() - served
        if foreign:
            raise ValueError(
                f"{PEER_POLICY_VARIABLE} names methods of {', '.join(sorted(foreign))}, which "
                f"this server does not serve (it serves {', '.join(sorted(served))})"
            )

    async def _start_health_server(self, servicer: health.aio.HealthServicer, port: int) -> None:
        """The same HealthServicer on a second, plaintext server that serves nothing else."""
        self.health_server = grpc.aio.server(options=[("grpc.so_reuseport", 0)])
        health_pb2_grpc.add_HealthServicer_to_server(servicer, self.health_server)
        self.bound_health_port = self.health_server.add_insecure_port(f"{self.host}:{port}")
        if self.bound_health_port == 0:
            raise RuntimeError(f"could not bind gRPC health port {self.host}:{port}")
        await self.health_server.start()

    async def stop(self) -> None:
        assert self.server is not None and self.health_servicer is not None
        await self.health_servicer.enter_graceful_shutdown()
        await self.server.stop(self.shutdown_grace_seconds)
        if self.health_server is not None:
            await self.health_server.stop(None)
        logger.info("gRPC server stopped")
