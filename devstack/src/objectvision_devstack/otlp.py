"""A real OTLP trace receiver that keeps what it is sent, over gRPC and over HTTP.

The test suite starts one to check the traces the services export; nothing here imitates a
service: it is the receiving end of the OpenTelemetry protocol, as a collector would run it.
The services' SDK exports OTLP/gRPC (``endpoint``); Triton's OpenTelemetry trace mode exports
only OTLP/HTTP (``http_endpoint``, the ``/v1/traces`` path of the OTLP specification), JSON
encoded by default; the receiver takes both encodings over HTTP and gRPC, into one store.
"""

from __future__ import annotations

import base64
import gzip
import json
import signal
import sys
import threading
import time
from concurrent import futures
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self

import grpc
from google.protobuf import json_format
from google.protobuf.message import DecodeError
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
    # The exports as sent (times, events, scopes), for what needs more than ReceivedSpan.
    requests: list[trace_service_pb2.ExportTraceServiceRequest] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


class _TraceService(trace_service_pb2_grpc.TraceServiceServicer):
    def __init__(self, store: _Store) -> None:
        self._store = store

    def Export(  # noqa: N802 - the protocol's method name
        self, request: trace_service_pb2.ExportTraceServiceRequest, context: grpc.ServicerContext
    ) -> trace_service_pb2.ExportTraceServiceResponse:
        _keep(self._store, request)
        return trace_service_pb2.ExportTraceServiceResponse()


def _keep(store: _Store, request: trace_service_pb2.ExportTraceServiceRequest) -> None:
    """The spans of one export, flattened with their resource's service name."""
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
    with store.lock:
        store.spans.extend(received)
        store.requests.append(request)


TRACES_PATH = "/v1/traces"
PROTOBUF = "application/x-protobuf"
JSON = "application/json"
# OTLP/JSON writes these ids as hex, where protobuf's JSON mapping of bytes is base64.
_ID_FIELDS = ("traceId", "spanId", "parentSpanId")


def _parse_protobuf(body: bytes) -> trace_service_pb2.ExportTraceServiceRequest:
    request = trace_service_pb2.ExportTraceServiceRequest()
    request.ParseFromString(body)
    return request


def _hex_ids_to_base64(node: Any) -> None:
    if isinstance(node, list):
        for item in node:
            _hex_ids_to_base64(item)
    elif isinstance(node, dict):
        for key, value in node.items():
            if key in _ID_FIELDS and isinstance(value, str):
                node[key] = base64.b64encode(bytes.fromhex(value)).decode()
            else:
                _hex_ids_to_base64(value)


def _parse_json(body: bytes) -> trace_service_pb2.ExportTraceServiceRequest:
    """The OTLP/JSON encoding (what opentelemetry-cpp's HTTP exporter, hence Triton, sends by
    default): protobuf's JSON mapping, except that trace and span ids are hex strings."""
    document = json.loads(body)
    _hex_ids_to_base64(document)
    request = trace_service_pb2.ExportTraceServiceRequest()
    json_format.ParseDict(document, request, ignore_unknown_fields=True)
    return request


def _http_handler(store: _Store) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        """OTLP/HTTP: POST /v1/traces, protobuf or JSON encoded, gzip or identity bodies."""

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length)
            if self.path != TRACES_PATH:
                self._answer(404, b"")
                return
            if self.headers.get("Content-Encoding", "").lower() == "gzip":
                body = gzip.decompress(body)
            as_json = "json" in self.headers.get("Content-Type", "").lower()
            try:
                request = _parse_json(body) if as_json else _parse_protobuf(body)
            except (DecodeError, json_format.ParseError, ValueError):
                self._answer(400, b"not an ExportTraceServiceRequest")
                return
            _keep(store, request)
            answer = trace_service_pb2.ExportTraceServiceResponse()
            if as_json:
                self._answer(200, json_format.MessageToJson(answer).encode(), content_type=JSON)
            else:
                self._answer(200, answer.SerializeToString(), content_type=PROTOBUF)

        def _answer(self, status: int, body: bytes, *, content_type: str = "text/plain") -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            """Quiet: the tests read the spans, not an access log on stderr."""

    return Handler


class OtlpReceiver:
    """``endpoint`` is what OTEL_EXPORTER_OTLP_ENDPOINT takes (plaintext gRPC on loopback);
    ``http_endpoint`` the full OTLP/HTTP traces URL (what Triton's ``opentelemetry,url`` takes).

    ``with OtlpReceiver() as receiver:`` listens for the block; the spans stay readable after.
    """

    def __init__(self) -> None:
        self._store = _Store()
        self._server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        trace_service_pb2_grpc.add_TraceServiceServicer_to_server(
            _TraceService(self._store), self._server
        )
        self.port = self._server.add_insecure_port("127.0.0.1:0")
        self._http = ThreadingHTTPServer(("127.0.0.1", 0), _http_handler(self._store))
        self._http.daemon_threads = True
        self.http_port = int(self._http.server_address[1])
        self._http_thread = threading.Thread(
            target=self._http.serve_forever, name="otlp-http", daemon=True
        )

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def http_endpoint(self) -> str:
        return f"http://127.0.0.1:{self.http_port}{TRACES_PATH}"

    def start(self) -> None:
        self._server.start()
        self._http_thread.start()

    def stop(self) -> None:
        self._server.stop(None)
        self._http.shutdown()
        self._http.server_close()

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def spans(self, trace_id: str | None = None) -> list[ReceivedSpan]:
        with self._store.lock:
            return [s for s in self._store.spans if trace_id is None or s.trace_id == trace_id]

    def requests(self) -> list[trace_service_pb2.ExportTraceServiceRequest]:
        """Every export received so far, over gRPC or HTTP, whole."""
        with self._store.lock:
            return list(self._store.requests)

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


def main() -> None:
    """``python -m objectvision_devstack.otlp``: a receiver in a process of its own.

    Prints ``{"grpc": port, "http": port}`` as one JSON line once listening, runs until its
    standard input closes or SIGTERM, then prints ``{"spans": count}``. For measurements that
    must not share a process (and its GIL) with the receiver, such as the benchmark's tracing
    overhead.
    """
    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())

    def until_stdin_closes() -> None:
        sys.stdin.read()
        stopping.set()

    with OtlpReceiver() as receiver:
        threading.Thread(target=until_stdin_closes, daemon=True).start()
        print(json.dumps({"grpc": receiver.port, "http": receiver.http_port}), flush=True)
        stopping.wait()
    print(json.dumps({"spans": len(receiver.spans())}), flush=True)


if __name__ == "__main__":
    main()
