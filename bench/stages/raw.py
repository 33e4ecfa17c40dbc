"""Stage 1, the ceiling: decode + letterbox + plain ONNX model + NMS in this very process.

No network, no serialisation, no queue: whatever a serving path achieves is measured
against this. One caller, batches of 1, 2, 4, 8 images; the inference runs in a worker
thread so the event loop (idle here) costs nothing.
"""

import asyncio
import contextlib
import itertools
from collections.abc import AsyncIterator, Iterator

from bench.loadgen import Send
from bench.pipeline import PlainDetector
from bench.records import LOADGEN
from bench.stages import StageContext

STAGE = "raw"


async def run(ctx: StageContext) -> None:
    detector = await asyncio.to_thread(PlainDetector, ctx.config.model)
    payloads = [image.data for image in ctx.images]
    for batch in ctx.config.raw_batches:
        cycle = itertools.cycle(range(len(payloads)))

        @contextlib.asynccontextmanager
        async def factory(
            _: int, batch: int = batch, cycle: Iterator[int] = cycle
        ) -> AsyncIterator[Send]:
            async def send() -> int:
                chosen = [payloads[next(cycle)] for _ in range(batch)]
                await asyncio.to_thread(detector.detect, chosen)
                return batch

            yield send

        await ctx.measure(STAGE, 1, factory, involved=[LOADGEN], batch=batch)
