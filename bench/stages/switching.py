"""What the stages that compare a setting off and on share (cache, tracing): each restarts
processes of the benchmark's own stack with the setting changed, then measures a c=1 window
through the gateway per condition."""

import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from bench.loadgen import LoadResult
from bench.stages import StageContext
from objectvision_devstack.stack import Stack


@dataclass(frozen=True)
class Window:
    """One measured window and the condition it was measured under ("off", "hit", ...)."""

    condition: str
    result: LoadResult

    @property
    def p50_ms(self) -> float:
        return statistics.median(self.result.latencies_ms)

    def summary(self) -> dict[str, Any]:
        """The window as a record lists it: its condition, frames, frames/s and p50."""
        return {
            "condition": self.condition,
            "frames": len(self.result.latencies_ms),
            "throughput_fps": round(self.result.throughput, 2),
            "p50_ms": round(self.p50_ms, 2),
        }


def restart(
    ctx: StageContext, *, stack: Stack, services: Sequence[str], env: Mapping[str, str | None]
) -> None:
    """Restart `services`, in the order given, with `env` applied to the stack's environment
    (None removes a variable)."""
    for key, value in env.items():
        if value is None:
            stack.env.pop(key, None)
        else:
            stack.env[key] = value
    for name in services:
        stack.restart(name)
        # The CPU meter follows the new process, for the stages measured after this one.
        ctx.meter.add(name, stack.processes[name].pid)
