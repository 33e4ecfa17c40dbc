"""Tracing overhead: the gateway's detect route at c=1 with tracing off and on, in one run.

One stack, five windows: off, on, off, on with one request in ten sampled, off again. Between
windows the gateway, auth-service and detection-service restart with (on) or without (off)
``OTEL_EXPORTER_OTLP_ENDPOINT``, pointed at a real OTLP receiver in a process of its own
(``python -m objectvision_devstack.otlp``: not in this one, whose GIL the load generator needs).
The first on window uses the sampler of this process's environment (``OTEL_TRACES_SAMPLER``/
``OTEL_TRACES_SAMPLER_ARG``; the SDK's default keeps every trace), the second the ratio sampler
the Kubernetes base configures (``parentbased_traceidratio``, 0.1); it is left out when the
environment already names that one. Two off windows bracket each on window, so a drift of
the machine's other load shows as their difference and cancels in their pooled value.
Reported per sampler: throughput and p50 per condition, on/off ratios, the p50 difference, the
CPU the traced processes spent per request, the spans the receiver got (an "on" that exported
nothing measured nothing), and the issue's targets (at most 3 % throughput, 1 ms p50): met,
not met, or inconclusive when the off windows alone differ by more than that.

Triton is not restarted, so its own OpenTelemetry spans are off in both conditions: what is
measured is the services' instrumentation, export included.
"""

import asyncio
import contextlib
import json
import os
import statistics
import subprocess
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from bench.cpu import CpuMeter
from bench.loadgen import closed_loop
from bench.stages import StageContext, logger, switching, window_estimate_s
from bench.stages.gateway import ROUTE, caller_or_skip
from bench.stages.http import client, upload_factory
from objectvision_common.tracing import tracing_enabled
from objectvision_devstack.stack import Stack

STAGE = "tracing"
# The processes on the detect route that trace; restarted in this order (the gateway last, so
# it never dials a service that is restarting).
TRACED = ("auth", "detection", "gateway")
MAX_THROUGHPUT_LOSS = 0.03
MAX_P50_DELTA_MS = 1.0
DEFAULT_SAMPLER = "parentbased_always_on"
# What k8s/base configures: one request in ten starts a trace.
RATIO_SAMPLER = ("parentbased_traceidratio", "0.1")
# Per restart of the three processes (stop, start, readiness), for the budget check.
_SWITCH_ESTIMATE_S = 15.0


class Window(switching.Window):
    """A window through the traced processes, which can also say what they spent in CPU."""

    @property
    def cpu_ms_per_request(self) -> float | None:
        """CPU the traced processes (gateway, auth-, detection-service) spent per request:
        what tracing costs, steadier than latency on a shared machine. None when unmetered."""
        start, end = self.result.cpu_start, self.result.cpu_end
        if start is None or end is None or not self.result.requests:
            return None
        spent = CpuMeter.delta(start, end)
        return 1000.0 * sum(spent.get(name, 0.0) for name in TRACED) / self.result.requests


@contextlib.contextmanager
def _receiver() -> Iterator[tuple[str, subprocess.Popen[str]]]:
    """A real OTLP receiver in its own process; yields its gRPC endpoint and the process."""
    process = subprocess.Popen(
        [sys.executable, "-m", "objectvision_devstack.otlp"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        ports = json.loads(process.stdout.readline())
        yield f"http://127.0.0.1:{ports['grpc']}", process
    finally:
        if process.poll() is None:
            process.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=10)


def _spans_received(process: subprocess.Popen[str]) -> int:
    """Close the receiver and read how many spans it kept."""
    assert process.stdin is not None and process.stdout is not None
    process.stdin.close()
    for line in process.stdout:
        if line.startswith("{"):
            return int(json.loads(line)["spans"])
    raise RuntimeError("the OTLP receiver exited without reporting its spans")


def _switch(ctx: StageContext, stack: Stack, env: Mapping[str, str | None]) -> None:
    """Restart the traced processes with `env` applied (None removes a variable)."""
    switching.restart(ctx, stack=stack, services=TRACED, env=env)


def _pooled(windows: list[Window]) -> tuple[float, float, int]:
    """Throughput, p50 and request count of several windows of one condition together."""
    work = sum(w.result.work_images for w in windows)
    seconds = sum(w.result.window_s for w in windows)
    latencies = [ms for w in windows for ms in w.result.latencies_ms]
    return work / seconds, statistics.median(latencies), len(latencies)


def _pooled_cpu(windows: list[Window]) -> float | None:
    """CPU per request of several windows of one condition (request-weighted)."""
    metered = [(w.cpu_ms_per_request, w.result.requests) for w in windows]
    if any(ms is None for ms, _ in metered):
        return None
    requests = sum(n for _, n in metered)
    return sum(ms * n for ms, n in metered if ms is not None) / requests if requests else None


def summarize(
    windows: list[Window], *, spans: int, sampler: str, sampler_arg: str | None
) -> dict[str, Any]:
    """The result section from the three windows (off, on, off)."""
    off = [w for w in windows if w.condition == "off"]
    on = [w for w in windows if w.condition == "on"]
    off_ips, off_p50, off_n = _pooled(off)
    on_ips, on_p50, on_n = _pooled(on)
    throughput_ratio = on_ips / off_ips
    p50_delta = on_p50 - off_p50
    # How far the machine moved between the two off windows: when that alone is larger than
    # the differences the targets allow, on against off cannot be judged from this run.
    drift_ratio = abs(off[-1].result.throughput - off[0].result.throughput) / off_ips
    drift_ms = abs(off[-1].p50_ms - off[0].p50_ms)
    conclusive = drift_ratio <= MAX_THROUGHPUT_LOSS and drift_ms <= MAX_P50_DELTA_MS
    cpu = _pooled_cpu(off), _pooled_cpu(on)
    met = throughput_ratio >= 1 - MAX_THROUGHPUT_LOSS and p50_delta <= MAX_P50_DELTA_MS
    return {
        "concurrency": 1,
        "sampler": sampler,
        "sampler_arg": sampler_arg,
        "requests": {"off": off_n, "on": on_n},
        "spans_exported": spans,
        "throughput_ips": {
            "off_before": round(off[0].result.throughput, 2),
            "on": round(on_ips, 2),
            "off_after": round(off[-1].result.throughput, 2),
            "off": round(off_ips, 2),
        },
        "p50_ms": {
            "off_before": round(off[0].p50_ms, 2),
            "on": round(on_p50, 2),
            "off_after": round(off[-1].p50_ms, 2),
            "off": round(off_p50, 2),
        },
        "on_over_off": {
            "throughput": round(throughput_ratio, 4),
            "p50": round(on_p50 / off_p50, 4),
        },
        "p50_delta_ms": round(p50_delta, 2),
        # None where the windows were not metered.
        "cpu_ms_per_request": {
            "off": None if cpu[0] is None else round(cpu[0], 2),
            "on": None if cpu[1] is None else round(cpu[1], 2),
        },
        "off_drift": {"throughput_ratio": round(drift_ratio, 4), "p50_ms": round(drift_ms, 2)},
        "targets": {
            "max_throughput_loss": MAX_THROUGHPUT_LOSS,
            "max_p50_delta_ms": MAX_P50_DELTA_MS,
            # None: inconclusive (the off windows drifted apart by more than the targets).
            "met": met if conclusive else None,
        },
    }


@dataclass(frozen=True)
class Sampling:
    """One traced condition: the sampler the restarted processes get."""

    sampler: str
    sampler_arg: str | None


def samplings(environ: Mapping[str, str] = os.environ) -> list[Sampling]:
    """The configured sampler (the SDK's default when none), then the Kubernetes ratio unless
    that is the configured one."""
    configured = Sampling(
        environ.get("OTEL_TRACES_SAMPLER") or DEFAULT_SAMPLER,
        environ.get("OTEL_TRACES_SAMPLER_ARG") or None,
    )
    ratio = Sampling(*RATIO_SAMPLER)
    return [configured] if configured == ratio else [configured, ratio]


async def _window(
    ctx: StageContext, base_url: str, route: Any, headers: Mapping[str, str], condition: str
) -> Window:
    settings = ctx.settings(1)
    async with client(1, ctx.config.request_timeout_s) as pool:
        factory = upload_factory(
            pool,
            f"{base_url}{ROUTE}",
            ctx.images,
            field=route.field,
            headers=dict(headers),
            params=route.params,
            form=route.form,
        )
        result = await closed_loop(factory, settings, meter=ctx.meter)
    result.require_clean(f"tracing {condition}")
    window = Window(condition, result)
    logger.info(
        "tracing %-3s c=1 %7.1f img/s  p50 %7.2f ms", condition, result.throughput, window.p50_ms
    )
    return window


async def run(ctx: StageContext, *, stack: Stack) -> list[dict[str, Any]] | None:
    """The tracing sections of the result (one per sampler), or None when skipped."""
    if ctx.config.quick:
        # Four windows and three restarts of three processes would take most of the quick
        # run's budget, and its 3.5 s windows are too short for a 1 ms difference.
        ctx.skip(STAGE, "measured by the full run (make bench), not the quick one")
        return None
    traced = samplings()
    settings = ctx.settings(1)
    windows_needed = 1 + 2 * len(traced)
    windows_s = windows_needed * window_estimate_s(settings)
    if not ctx.within_budget(STAGE, seconds=windows_s + (windows_needed - 1) * _SWITCH_ESTIMATE_S):
        return None
    base_url = stack.gateway_url
    resolved = await caller_or_skip(ctx, stage=STAGE, base_url=base_url)
    if resolved is None:
        return None
    route, headers = resolved
    off_env: dict[str, str | None] = dict.fromkeys(
        (
            "OTEL_EXPORTER_OTLP_ENDPOINT",
            # It would take precedence over the endpoint.
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
            "OTEL_TRACES_SAMPLER",
            "OTEL_TRACES_SAMPLER_ARG",
        )
    )
    if tracing_enabled(stack.env):
        # A stack started with tracing on (the variables exported) is switched off first.
        await asyncio.to_thread(_switch, ctx, stack, off_env)
    # Off, then each traced condition followed by off again: every on window is judged against
    # the two off windows around it, so the machine's drift over the stage cancels per sampler.
    offs = [await _window(ctx, base_url, route, headers, "off")]
    sections = []
    for sampling in traced:
        with _receiver() as (endpoint, receiver):
            on_env = {
                **off_env,
                "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint,
                "OTEL_TRACES_SAMPLER": sampling.sampler,
                "OTEL_TRACES_SAMPLER_ARG": sampling.sampler_arg,
            }
            logger.info("tracing stage: restarting %s with %s", TRACED, sampling)
            await asyncio.to_thread(_switch, ctx, stack, on_env)
            window = await _window(ctx, base_url, route, headers, "on")
            # Restarted (tracing off) before the receiver closes: their last spans flush first.
            await asyncio.to_thread(_switch, ctx, stack, off_env)
            spans = _spans_received(receiver)
        if spans == 0:
            raise RuntimeError(f"tracing on ({sampling}) exported no span: it measured nothing")
        offs.append(await _window(ctx, base_url, route, headers, "off"))
        sections.append(
            summarize(
                [offs[-2], window, offs[-1]],
                spans=spans,
                sampler=sampling.sampler,
                sampler_arg=sampling.sampler_arg,
            )
        )
    return sections


def _cpu_sentence(section: Mapping[str, Any]) -> str:
    cpu = section.get("cpu_ms_per_request") or {}
    if cpu.get("off") is None or cpu.get("on") is None:
        return ""
    return (
        f" CPU per request of gateway, auth- and detection-service: off {cpu['off']} ms, on"
        f" {cpu['on']} ms (+{cpu['on'] - cpu['off']:.2f})."
    )


def markdown(section: Mapping[str, Any]) -> list[str]:
    """The result section as Markdown lines for bench/report.py."""
    ips, p50, ratio = section["throughput_ips"], section["p50_ms"], section["on_over_off"]
    targets, drift = section["targets"], section["off_drift"]
    if targets["met"] is None:
        verdict = (
            f"inconclusive: the two off windows differ by {drift['throughput_ratio']:.1%}"
            f" throughput and {drift['p50_ms']} ms p50, more than the targets allow; measure"
            " on a quiet machine"
        )
    else:
        verdict = "met" if targets["met"] else "NOT met"
    sampler = section["sampler"] + (
        f" ({section['sampler_arg']})" if section.get("sampler_arg") else ""
    )
    return [
        f"## Tracing overhead, sampler {sampler}: gateway POST /api/v1/detect/image, c=1,"
        " off / on / off",
        "",
        f"Sampler {sampler}; {section['spans_exported']} spans exported while on."
        f" Throughput img/s: off {ips['off_before']} / on {ips['on']} / off {ips['off_after']}"
        f" (on/off {ratio['throughput']}); p50 ms: off {p50['off_before']} / on {p50['on']} /"
        f" off {p50['off_after']} (on - off {section['p50_delta_ms']}).{_cpu_sentence(section)}",
        f"Target: at most {targets['max_throughput_loss']:.0%} throughput and"
        f" {targets['max_p50_delta_ms']} ms p50: {verdict}.",
        "",
    ]
