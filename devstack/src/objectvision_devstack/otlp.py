"""A real OTLP trace receiver (gRPC, the collector's protocol) that keeps what it is sent.

The test suite starts one to check the traces the services export; nothing here imitates a
service: it is the receiving end of the OpenTelemetry protocol, as a collector would run it.
"""

from __future__ import annotations

import threading
import time
from concurrent import futures
from dataclasses import dataclass, field
from typing import Any

import grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc
from opentelemetry.proto.common.v1 import common_pb2


@dataclass(frozen=True)
class ReceivedSpan:
    service: str
    name: str
    trace_id: str
    span_id: str
    parent_id: str
    kind: int
    attributes: dict[str, Any]
    links: tuple[tuple[str, str], ...]
    status_code: int


def _value(value: common_pb2.AnyValue) -> Any:
    kind = value.WhichOneof("value")
    return getattr(value, kind) if kind else None


@dataclass
class _Store:
    spans: list[ReceivedSpan] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


class _TraceService(trace_service_pb2_grpc.TraceServiceServicer):
    def __init__(self, store: _Store) -> None:
        self._store = store

    def Export(  # noqa: N802 - the protocol's method name
        self, request: trace_service_pb2.ExportTraceServiceRequest, context: grpc.ServicerContext
    ) -> trace_service_pb2.ExportTraceServiceResponse:
        received = []
        for resource_spans in request.resource_spans:
            resource = {a.key: _value(a.value) for a in resource_spans.resource.attributes}
            service = str(resource.get("service.name", ""))
            for scope in resource_spans.scope_spans:
                for span in scope.spans:
                    received.append(
                        ReceivedSpan(
                            service=service,
                            name=span.name,
                            trace_id=span.trace_id.hex(),
                            span_id=span.span_id.hex(),
                            parent_id=span.parent_span_id.hex(),
                            kind=span.kind,
                            attributes={a.key: _value(a.value) for a in span.attributes},
                            links=tuple(
                                (link.trace_id.hex(), link.span_id.hex()) for link in span.links
                            ),
                            status_code=span.status.code,
                        )
                    )
        with self._store.lock:
            self._store.spans.extend(received)
        return trace_service_pb2.ExportTraceServiceResponse()


class OtlpReceiver:
    """``endpoint`` is what OTEL_EXPORTER_OTLP_ENDPOINT takes (plaintext gRPC on loopback)."""

    def __init__(self) -> None:
        self._store = _Store()
        self._server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        trace_service_pb2_grpc.add_TraceServiceServicer_to_server(
            _TraceService(self._store), self._server
        )
        self.port = self._server.add_insecure_port("127.0.0.1:0")

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self._server.start()

    def stop(self) -> None:
        self._server.stop(None)

    def spans(self, trace_id: str | None = None) -> list[ReceivedSpan]:
        with self._store.lock:
            return [s for s in self._store.spans if trace_id is None or s.trace_id == trace_id]

    def wait_for(
        self, trace_id: str, predicate: Any, *, timeout_s: float = 30.0
    ) -> list[ReceivedSpan]:
        """The trace's spans once ``predicate(spans)`` holds; AssertionError after timeout."""
        deadline = time.monotonic() + timeout_s
        while True:
            found = self.spans(trace_id)
            if predicate(found):
                return found
            if time.monotonic() > deadline:
                names = sorted({(s.service, s.name) for s in found})
                raise AssertionError(f"trace {trace_id} incomplete after {timeout_s} s: {names}")
            time.sleep(0.2)
