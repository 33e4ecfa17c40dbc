"""The detection path runs on the GPU box too (bench/gpu.sh), whose Python has the
OpenTelemetry API (carried in the kit) but not the SDK: creating spans must not need the SDK,
which only a process that exports traces imports."""

import subprocess
import sys

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

_WITHOUT_SDK = """
import importlib, importlib.abc, sys

class NoSdk(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "opentelemetry.sdk" or name.startswith("opentelemetry.sdk."):
            raise ImportError(f"{name}: not on the GPU box")
        return None

sys.meta_path.insert(0, NoSdk())
for module in sys.argv[1:]:
    importlib.import_module(module)
print("imported", len(sys.argv) - 1)
"""


def test_the_detection_path_imports_without_the_opentelemetry_sdk() -> None:
    answer = subprocess.run(
        [sys.executable, "-c", _WITHOUT_SDK, *DETECTION_PATH],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert answer.returncode == 0, answer.stderr
    assert answer.stdout.strip() == f"imported {len(DETECTION_PATH)}"


def test_the_check_refuses_the_sdk() -> None:
    """The finder above really blocks the SDK (else the test before could not fail)."""
    answer = subprocess.run(
        [sys.executable, "-c", _WITHOUT_SDK, "opentelemetry.sdk.trace"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert answer.returncode != 0
    assert "not on the GPU box" in answer.stderr
