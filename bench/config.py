"""What a run measures and for how long: the full and quick presets, and their inputs.

Budgets: `make bench` must finish in under 10 minutes and `make bench-quick` in under 2 on
the 2-core development machine, start-up of the whole stack included. Each point costs about
warm-up + window + drain; `budget_s` is a hard stop: points that no longer fit are recorded
as skipped instead of overrunning.
"""

import os
from dataclasses import dataclass, replace
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parents[1]


def _data_dir() -> Path:
    return Path(os.environ.get("OBJECTVISION_DATA_DIR", REPOSITORY / ".data"))


@dataclass(frozen=True)
class BenchConfig:
    quick: bool
    stages: tuple[str, ...]
    raw_batches: tuple[int, ...]
    concurrencies: tuple[int, ...]
    warmup_s: float
    measure_s: float
    max_requests: int
    request_timeout_s: float
    budget_s: float
    model: Path
    served_model: Path
    images: Path
    out_dir: Path
    # Rounds of the paired c=1 measurement (raw, Detect, gateway back to back).
    paired_rounds: int = 40
    # Per-stage concurrencies where a stage needs fewer points than `concurrencies`.
    stage_concurrencies: tuple[tuple[str, tuple[int, ...]], ...] = ()
    log_level: str = "INFO"

    def concurrencies_for(self, stage: str) -> tuple[int, ...]:
        return dict(self.stage_concurrencies).get(stage, self.concurrencies)

    @classmethod
    def preset(cls, *, quick: bool) -> "BenchConfig":
        """Full: every concurrency, 10 s windows. Quick: c=1 and c=32 (the two the targets
        read; Triton alone only at c=1, DetectStream only at c=32), batch 1 and 4, 3.5 s
        windows."""
        from bench.records import STAGES

        common = {
            "stages": STAGES,
            "request_timeout_s": 60.0,
            "model": Path(
                os.environ.get("MODEL_PATH") or REPOSITORY.parent / "shared/models/yolov8n.onnx"
            ),
            "served_model": Path(
                os.environ.get("MODEL_PATH_SERVED")
                or _data_dir() / "models" / "yolov8n_served.onnx"
            ),
            "images": Path(os.environ.get("BENCH_IMAGES") or REPOSITORY.parent / "shared/images"),
            "out_dir": REPOSITORY / "bench" / "results",
        }
        if quick:
            return cls(
                quick=True,
                raw_batches=(1, 4),
                concurrencies=(1, 32),
                warmup_s=1.0,
                measure_s=3.5,
                max_requests=400,
                # 100 s of stages, plus ~20 s for int8 against fp32 (bench/stages/models.py).
                # A 4K frame tiled against whole (~10 s, bench/stages/tiling.py) shares it: the
                # stack stages after it go first when it runs short.
                budget_s=120.0,
                paired_rounds=12,
                stage_concurrencies=(
                    ("triton", (1,)),
                    ("detect_stream", (32,)),
                    # REST against the live WebSocket (bench/stages/live.py).
                    ("live", (1, 4)),
                ),
                **common,  # type: ignore[arg-type]
            )
        return cls(
            quick=False,
            raw_batches=(1, 2, 4, 8),
            concurrencies=(1, 4, 16, 32, 64),
            warmup_s=3.0,
            measure_s=10.0,
            max_requests=2000,
            # 530 s of stages, plus ~60 s for int8 against fp32 (bench/stages/models.py).
            # A 4K frame tiled against whole (~25 s, bench/stages/tiling.py) shares it: the
            # stack stages after it go first when it runs short.
            budget_s=590.0,
            # REST against the live WebSocket (bench/stages/live.py): one caller and a few.
            stage_concurrencies=(("live", (1, 8)),),
            **common,  # type: ignore[arg-type]
        )

    def with_overrides(self, **changes: object) -> "BenchConfig":
        """The preset with command-line overrides; None means keep the preset's value.
        Concurrencies given explicitly apply to every stage."""
        chosen = {k: v for k, v in changes.items() if v is not None}
        if "concurrencies" in chosen:
            chosen["stage_concurrencies"] = ()
        return replace(self, **chosen)  # type: ignore[arg-type]
