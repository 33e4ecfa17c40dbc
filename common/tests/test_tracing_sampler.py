"""What the sampler keeps: a request's spans, not the background's polls or the pool's chores."""

from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import ALWAYS_ON, ParentBased, TraceIdRatioBased
from opentelemetry.trace import SpanKind

from objectvision_common.sampling import RequestSampler

# The SDK's default sampler, which RequestSampler wraps unless OTEL_TRACES_SAMPLER says otherwise.
DEFAULT = ParentBased(ALWAYS_ON)


def _tracer(sampler: RequestSampler) -> tuple[trace.Tracer, InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider(sampler=sampler, shutdown_on_exit=False)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider.get_tracer("test"), exporter


def test_a_request_keeps_its_calls_statements_and_commit() -> None:
    tracer, exporter = _tracer(RequestSampler(DEFAULT))
    with tracer.start_as_current_span("POST /api/v1/detect/image", kind=SpanKind.SERVER):
        with tracer.start_as_current_span(
            "/objectvision.v1.DetectionService/Detect", kind=SpanKind.CLIENT
        ):
            pass
        for statement in ("BEGIN;", ";", "ROLLBACK;", "BEGIN;", "INSERT", "COMMIT;"):
            with tracer.start_as_current_span(statement, kind=SpanKind.CLIENT):
                pass
    assert [span.name for span in exporter.get_finished_spans()] == [
        "/objectvision.v1.DetectionService/Detect",
        "INSERT",
        "COMMIT;",
        "POST /api/v1/detect/image",
    ]


def test_a_client_call_outside_any_request_is_not_traced() -> None:
    tracer, exporter = _tracer(RequestSampler(DEFAULT))
    with tracer.start_as_current_span("XREADGROUP", kind=SpanKind.CLIENT) as poll:
        assert not poll.is_recording()
        with tracer.start_as_current_span("child of a poll"):
            pass
    with (
        tracer.start_as_current_span("job item", kind=SpanKind.CONSUMER),
        tracer.start_as_current_span("UPDATE", kind=SpanKind.CLIENT),
    ):
        pass
    assert [span.name for span in exporter.get_finished_spans()] == ["UPDATE", "job item"]


def test_requests_are_sampled_by_the_configured_sampler() -> None:
    tracer, exporter = _tracer(RequestSampler(ParentBased(TraceIdRatioBased(0.0))))
    with tracer.start_as_current_span("POST /api/v1/detect/image", kind=SpanKind.SERVER):
        pass
    assert exporter.get_finished_spans() == ()
    assert (
        "TraceIdRatioBased" in RequestSampler(ParentBased(TraceIdRatioBased(0.0))).get_description()
    )
