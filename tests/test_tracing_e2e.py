"""One request, one trace, across the whole system, exported to a real OTLP receiver.

A stack of its own with OTEL_EXPORTER_OTLP_ENDPOINT set: a detect request through the gateway
yields one trace whose spans cover the gateway, detection-service, Triton's gRPC call and
PostgreSQL, each under the right parent; the request id the gateway answers with is that
trace's id; no span attribute carries the password, the token or the email.
"""

import os
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from objectvision_devstack.otlp import OtlpReceiver, ReceivedSpan
from objectvision_devstack.stack import Stack

# The slow tier (make test-slow): this whole flow through every service repeats, end to end,
# what the services' own tests check one by one, and make test stays under 15 minutes.
pytestmark = pytest.mark.slow

IMAGES = (
    Path(os.environ.get("OBJECTVISION_SHARED_DIR", Path(__file__).resolve().parents[2] / "shared"))
    / "images"
)
PASSWORD = "correct horse battery staple"
CLIENT, SERVER = 3, 2  # OTLP span kinds


@pytest.fixture(scope="module")
def traced_stack(own_stack: Callable[..., Stack], otlp_receiver: OtlpReceiver) -> Iterator[Stack]:
    stack = own_stack(
        database="objectvision_traces",
        redis_db=3,
        extra_env={
            "OTEL_EXPORTER_OTLP_ENDPOINT": otlp_receiver.endpoint,
            "OTEL_EXPORTER_OTLP_INSECURE": "true",
            "OTEL_BSP_SCHEDULE_DELAY": "100",
            "RESULT_CACHE_TTL_SECONDS": "0",
        },
    )
    with stack.running():
        yield stack


def _by_id(spans: list[ReceivedSpan]) -> dict[str, ReceivedSpan]:
    return {span.span_id: span for span in spans}


def _ancestors(span: ReceivedSpan, by_id: dict[str, ReceivedSpan]) -> list[ReceivedSpan]:
    chain = []
    while span.parent_id in by_id:
        span = by_id[span.parent_id]
        chain.append(span)
    return chain


def _complete(spans: list[ReceivedSpan]) -> bool:
    """Every span the test asserts on has arrived; enclosing spans end (and export) last."""
    names = {(s.service, s.name) for s in spans}
    return (
        ("detection-service", "triton batch") in names
        and ("detection-service", "/inference.GRPCInferenceService/ModelInfer") in names
        and any(s.service == "detection-service" and s.name.endswith("/Detect") for s in spans)
        and any(s.service == "gateway" and s.kind == CLIENT for s in spans)
        and any(s.attributes.get("db.system") == "postgresql" for s in spans)
        and any(s.service == "gateway" and s.kind == SERVER for s in spans)
    )


def test_a_detect_request_is_one_trace_from_the_gateway_to_triton_and_postgres(
    traced_stack: Stack, otlp_receiver: OtlpReceiver
) -> None:
    email = f"trace-{uuid.uuid4().hex[:12]}@example.com"
    with httpx.Client(base_url=traced_stack.gateway_url, timeout=60) as client:
        signed_up = client.post(
            "/api/v1/auth/signup", json={"email": email, "password": PASSWORD, "name": "Tracy"}
        )
        assert signed_up.status_code == 202, signed_up.text
        token = client.post(
            "/api/v1/auth/login", data={"username": email, "password": PASSWORD}
        ).json()["access_token"]
        trace_id, parent = uuid.uuid4().hex, uuid.uuid4().hex[:16]
        response = client.post(
            "/api/v1/detect/image",
            files={"file": ("bus.jpg", (IMAGES / "bus.jpg").read_bytes(), "image/jpeg")},
            headers={
                "Authorization": f"Bearer {token}",
                "traceparent": f"00-{trace_id}-{parent}-01",
            },
        )
    assert response.status_code == 200, response.text
    # One id finds the trace, the log lines and the error body.
    assert response.headers["x-request-id"] == trace_id

    spans = otlp_receiver.wait_for(trace_id, _complete, timeout_s=60)
    by_id = _by_id(spans)
    assert {"gateway", "detection-service"} <= {s.service for s in spans}
    gateway = [s for s in spans if s.service == "gateway" and s.kind == SERVER]
    assert any(s.parent_id == parent for s in gateway)
    detect = next(
        s for s in spans if s.service == "detection-service" and s.name.endswith("/Detect")
    )
    caller = by_id[detect.parent_id]
    assert (caller.service, caller.kind) == ("gateway", CLIENT)
    assert detect.attributes["enduser.id"]
    triton = next(s for s in spans if s.name == "/inference.GRPCInferenceService/ModelInfer")
    assert detect in _ancestors(triton, by_id)
    for statement in (s for s in spans if s.attributes.get("db.system") == "postgresql"):
        assert any(a.service == "gateway" for a in _ancestors(statement, by_id))

    everything = [s for s in otlp_receiver.spans() if s.service]
    for span in everything:
        for key, value in span.attributes.items():
            text: Any = str(value)
            assert token not in text and PASSWORD not in text and email not in text, (
                span.service,
                span.name,
                key,
            )


def test_uploads_on_one_keep_alive_connection_are_separate_traces(
    traced_stack: Stack, otlp_receiver: OtlpReceiver
) -> None:
    """A large upload makes uvicorn pause and resume reading inside the request; that must not
    leave the request's trace on the connection for the requests that follow on it."""
    email = f"trace-{uuid.uuid4().hex[:12]}@example.com"
    image = (IMAGES / "bus.jpg").read_bytes()
    assert len(image) > 64 * 1024  # above uvicorn's read high-water mark
    answered: list[tuple[str, str]] = []
    with httpx.Client(base_url=traced_stack.gateway_url, timeout=60) as client:
        assert (
            client.post(
                "/api/v1/auth/signup", json={"email": email, "password": PASSWORD, "name": "Kim"}
            ).status_code
            == 202
        )
        token = client.post(
            "/api/v1/auth/login", data={"username": email, "password": PASSWORD}
        ).json()["access_token"]
        for _ in range(3):
            trace_id = uuid.uuid4().hex
            response = client.post(
                "/api/v1/detect/image",
                files={"file": ("bus.jpg", image, "image/jpeg")},
                headers={
                    "Authorization": f"Bearer {token}",
                    "traceparent": f"00-{trace_id}-{uuid.uuid4().hex[:16]}-01",
                },
            )
            assert response.status_code == 200, response.text
            answered.append((trace_id, response.headers["x-request-id"]))
        untraced = client.get("/api/v1/users/me", headers={"Authorization": f"Bearer {token}"})
    assert [request_id for _, request_id in answered] == [sent for sent, _ in answered]
    assert untraced.headers["x-request-id"] not in {sent for sent, _ in answered}
    for trace_id, _ in answered:
        spans = otlp_receiver.wait_for(trace_id, _complete, timeout_s=60)
        servers = [s for s in spans if s.service == "gateway" and s.kind == SERVER]
        assert len(servers) == 1, [(s.name, s.kind) for s in spans if s.service == "gateway"]


def test_background_polls_and_pool_chores_leave_no_spans(
    traced_stack: Stack, otlp_receiver: OtlpReceiver
) -> None:
    """The job workers, outbox relays and event consumers poll Redis and PostgreSQL all the
    time; none of that is a trace. Nor are the pool's pre-ping and reset inside a request."""
    with httpx.Client(base_url=traced_stack.gateway_url, timeout=60) as client:
        assert client.get("/health").status_code == 200
    # Several poll intervals of every background loop, and several export intervals.
    time.sleep(4)
    ours = [s for s in otlp_receiver.spans() if s.service != "triton"]
    by_id = _by_id(ours)
    assert ours, "the stack exported nothing: this test would pass without tracing"
    roots = [s for s in ours if s.parent_id not in by_id and not s.parent_id]
    assert not [s.name for s in roots if s.kind == CLIENT]
    assert not [s.name for s in ours if s.name in {"BEGIN;", ";", "ROLLBACK;"}]
