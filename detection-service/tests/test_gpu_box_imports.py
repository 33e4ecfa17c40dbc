"""The detection path runs on the GPU box too (bench/gpu.sh), whose Python has the
OpenTelemetry API (carried in the kit) but not the SDK: creating spans must not need the SDK,
which only a process that exports traces imports.

The realtime role (ADR 0019) runs there as well, as a real gRPC server: it must import without
the database, migration and video libraries, which neither its pods use nor the kit carries."""

import subprocess
import sys
from collections.abc import Sequence

# What bench/gpu_encoded.py imports from detection-service to build the Detector path.
DETECTION_PATH = (
    "detection_service.metrics",
    "detection_service.pipeline.batcher",
    "detection_service.pipeline.catalog",
    "detection_service.pipeline.classes",
    "detection_service.pipeline.decode",
    "detection_service.pipeline.detector",
    "detection_service.pipeline.triton",
    "detection_service.pipeline.types",
)
NO_SDK = ("opentelemetry.sdk",)

# The realtime role's command, which imports its servicer, settings and the runner.
REALTIME_ROLE = ("detection_service.realtime.server",)
NOT_IN_THE_REALTIME_ROLE = (*NO_SDK, "sqlalchemy", "asyncpg", "alembic", "av")

# Imports the modules named after `--` with the packages named before it made unimportable.
_WITHOUT = """
import importlib, importlib.abc, sys

split = sys.argv.index("--")
absent, modules = sys.argv[1:split], sys.argv[split + 1:]

class Absent(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if any(name == gone or name.startswith(gone + ".") for gone in absent):
            raise ImportError(f"{name}: not on the GPU box")
        return None

sys.meta_path.insert(0, Absent())
for module in modules:
    importlib.import_module(module)
print("imported", len(modules))
"""


def _import_without(
    absent: Sequence[str], modules: Sequence[str]
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", _WITHOUT, *absent, "--", *modules],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_detection_path_imports_without_the_opentelemetry_sdk() -> None:
    answer = _import_without(NO_SDK, DETECTION_PATH)
    assert answer.returncode == 0, answer.stderr
    assert answer.stdout.strip() == f"imported {len(DETECTION_PATH)}"


def test_the_realtime_role_imports_without_database_or_video_libraries() -> None:
    answer = _import_without(NOT_IN_THE_REALTIME_ROLE, REALTIME_ROLE)
    assert answer.returncode == 0, answer.stderr
    assert answer.stdout.strip() == f"imported {len(REALTIME_ROLE)}"


def test_the_check_refuses_the_sdk() -> None:
    """The finder really blocks the SDK (else the tests before could not fail)."""
    answer = _import_without(NO_SDK, ["opentelemetry.sdk.trace"])
    assert answer.returncode != 0
    assert "not on the GPU box" in answer.stderr


def test_the_full_service_needs_what_the_realtime_role_does_without() -> None:
    """The same check fails for the full service's server (so it can fail for the role)."""
    answer = _import_without(NOT_IN_THE_REALTIME_ROLE, ["detection_service.server"])
    assert answer.returncode != 0
    assert "not on the GPU box" in answer.stderr
