"""`python -m bench`: run the benchmark (`make bench`, `make bench-quick`) or redraw a result.

python -m bench                 # full: every stage, concurrency 1..64 (< 10 min)
python -m bench --quick         # fewer points, shorter windows (< 2 min)
python -m bench --stages raw,naive --concurrency 1,8
python -m bench --render bench/results/latest.json   # Markdown and plot again
"""

import argparse
import asyncio
import json
import logging
import sys
from pathlib import Path

from bench.config import BenchConfig
from bench.records import STAGES
from bench.report import render_markdown, render_plot, write_outputs
from bench.runner import run


def _ints(text: str) -> tuple[int, ...]:
    values = tuple(int(part) for part in text.split(",") if part.strip())
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError("give positive integers separated by commas")
    return values


def _stages(text: str) -> tuple[str, ...]:
    chosen = tuple(part.strip() for part in text.split(",") if part.strip())
    unknown = set(chosen) - set(STAGES)
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown stages {sorted(unknown)}; known: {STAGES}")
    return chosen


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer points, shorter windows")
    parser.add_argument(
        "--stages", type=_stages, help=f"comma-separated subset of {','.join(STAGES)}"
    )
    parser.add_argument("--concurrency", type=_ints, dest="concurrencies")
    parser.add_argument("--raw-batches", type=_ints)
    parser.add_argument("--warmup-s", type=float)
    parser.add_argument("--measure-s", type=float)
    parser.add_argument("--max-requests", type=int)
    parser.add_argument("--budget-s", type=float, help="hard limit for all points together")
    parser.add_argument("--model", type=Path, help="plain YOLOv8n ONNX (raw and naive stages)")
    parser.add_argument("--served-model", type=Path, help="served ONNX (`make model` output)")
    parser.add_argument("--images", type=Path, help="folder of .jpg/.png images to cycle")
    parser.add_argument("--out", type=Path, dest="out_dir", help="results folder")
    parser.add_argument("--log-level", default=None, help="the stack's LOG_LEVEL (default INFO)")
    parser.add_argument("--render", type=Path, help="write Markdown and plot beside a result JSON")
    return parser


# Options that choose what to do rather than a BenchConfig field.
_NOT_FIELDS = frozenset({"quick", "render"})


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(name)s %(message)s", datefmt="%H:%M:%S"
    )
    # One line per request from httpx would drown the progress lines (and cost CPU).
    logging.getLogger("httpx").setLevel(logging.WARNING)
    # Every other option overrides the BenchConfig field of its name (None: the preset's).
    overrides = {name: value for name, value in vars(args).items() if name not in _NOT_FIELDS}
    config = BenchConfig.preset(quick=args.quick).with_overrides(**overrides)
    if args.render:
        document = json.loads(args.render.read_text())
        markdown = args.render.with_suffix(".md")
        markdown.write_text(render_markdown(document) + "\n")
        problem = render_plot(document, args.render.with_suffix(".png"))
        print(f"wrote {markdown}" + (f"; {problem}" if problem else ", and the plot"))
        return 0
    document = asyncio.run(run(config))
    paths = write_outputs(document, config.out_dir)
    print(render_markdown(document))
    print("\n".join(f"wrote {path}" for path in paths.values() if path.exists()))
    return 2 if any(s["reason"].startswith("failed") for s in document["skipped"]) else 0


if __name__ == "__main__":
    sys.exit(main())
