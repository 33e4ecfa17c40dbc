"""The test suite's OTLP receiver over HTTP, fed what real exporters produce.

Spans come from the OpenTelemetry SDK and are encoded by its own OTLP protobuf encoder, as the
OTLP/HTTP exporter sends them; the JSON body is the same request in OTLP/JSON (hex ids), the
encoding Triton's exporter uses. Both must come back as the same spans, with their parents.
Also: where `make run`'s Triton sends its spans, given the services' OTLP endpoint.
"""

import base64
import gzip
import json
from collections.abc import Iterator

import httpx
import pytest
from google.protobuf import json_format
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from objectvision_devstack.otlp import OtlpReceiver
from objectvision_devstack.triton import otlp_http_traces_url, trace_arguments


@pytest.fixture
def receiver() -> Iterator[OtlpReceiver]:
    with OtlpReceiver() as server:
        yield server


def _finished_spans() -> list[ReadableSpan]:
    """A parent and a child span, ended, from the SDK (kept in memory, not exported)."""
    kept = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({SERVICE_NAME: "http-exporter"}))
    provider.add_span_processor(SimpleSpanProcessor(kept))
    tracer = provider.get_tracer("test")
    with tracer.start_as_current_span("parent"), tracer.start_as_current_span("child") as child:
        child.set_attribute("objectvision.batch_size", 4)
    provider.shutdown()
    return list(kept.get_finished_spans())


def _hex_ids(node: object) -> None:
    """protobuf's JSON mapping writes bytes as base64; OTLP/JSON writes ids as hex."""
    if isinstance(node, list):
        for item in node:
            _hex_ids(item)
    elif isinstance(node, dict):
        for key, value in node.items():
            if key in ("traceId", "spanId", "parentSpanId"):
                node[key] = base64.b64decode(value).hex()
            else:
                _hex_ids(value)


def _assert_received(receiver: OtlpReceiver, sent: list[ReadableSpan]) -> None:
    by_name = {span.name: span for span in receiver.spans()}
    assert set(by_name) == {"parent", "child"}
    parent, child = by_name["parent"], by_name["child"]
    original = {span.name: span for span in sent}
    assert parent.trace_id == format(original["parent"].context.trace_id, "032x")
    assert parent.span_id == format(original["parent"].context.span_id, "016x")
    assert child.trace_id == parent.trace_id
    assert child.parent_id == parent.span_id
    assert child.attributes == {"objectvision.batch_size": 4}
    assert {parent.service, child.service} == {"http-exporter"}


@pytest.mark.parametrize("compressed", [False, True], ids=["identity", "gzip"])
def test_protobuf_bodies_are_received(receiver: OtlpReceiver, compressed: bool) -> None:
    spans = _finished_spans()
    body = encode_spans(spans).SerializeToString()
    headers = {"Content-Type": "application/x-protobuf"}
    if compressed:
        body, headers["Content-Encoding"] = gzip.compress(body), "gzip"
    answer = httpx.post(receiver.http_endpoint, content=body, headers=headers)
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "application/x-protobuf"
    _assert_received(receiver, spans)


def test_otlp_json_bodies_with_hex_ids_are_received(receiver: OtlpReceiver) -> None:
    spans = _finished_spans()
    document = json_format.MessageToDict(encode_spans(spans))
    _hex_ids(document)
    answer = httpx.post(
        receiver.http_endpoint,
        content=json.dumps(document),
        headers={"Content-Type": "application/json"},
    )
    assert answer.status_code == 200, answer.text
    _assert_received(receiver, spans)


def test_other_paths_and_bodies_are_refused(receiver: OtlpReceiver) -> None:
    elsewhere = receiver.http_endpoint.replace("/v1/traces", "/v1/metrics")
    assert httpx.post(elsewhere, content=b"").status_code == 404
    garbage = httpx.post(
        receiver.http_endpoint,
        content=b"\xff\xff\xff",
        headers={"Content-Type": "application/x-protobuf"},
    )
    assert garbage.status_code == 400
    assert receiver.spans() == []


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({}, None),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": " "}, None),
        (
            {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4317"},
            "http://127.0.0.1:4318/v1/traces",
        ),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "collector:4317"}, "http://collector:4318/v1/traces"),
        (
            {
                "OTEL_EXPORTER_OTLP_ENDPOINT": "http://ignored:4317",
                "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "https://traces.example:443",
            },
            "https://traces.example:4318/v1/traces",
        ),
    ],
)
def test_make_runs_triton_traces_to_the_services_collector_over_otlp_http(
    environ: dict[str, str], expected: str | None
) -> None:
    """Triton's exporter speaks only OTLP/HTTP: the same host as the services' OTLP/gRPC
    endpoint, on OTLP/HTTP's port and path; no endpoint, no Triton tracing."""
    assert otlp_http_traces_url(environ) == expected
    if expected is not None:
        assert trace_arguments(expected)[:2] == [
            "--trace-config=mode=opentelemetry",
            "--trace-config=level=TIMESTAMPS",
        ]
        assert f"--trace-config=opentelemetry,url={expected}" in trace_arguments(expected)
