"""Shared fixtures for the inference tests: the real plain model, the served model, ORT sessions."""

from __future__ import annotations

import sys
from pathlib import Path

import onnxruntime as ort
import pytest

# The suite runs with --import-mode=importlib, which does not put test folders on sys.path;
# the helper module has a repository-unique name, so adding this folder is safe.
sys.path.insert(0, str(Path(__file__).resolve().parent))

from inference_reference import PLAIN_MODEL, cpu_session

from objectvision_inference.prepare_model import main as prepare_main


@pytest.fixture(scope="session")
def plain_onnx() -> Path:
    if not PLAIN_MODEL.exists():
        raise FileNotFoundError(
            f"{PLAIN_MODEL} missing (set MODEL_PATH or OBJECTVISION_SHARED_DIR)"
        )
    return PLAIN_MODEL


@pytest.fixture(scope="session")
def served_onnx(plain_onnx: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The served graph, written by the same console entry point that `make model` runs."""
    out = tmp_path_factory.mktemp("served") / "yolov8n_served.onnx"
    assert prepare_main(["--source", str(plain_onnx), "--output", str(out)]) == 0
    return out


@pytest.fixture(scope="session")
def plain_session(plain_onnx: Path) -> ort.InferenceSession:
    return cpu_session(plain_onnx)


@pytest.fixture(scope="session")
def served_session(served_onnx: Path) -> ort.InferenceSession:
    return cpu_session(served_onnx)
