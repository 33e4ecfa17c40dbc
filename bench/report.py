"""The result document on disk: JSON (the record), Markdown (for people), PNG (the curve).

Everything here reads the JSON document only, so `python -m bench report FILE` can redraw
the Markdown and the plot of any stored run.
"""

import json
import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from bench.records import STAGE_TITLES, STAGES
from bench.stages import cache as cache_stage
from bench.stages import live as live_stage
from bench.stages import outbox as outbox_stage
from bench.stages import priority as priority_stage
from bench.stages import scheduling as scheduling_stage
from bench.stages import tiling as tiling_stage
from bench.stages import tracing as tracing_stage
from bench.stages import tracking as tracking_stage

logger = logging.getLogger(__name__)

Document = Mapping[str, Any]

_MET = {True: "met", False: "**missed**", None: "not measured"}
_COMPARISON = {"ge": ">=", "le": "<="}


def _num(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _ms_per_image(value: float | None) -> str:
    return "-" if value is None else f"{value * 1000:.1f}"


def _other_load(point: Mapping[str, Any], cores: int) -> str:
    """Share of the machine's CPU that other work used during the window."""
    window = point["window_s"]
    if not window:
        return "-"
    return f"{100 * point['other_cpu_s'] / (window * cores):.0f}%"


def _stage_table(points: Sequence[Mapping[str, Any]], stage: str, cores: int) -> list[str]:
    key = "batch" if stage == "raw" else "concurrency"
    lines = [
        f"| {key} | img/s | p50 ms | p95 ms | p99 ms | server CPU ms/img | loadgen CPU ms/img"
        " | errors | other load |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for point in sorted(points, key=lambda p: p[key]):
        latency = point["latency_ms"]
        errors = str(point["errors"])
        if point["error_kinds"]:
            errors += " (" + ", ".join(f"{k}: {v}" for k, v in point["error_kinds"].items()) + ")"
        lines.append(
            f"| {point[key]} | {_num(point['throughput_ips'])} | {_num(latency['p50'])}"
            f" | {_num(latency['p95'])} | {_num(latency['p99'])}"
            f" | {_ms_per_image(point['cpu_s_per_image'])}"
            f" | {_ms_per_image(point['loadgen_cpu_s_per_image'])}"
            f" | {errors} | {_other_load(point, cores)} |"
        )
    return lines


def _section(title: str, *lines: str) -> list[str]:
    """A Markdown section: its heading and `lines`, each set off by a blank line."""
    return [f"## {title}", "", *lines, ""]


def render_markdown(document: Document) -> str:
    """The run as Markdown: machine, targets (met or missed, stated plainly), stage tables."""
    machine = document["machine"]
    cores = machine.get("usable_cores") or machine.get("logical_cores") or 1
    mode = "quick" if machine["quick"] else "full"
    out = [
        f"# Benchmark {document['started_at']} ({machine['git_revision']}, {mode} mode)",
        "",
        f"{machine['cpu_model']}, {cores} usable cores, {machine['memory_gib']} GiB,"
        f" Python {machine['python']}, onnxruntime {machine['onnxruntime']};"
        f" load average at start {machine['loadavg_at_start']}; run took"
        f" {document['duration_s']:.0f} s. All traffic on loopback, load generator on the same"
        " machine.",
        "",
    ]
    busiest = max(
        (p["other_cpu_s"] / max(p["window_s"], 1e-9) for p in document["points"]), default=0.0
    )
    if busiest / cores > 0.1:
        out += [
            f"> **Noisy machine:** other processes used up to {100 * busiest / cores:.0f}% of the"
            " CPU during some points (column *other load*); compare ratios from this run, not"
            " absolute numbers across runs.",
            "",
        ]
    out += [
        "## Targets",
        "",
        "| target | value | goal | result | from | CPU-normalised |",
        "| --- | ---: | ---: | --- | --- | ---: |",
    ]
    for ratio in document["ratios"]:
        goal = f"{_COMPARISON[ratio['comparison']]} {ratio['target']}"
        digits = 1 if ratio["key"].endswith("_ms") else 3
        out.append(
            f"| {ratio['description']} | {_num(ratio['value'], digits)} | {goal}"
            f" | {_MET[ratio['met']]} | {ratio['detail']}"
            f" | {_num(ratio.get('cpu_normalised'), 3)} |"
        )
    out += [
        "",
        "*CPU-normalised*: the same ratio in images per CPU-second of the serving processes"
        " (baseline CPU/img over served CPU/img), i.e. what it would be on a dedicated CPU-bound"
        " machine; other people's load does not move it.",
        "",
        "*server CPU* sums the processes that serve the stage (listed per point in the JSON,"
        " `involved`); *loadgen CPU* is the benchmark client's own; *other load* is busy CPU"
        " that none of our processes used (other people's work).",
        "",
    ]
    if paired := document.get("paired"):
        p50 = paired["p50_ms"]
        out += _section(
            "Paired c=1 (raw, Detect, gateway back to back on the same image)",
            f"{paired['rounds']} rounds, median ms: raw {p50['raw']:.1f},"
            f" Detect {p50['detect']:.1f}, gateway {p50['gateway']:.1f}."
            " Median per-round differences: Detect - raw"
            f" {paired['detect_minus_raw_ms']:.1f}, gateway - Detect"
            f" {paired['gateway_minus_detect_ms']:.1f}, gateway - raw"
            f" {paired['gateway_minus_raw_ms']:.1f}.",
        )
    if compared := document.get("models"):
        ratio = compared["int8_over_fp32"]
        out += _section(
            "Models: yolov8n-int8 against yolov8n (fp32), one run",
            f"{compared['path']}. c=1, {compared['rounds']} paired rounds, median ms:"
            f" fp32 {compared['p50_ms_c1']['yolov8n']}, int8"
            f" {compared['p50_ms_c1']['yolov8n-int8']} (int8/fp32 {ratio['p50_c1']}).",
            f"c={compared['concurrency']}, alternating windows: fp32"
            f" {compared['throughput_ips']['yolov8n']} img/s (p50"
            f" {compared['p50_ms']['yolov8n']} ms), int8"
            f" {compared['throughput_ips']['yolov8n-int8']} img/s (p50"
            f" {compared['p50_ms']['yolov8n-int8']} ms): int8/fp32 throughput"
            f" {ratio['throughput']}, p50 {ratio['p50']}.",
        )
    if document.get("tiling"):
        out += tiling_stage.markdown(document["tiling"])
    tracing = document.get("tracing")
    # One section per sampler; results written before samplers were compared hold one.
    for section in [tracing] if isinstance(tracing, Mapping) else tracing or []:
        out += tracing_stage.markdown(section)
    if document.get("cache"):
        out += cache_stage.markdown(document["cache"])
    if document.get("priority"):
        out += priority_stage.markdown(document["priority"])
    if document.get("tracking"):
        out += tracking_stage.markdown(document["tracking"])
    if document.get("live"):
        out += live_stage.markdown(document["live"])
    if document.get("scheduling"):
        out += scheduling_stage.markdown(document["scheduling"])
    if document.get("outbox"):
        out += outbox_stage.markdown(document["outbox"])
    for stage in STAGES:
        points = [p for p in document["points"] if p["stage"] == stage]
        if not points:
            continue
        out += _section(STAGE_TITLES[stage], *_stage_table(points, stage, cores))
    if document.get("notes"):
        out += _section("Notes", *(f"- {note}" for note in document["notes"]))
    if document["skipped"]:
        out += ["## Not measured", ""]
        for skip in document["skipped"]:
            where = f" (c={skip['concurrency']})" if skip.get("concurrency") else ""
            out.append(f"- {skip['stage']}{where}: {skip['reason']}")
        out.append("")
    return "\n".join(out)


def render_plot(document: Document, path: Path) -> str | None:
    """p50 latency against throughput, one line per stage; None when drawn, else why not."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return "matplotlib is not installed (dev dependency); no plot drawn"
    figure, axes = plt.subplots(figsize=(9, 6))
    for stage in STAGES:
        key = "batch" if stage == "raw" else "concurrency"
        points = sorted(
            (p for p in document["points"] if p["stage"] == stage and p["latency_ms"]["p50"]),
            key=lambda p: p[key],
        )
        if not points:
            continue
        xs = [p["throughput_ips"] for p in points]
        ys = [p["latency_ms"]["p50"] for p in points]
        axes.plot(xs, ys, marker="o", label=stage)
        for x, y, point in zip(xs, ys, points, strict=True):
            label = f"b{point['batch']}" if stage == "raw" else f"c{point['concurrency']}"
            axes.annotate(label, (x, y), textcoords="offset points", xytext=(4, 4), fontsize=7)
    machine = document["machine"]
    axes.set_yscale("log")
    axes.set_xlabel("throughput (images/s)")
    axes.set_ylabel("p50 latency (ms, log)")
    axes.set_title(
        f"ObjectVision {machine['git_revision']} - {machine['cpu_model']}"
        f" ({machine.get('usable_cores')} cores){' - quick' if machine['quick'] else ''}",
        fontsize=9,
    )
    axes.grid(True, which="both", alpha=0.3)
    axes.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return None


def _write_atomically(path: Path, text: str) -> None:
    """Write beside the target, then rename: a reader never sees half a file."""
    partial = path.with_name(path.name + ".tmp")
    partial.write_text(text)
    os.replace(partial, path)


def write_outputs(document: dict[str, Any], out_dir: Path) -> dict[str, Path]:
    """<timestamp>-<rev>.json, latest.json, latest.md and latest.png under `out_dir`."""
    out_dir.mkdir(parents=True, exist_ok=True)
    machine = document["machine"]
    stamp = document["started_at"].replace(":", "").replace("-", "")
    name = f"{stamp}-{machine['git_revision']}{'-quick' if machine['quick'] else ''}.json"
    paths = {
        "json": out_dir / name,
        "latest_json": out_dir / "latest.json",
        "markdown": out_dir / "latest.md",
        "plot": out_dir / "latest.png",
    }
    problem = render_plot(document, paths["plot"])
    if problem:
        document.setdefault("notes", []).append(problem)
        logger.warning(problem)
        paths["plot"].unlink(missing_ok=True)
    text = json.dumps(document, indent=2, sort_keys=False) + "\n"
    _write_atomically(paths["json"], text)
    _write_atomically(paths["latest_json"], text)
    _write_atomically(paths["markdown"], render_markdown(document) + "\n")
    return paths
