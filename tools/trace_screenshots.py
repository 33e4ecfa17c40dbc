"""Take the trace screenshots in docs/ with headless Chromium and the Jaeger UI, from real traces.

    make trace-screenshots JAEGER_UI_DIR=/path/to/jaeger-ui/packages/jaeger-ui/build

Starts a system of its own (the devstack Stack, as `make run` and the tests do: embedded
PostgreSQL and Redis, the services, the gateway, and Triton with its OpenTelemetry trace mode
on), every part exporting its spans to a real OTLP receiver in this process. Then it signs up
a user, detects bus.jpg and runs a batch job of three shared images through the gateway; the
X-Request-ID of each answer is its trace id. Each trace, as the receiver got it, is written
to a JSON file and loaded into the Jaeger UI through the search page's "Upload" tab, with no
Jaeger backend: the browser reaches nothing but the UI's static build, served on loopback.
Writes docs/trace-detect.png and docs/trace-batch-job.png.

Why a conversion: the Jaeger UI reads an uploaded OTLP JSON file by POSTing it to the query
service's /api/transform, which only a Jaeger backend has; Jaeger's own JSON ({"data":
[{"traceID", "spans", "processes"}]}) it reads by itself. So this script writes that, the way
Jaeger's OTLP translator does (span kind, status and scope as tags, events as logs, the parent
as the first CHILD_OF reference, links as FOLLOWS_FROM references).

The Jaeger UI build: jaeger-ui v1.62.0, the UI inside jaegertracing/all-in-one:1.62.0 that
docker-compose.yml runs. It needs Node 20 (its .nvmrc) and the npm registry; the release
builds with Yarn 1 from its yarn.lock (it has no package-lock.json, so no `npm ci`). These
commands built the one the committed screenshots came from (about 5 minutes on two cores):

    mkdir -p /var/tmp/jaeger-ui && cd /var/tmp/jaeger-ui
    git clone --branch v1.62.0 --depth 1 https://github.com/jaegertracing/jaeger-ui.git src
    npm install --prefix /var/tmp/jaeger-ui/tools yarn@1.22.22
    cd src && nice -n 19 ../tools/node_modules/.bin/yarn install --frozen-lockfile \
        --network-timeout 600000
    cd packages/jaeger-ui && nice -n 19 ../../../tools/node_modules/.bin/yarn build
    # then: make trace-screenshots JAEGER_UI_DIR=/var/tmp/jaeger-ui/src/packages/jaeger-ui/build
"""

import argparse
import asyncio
import contextlib
import json
import os
import secrets
import shutil
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import headless
import httpx
from opentelemetry.proto.common.v1 import common_pb2
from opentelemetry.proto.trace.v1 import trace_pb2
from playwright.async_api import Error as PlaywrightError
from playwright.async_api import ViewportSize, async_playwright, expect

from objectvision_devstack import otlp
from objectvision_devstack.stack import Stack, stack_with_triton

WIDTH = 1400
# The Jaeger UI renders only the span rows inside the window: the window is made as tall as
# the trace (a header, then one row per span) so that one screenshot shows every span.
HEADER_PX, ROW_PX = 260, 29
NAME_COLUMN = 0.45  # of the width, for the span names
BATCH_SIZE = 3
PASSWORD_BYTES = 18
# Triton on the CPU: the first inference, or a batch, can take a while.
REQUEST_TIMEOUT_S = 120.0
JOB_TIMEOUT_S = 300.0
# A trace is taken as complete once no span of it has arrived for this long (the services
# export every 100 ms here, Triton every 500 ms).
SETTLE_S = 3.0
SPAN_KINDS = {1: "internal", 2: "server", 3: "client", 4: "producer", 5: "consumer"}
STATUS_CODES = {1: "OK", 2: "ERROR"}


def trace_spans(
    receiver: otlp.OtlpReceiver, trace_id: str
) -> list[tuple[trace_pb2.ResourceSpans, Any, trace_pb2.Span]]:
    """The spans of one trace as exported (times, events), each with its resource and scope."""
    wanted = bytes.fromhex(trace_id)
    return [
        (resource_spans, scope_spans.scope, span)
        for request in receiver.requests()
        for resource_spans in request.resource_spans
        for scope_spans in resource_spans.scope_spans
        for span in scope_spans.spans
        if span.trace_id == wanted
    ]


# OTLP to the Jaeger UI's JSON


def _tag(key: str, value: common_pb2.AnyValue) -> dict[str, Any]:
    kind = value.WhichOneof("value")
    if kind == "bool_value":
        return {"key": key, "type": "bool", "value": value.bool_value}
    if kind == "int_value":
        return {"key": key, "type": "int64", "value": value.int_value}
    if kind == "double_value":
        return {"key": key, "type": "float64", "value": value.double_value}
    if kind == "string_value":
        return {"key": key, "type": "string", "value": value.string_value}
    if kind == "bytes_value":
        return {"key": key, "type": "binary", "value": value.bytes_value.hex()}
    if kind == "array_value":
        items = [_tag("", item)["value"] for item in value.array_value.values]
        return {"key": key, "type": "string", "value": json.dumps(items)}
    if kind == "kvlist_value":
        pairs = {kv.key: _tag("", kv.value)["value"] for kv in value.kvlist_value.values}
        return {"key": key, "type": "string", "value": json.dumps(pairs)}
    return {"key": key, "type": "string", "value": ""}


def _tags(attributes: Any) -> list[dict[str, Any]]:
    return [_tag(attribute.key, attribute.value) for attribute in attributes]


def _string(key: str, value: str) -> dict[str, Any]:
    return {"key": key, "type": "string", "value": value}


def jaeger_trace(trace_id: str, spans: list[tuple[Any, Any, trace_pb2.Span]]) -> dict[str, Any]:
    """One trace in the JSON the Jaeger query API answers with, which the UI's upload reads."""
    processes: dict[str, dict[str, Any]] = {}
    process_ids: dict[str, str] = {}
    jaeger_spans: list[dict[str, Any]] = []
    for resource_spans, scope, span in spans:
        attributes = {a.key: a.value for a in resource_spans.resource.attributes}
        service = attributes["service.name"].string_value if "service.name" in attributes else ""
        process = {
            "serviceName": service or "unknown",
            "tags": _tags(a for a in resource_spans.resource.attributes if a.key != "service.name"),
        }
        key = json.dumps(process, sort_keys=True)
        if key not in process_ids:
            process_ids[key] = f"p{len(process_ids) + 1}"
            processes[process_ids[key]] = process
        references = []
        if span.parent_span_id:
            references.append(
                {"refType": "CHILD_OF", "traceID": trace_id, "spanID": span.parent_span_id.hex()}
            )
        for link in span.links:
            references.append(
                {
                    "refType": "FOLLOWS_FROM",
                    "traceID": link.trace_id.hex(),
                    "spanID": link.span_id.hex(),
                }
            )
        tags = _tags(span.attributes)
        if span.kind in SPAN_KINDS:
            tags.append(_string("span.kind", SPAN_KINDS[span.kind]))
        if scope.name:
            tags.append(_string("otel.scope.name", scope.name))
        if scope.version:
            tags.append(_string("otel.scope.version", scope.version))
        if span.status.code in STATUS_CODES:
            tags.append(_string("otel.status_code", STATUS_CODES[span.status.code]))
        if span.status.message:
            tags.append(_string("otel.status_description", span.status.message))
        if span.status.code == 2:
            tags.append({"key": "error", "type": "bool", "value": True})
        logs = [
            {
                "timestamp": event.time_unix_nano // 1000,
                "fields": [_string("event", event.name), *_tags(event.attributes)],
            }
            for event in span.events
        ]
        jaeger_spans.append(
            {
                "traceID": trace_id,
                "spanID": span.span_id.hex(),
                "flags": 1,
                "operationName": span.name,
                "references": references,
                "startTime": span.start_time_unix_nano // 1000,
                "duration": max(0, span.end_time_unix_nano - span.start_time_unix_nano) // 1000,
                "tags": tags,
                "logs": logs,
                "processID": process_ids[key],
                "warnings": None,
            }
        )
    jaeger_spans.sort(key=lambda s: s["startTime"])
    return {"traceID": trace_id, "spans": jaeger_spans, "processes": processes, "warnings": None}


# The system, traced


@contextlib.contextmanager
def traced_system(data_dir: Path, receiver: otlp.OtlpReceiver) -> Iterator[Stack]:
    """Triton and the Stack, every part exporting its spans to ``receiver``."""
    # Triton's spans go to the receiver's OTLP/HTTP port (the Stack's own Triton would send
    # them to the standard port 4318, which this receiver does not hold).
    with stack_with_triton(
        data_dir,
        triton_trace_url=receiver.http_endpoint,
        extra_env={
            "LOG_LEVEL": "INFO",
            "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint,
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": receiver.endpoint,
            "OTEL_EXPORTER_OTLP_INSECURE": "true",
            "OTEL_TRACES_SAMPLER": "parentbased_always_on",
            "OTEL_BSP_SCHEDULE_DELAY": "100",
            # Every request reaches inference: a cached result would leave Triton out.
            "RESULT_CACHE_TTL_SECONDS": "0",
        },
    ) as (stack, _triton):
        yield stack


def _wait_settled(
    receiver: otlp.OtlpReceiver, trace_id: str, required: set[str], timeout_s: float
) -> None:
    """Until the trace has spans of every service in ``required`` and no more arrive."""
    deadline = time.monotonic() + timeout_s
    count, changed_at = -1, time.monotonic()
    while True:
        spans = trace_spans(receiver, trace_id)
        if len(spans) != count:
            count, changed_at = len(spans), time.monotonic()
        services = {
            next(
                (a.value.string_value for a in r.resource.attributes if a.key == "service.name"),
                "",
            )
            for r, _, _ in spans
        }
        if required <= services and time.monotonic() - changed_at >= SETTLE_S:
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"trace {trace_id}: spans of {sorted(required - services)} missing")
        time.sleep(0.2)


def make_traces(gateway_url: str, receiver: otlp.OtlpReceiver) -> dict[str, str]:
    """Sign up, detect bus.jpg, run a batch job; the trace id of each, by screenshot name."""
    email = f"ada-{uuid.uuid4().hex[:10]}@example.com"
    # A throwaway account: nobody logs in to it again.
    password = secrets.token_urlsafe(PASSWORD_BYTES)
    traces = {}
    required = {"gateway", "detection-service", "triton"}
    with httpx.Client(base_url=gateway_url, timeout=REQUEST_TIMEOUT_S) as client:
        signed_up = client.post(
            "/api/v1/auth/signup", json={"email": email, "password": password, "name": "Ada"}
        )
        signed_up.raise_for_status()
        login = client.post("/api/v1/auth/login", data={"username": email, "password": password})
        login.raise_for_status()
        headers = {"Authorization": f"Bearer {login.json()['access_token']}"}

        bus = headless.IMAGES / "bus.jpg"
        detected = client.post(
            "/api/v1/detect/image",
            files={"file": (bus.name, bus.read_bytes(), "image/jpeg")},
            headers=headers,
        )
        detected.raise_for_status()
        traces["trace-detect"] = detected.headers["x-request-id"]
        _wait_settled(receiver, traces["trace-detect"], required, 60)

        batch = sorted((headless.IMAGES / "coco8" / "images" / "train").glob("*.jpg"))[:BATCH_SIZE]
        submitted = client.post(
            "/api/v1/detect/batch",
            files=[("files", (path.name, path.read_bytes(), "image/jpeg")) for path in batch],
            headers=headers,
        )
        submitted.raise_for_status()
        traces["trace-batch-job"] = submitted.headers["x-request-id"]
        job_url = submitted.headers["location"]
        deadline = time.monotonic() + JOB_TIMEOUT_S
        while (job := client.get(job_url, headers=headers).json())["status"] not in (
            "completed",
            "failed",
        ):
            if time.monotonic() > deadline:
                raise RuntimeError(f"job {job_url} still {job['status']} after {JOB_TIMEOUT_S} s")
            time.sleep(0.5)
        if job["status"] != "completed":
            raise RuntimeError(f"job {job_url} {job['status']}: {job}")
        _wait_settled(receiver, traces["trace-batch-job"], required, 60)
    return traces


# The Jaeger UI


class _UiHandler(headless.QuietHandler):
    """The static build; its client-side routes (/search, /trace/...) get index.html."""

    def send_head(self) -> Any:
        path = self.path.split("?", 1)[0]
        if (
            not path.startswith(("/api/", "/static/"))
            and not Path(self.translate_path(path)).exists()
        ):
            self.path = "/index.html"
        return super().send_head()


async def screenshot(url: str, trace_file: Path, trace_id: str, spans: int, out: Path) -> None:
    """Load ``trace_file`` through the search page's Upload tab; shoot its timeline."""
    async with async_playwright() as playwright:
        browser = await headless.launch(playwright)
        viewport: ViewportSize = {"width": WIDTH, "height": HEADER_PX + ROW_PX * spans}
        page = await browser.new_page(viewport=viewport, base_url=url)
        await headless.only(page, url)
        await page.goto("/search")
        await page.get_by_role("tab", name="Upload").click()
        await page.locator('input[type="file"]').set_input_files(trace_file)
        await expect(page.get_by_text(trace_file.name)).to_be_visible()
        # The search page lists the uploaded trace only when it could also list the backend's
        # services (there is no backend: an error takes its place), so the trace is opened
        # by its id from the top bar, a route within the page: the uploaded trace is found in
        # the page's store, and nothing is fetched.
        lookup = page.get_by_placeholder("Lookup by Trace ID...")
        await lookup.fill(trace_id)
        await lookup.press("Enter")
        rows = page.locator(".span-row")
        await expect(rows).to_have_count(spans, timeout=30_000)
        # Widen the span-name column (a quarter of the width by default) so that the
        # operation names (gRPC methods, SQL statements) are not cut short.
        dragger = page.locator(".TimelineHeaderRow .VerticalResizer--dragger")
        box = await dragger.bounding_box()
        if box is not None:
            y = box["y"] + box["height"] / 2
            await page.mouse.move(box["x"] + box["width"] / 2, y)
            await page.mouse.down()
            await page.mouse.move(WIDTH * NAME_COLUMN, y, steps=10)
            await page.mouse.up()
        await page.mouse.move(0, 0)
        await page.screenshot(path=out)
        await browser.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--jaeger-ui",
        default=os.environ.get("JAEGER_UI_DIR", ""),
        help="a jaeger-ui build: packages/jaeger-ui/build (default: $JAEGER_UI_DIR)",
    )
    args = headless.screenshot_arguments(parser, argv)
    ui_build = Path(args.jaeger_ui).resolve() if args.jaeger_ui else None
    if ui_build is None or not (ui_build / "index.html").exists():
        print(
            f"no jaeger-ui build at {args.jaeger_ui!r}: build one (see the docstring of "
            "tools/trace_screenshots.py) and set JAEGER_UI_DIR to its packages/jaeger-ui/build",
            file=sys.stderr,
        )
        return 1
    if headless.chromium_missing():
        return 1
    data_dir = Path(tempfile.mkdtemp(prefix="objectvision-traces-"))
    receiver = otlp.OtlpReceiver()
    written = []
    try:
        with receiver, traced_system(data_dir, receiver) as stack:
            traces = make_traces(stack.gateway_url, receiver)
        with headless.serve_folder(ui_build, _UiHandler) as url:
            for name, trace_id in traces.items():
                spans = trace_spans(receiver, trace_id)
                trace = jaeger_trace(trace_id, spans)
                trace_file = data_dir / f"{name}.json"
                trace_file.write_text(json.dumps({"data": [trace]}))
                written.append(args.out / f"{name}.png")
                asyncio.run(screenshot(url, trace_file, trace_id, len(spans), written[-1]))
                services = sorted({p["serviceName"] for p in trace["processes"].values()})
                print(f"{name}: trace {trace_id}, {len(spans)} spans of {services}", flush=True)
    except (PlaywrightError, OSError, RuntimeError, httpx.HTTPError) as exc:
        print(f"could not take the trace screenshots: {exc}; logs in {data_dir}", file=sys.stderr)
        return 1
    shutil.rmtree(data_dir, ignore_errors=True)
    headless.report_written(written)
    return 0


if __name__ == "__main__":
    sys.exit(main())
