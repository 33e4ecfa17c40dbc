"""The cache stage against the benchmark's own stack: hits are hits, and the stack is restored.

Starts the stack as `python -m bench` does (result cache off), runs the stage with short
windows, and checks the recorded section (schema, Markdown), that every timed hit said
`cached: true` (the stage fails otherwise), and that detection-service is back to the cache
off afterwards, which the stage's own check must then report as a miss. No timing is
asserted: the ratios are reported, not judged.
"""

import asyncio
import json
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import pytest

from bench.config import BenchConfig
from bench.images import load_images
from bench.loadgen import RequestError
from bench.report import render_markdown
from bench.runner import _start_stack
from bench.stages import StageContext, cache
from bench.stages.gateway import ROUTE, login, upload_route
from bench.tests.factories import document, stage_context
from objectvision_devstack.stack import Stack

SCHEMA = json.loads((Path(__file__).parents[1] / "result.schema.json").read_text())

# A stack of its own and three restarts of detection-service: the slow tier (make test-slow).
pytestmark = pytest.mark.slow
CONFIG = BenchConfig.preset(quick=False).with_overrides(
    stages=("cache",), warmup_s=0.5, measure_s=1.5, max_requests=200, budget_s=240.0
)


async def _after(
    ctx: StageContext, stack: Stack
) -> tuple[dict[str, Any] | None, BaseException | None]:
    """Run the stage, then ask the restored stack for a hit on an image sent just before."""
    section = await cache.run(ctx, stack=stack)
    base = stack.gateway_url
    async with httpx.AsyncClient(timeout=60.0) as http:
        route = upload_route((await http.get(f"{base}/openapi.json")).json())
        headers = {"Authorization": f"Bearer {await login(http, base)}"}
        seen = {"answers": 0, "wrong": 0}
        factory = cache.checked_factory(
            http,
            f"{base}{ROUTE}",
            ctx.images[0],
            route=route,
            headers=headers,
            expect_cached=True,
            seen=seen,
        )
        failures: list[RequestError] = []
        async with factory(0) as send:
            # The same image twice: with the cache off again, the repeat is no hit either.
            for _ in range(2):
                try:
                    await send()
                except RequestError as error:
                    failures.append(error)
    assert seen == {"answers": 2, "wrong": 2}
    return section, failures[-1] if len(failures) == 2 else None


@pytest.mark.skipif(
    not CONFIG.served_model.exists(), reason=f"{CONFIG.served_model} is missing: make model"
)
def test_hits_are_verified_recorded_and_the_cache_is_switched_back_off(tmp_path: Path) -> None:
    images = load_images(CONFIG.images)
    ctx = stage_context(CONFIG, images)
    stack = _start_stack(CONFIG, tmp_path / "stack")
    try:
        assert stack.env[cache.TTL_VARIABLE] == "0"
        section, failure = asyncio.run(_after(ctx, stack))
        # Restored: the stack's own setting, and a detection-service running with it.
        assert stack.env[cache.TTL_VARIABLE] == "0"
        assert not stack.exited()
    finally:
        stack.stop()

    assert not ctx.skipped, ctx.skipped
    assert section is not None
    jsonschema.validate(section, SCHEMA["properties"]["cache"])
    assert section["hits_verified"] is True
    assert section["first_request"]["cached"] is False
    assert section["requests"]["miss"] >= 1 and section["requests"]["hit"] >= 1
    assert set(section["p50_ms"]) == set(section["p95_ms"]) == {"miss", "hit"}
    assert set(section["hit_over_miss"]) == {"p50", "p95", "throughput"}
    # The stage's check has teeth: a repeat upload with the cache off is refused as a hit.
    assert isinstance(failure, RequestError) and failure.kind == "cache:unexpected-miss"

    whole = document([])
    whole["cache"] = section
    jsonschema.validate(whole, SCHEMA)
    text = render_markdown(whole)
    assert "## Result cache: gateway POST /api/v1/detect/image, c=1, miss against hit" in text
    assert "every answer `cached: true`" in text
