"""OpenTelemetry traces: one trace per request across the gateway, the services, Triton,
PostgreSQL and Redis, exported over OTLP when a collector is configured.

Off unless ``OTEL_EXPORTER_OTLP_ENDPOINT`` (or ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``) is set:
``make run`` needs no collector, and an unconfigured process pays only the API's no-op spans.
Sampling follows the SDK's own variables (``OTEL_TRACES_SAMPLER``, ``OTEL_TRACES_SAMPLER_ARG``;
default parent-based always-on). The W3C ``traceparent`` travels in gRPC metadata (the grpc
instrumentation), in HTTP headers (FastAPI and httpx) and, for work that continues later, in
the Redis Stream messages (``inject_context`` / ``extract_context``).

Why a process-wide provider: OpenTelemetry's instrumentations of grpc.aio, asyncpg and redis
patch those libraries for the whole process (Triton's client channels are created inside
tritonclient), so the provider is installed once, first thing in ``main()``, before any
server, channel or connection exists.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping
from typing import Any

from opentelemetry import propagate, trace
from opentelemetry.context import Context
from opentelemetry.trace import Link, Span, SpanContext

logger = logging.getLogger(__name__)

_ENDPOINT_VARIABLES = ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT")
# Attribute names that must never carry a secret or a person's contact (checked by the tests).
FORBIDDEN_ATTRIBUTE_WORDS = ("email", "password", "token", "secret", "authorization", "cookie")


def tracing_enabled(environ: Mapping[str, str] = os.environ) -> bool:
    return any(environ.get(name, "").strip() for name in _ENDPOINT_VARIABLES)


def configure_tracing(service_name: str) -> Callable[[], None]:
    """Install the tracer provider, the OTLP exporter and the library instrumentations when a
    collector is configured; return what flushes the spans at shutdown (a no-op otherwise)."""
    if not tracing_enabled():
        return lambda: None
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
    from opentelemetry.instrumentation.asyncpg import AsyncPGInstrumentor
    from opentelemetry.instrumentation.grpc import (
        GrpcAioInstrumentorClient,
        GrpcAioInstrumentorServer,
    )
    from opentelemetry.instrumentation.redis import RedisInstrumentor
    from opentelemetry.sdk.resources import SERVICE_NAME, Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    from objectvision_common.sampling import RequestSampler

    # The SDK's sampler from OTEL_TRACES_SAMPLER(_ARG), read the SDK's own way.
    configured = TracerProvider(shutdown_on_exit=False).sampler
    provider = TracerProvider(
        sampler=RequestSampler(configured),
        resource=Resource.create({SERVICE_NAME: service_name}),
    )
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(provider)
    GrpcAioInstrumentorServer().instrument()
    GrpcAioInstrumentorClient().instrument()
    AsyncPGInstrumentor().instrument()
    RedisInstrumentor().instrument()
    logger.info("tracing to an OTLP collector", extra={"service": service_name})

    def shutdown() -> None:
        provider.force_flush(timeout_millis=5000)
        provider.shutdown()

    return shutdown


def tracer(name: str) -> trace.Tracer:
    return trace.get_tracer(name)


def current_trace_id() -> str | None:
    """The active span's trace id (32 hex digits), None outside a sampled trace."""
    context = trace.get_current_span().get_span_context()
    return format(context.trace_id, "032x") if context.is_valid else None


def current_span_context() -> SpanContext | None:
    context = trace.get_current_span().get_span_context()
    return context if context.is_valid else None


def inject_context() -> dict[str, str]:
    """The current trace context as string fields (``traceparent``...) for a message."""
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return carrier


def extract_context(fields: Mapping[str, Any]) -> Context:
    """The trace context a message carried (empty when it carried none)."""
    return propagate.extract({k: v for k, v in fields.items() if isinstance(v, str)})


def links_to(contexts: list[SpanContext | None]) -> list[Link]:
    return [Link(context) for context in contexts if context is not None and context.is_valid]


def record_error(span: Span, error: BaseException) -> None:
    span.record_exception(error)
    span.set_status(trace.Status(trace.StatusCode.ERROR, type(error).__name__))
