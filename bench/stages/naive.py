"""Stage 5, the baseline: `bench/naive_app.py` under uvicorn (one worker) in its own process."""

import asyncio
import sys
from pathlib import Path

from bench.config import REPOSITORY
from bench.stages import StageContext, logger
from bench.stages.http import client, post_image, upload_factory
from objectvision_devstack.health import http_ok
from objectvision_devstack.processes import ManagedProcess, free_port

STAGE = "naive"
STARTUP_TIMEOUT_S = 60.0


def start_naive_app(model: Path, log_dir: Path) -> tuple[ManagedProcess, str]:
    """The app as a child process on a free loopback port, once it answers /health."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    process = ManagedProcess(
        "naive",
        [sys.executable, "-m", "bench.naive_app", "--port", str(port), "--model", str(model)],
        log_path=log_dir / "naive.log",
        cwd=REPOSITORY,
    )
    process.start()
    process.wait_ready(lambda: http_ok(f"{url}/health"), timeout=STARTUP_TIMEOUT_S)
    return process, url


async def run(ctx: StageContext, *, log_dir: Path) -> None:
    process, url = await asyncio.to_thread(start_naive_app, ctx.config.model, log_dir)
    try:
        ctx.meter.add(STAGE, process.pid)
        async with client(1, ctx.config.request_timeout_s) as http:
            body = await post_image(http, f"{url}/detect", ctx.images[0], field="file")
        logger.info("naive app: %d objects in %s", len(body["objects"]), ctx.images[0].name)
        for concurrency in ctx.config.concurrencies_for(STAGE):
            async with client(concurrency, ctx.config.request_timeout_s) as http:
                factory = upload_factory(http, f"{url}/detect", ctx.images, field="file")
                await ctx.measure(STAGE, concurrency, factory, involved=[STAGE])
    finally:
        ctx.meter.remove(STAGE)
        await asyncio.to_thread(process.stop)
