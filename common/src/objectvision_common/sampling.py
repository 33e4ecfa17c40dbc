"""Which spans a traced process keeps: what a request or a job does, as the configured sampler
decides, and not the background's polls or the connection pool's chores.

Its own module because it needs the OpenTelemetry SDK, which ``objectvision_common.tracing``
imports only once a collector is configured: code that merely creates spans (the detection
path, also run on the GPU box with the API alone) must not need the SDK.
"""

from collections.abc import Sequence

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.trace.sampling import Decision, Sampler, SamplingResult
from opentelemetry.trace import Link, SpanKind
from opentelemetry.util.types import Attributes

# Statements the connection pool sends around every checkout: SQLAlchemy's pre-ping (";" in a
# transaction of its own) and the reset on return. They are the pool's housekeeping, not the
# request's work; a request's own transaction still shows its statements and its COMMIT.
POOL_HOUSEKEEPING_STATEMENTS = frozenset({"BEGIN;", ";", "ROLLBACK;"})


class RequestSampler(Sampler):
    """The configured sampler, minus spans that belong to no request.

    Two kinds of span are dropped before they are recorded: a client call with no parent (a
    background loop polling Redis or PostgreSQL, a model lookup: thousands of one-span traces
    an hour that bury the requests in a trace viewer and cost every process CPU), and the
    pool's housekeeping statements inside a trace. What a request or a job does is sampled by
    ``delegate`` (the SDK's ``OTEL_TRACES_SAMPLER``), so sampling stays configurable.
    """

    def __init__(self, delegate: Sampler) -> None:
        self._delegate = delegate

    def should_sample(
        self,
        parent_context: Context | None,
        trace_id: int,
        name: str,
        kind: SpanKind | None = None,
        attributes: Attributes = None,
        links: Sequence[Link] | None = None,
        trace_state: trace.TraceState | None = None,
    ) -> SamplingResult:
        parent = trace.get_current_span(parent_context).get_span_context()
        if (kind is SpanKind.CLIENT and not parent.is_valid) or (
            name in POOL_HOUSEKEEPING_STATEMENTS
        ):
            return SamplingResult(Decision.DROP)
        return self._delegate.should_sample(
            parent_context, trace_id, name, kind, attributes, links, trace_state
        )

    def get_description(self) -> str:
        return f"RequestSampler{{{self._delegate.get_description()}}}"
