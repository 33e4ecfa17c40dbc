"""The commands the Makefile runs (make k8s-validate, make compose-validate)."""

import os
import subprocess
import sys

import pytest
from deploy_validate import REPO_ROOT


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO_ROOT / "tools"), *sys.path])}
    return subprocess.run(
        [sys.executable, "-m", "deploy_validate", *args],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.parametrize("renderer", ["auto", "python"])
def test_k8s_validate(renderer):
    pytest.importorskip("kubernetes_validate")
    result = _run("k8s", "--renderer", renderer)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "k8s k8s/overlays/prod" in result.stdout


def test_compose_and_dockerfiles_validate():
    pytest.importorskip("check_jsonschema")
    result = _run("compose")
    assert result.returncode == 0, result.stdout + result.stderr
    result = _run("dockerfiles")
    assert result.returncode == 0, result.stdout + result.stderr


def test_render_prints_yaml():
    result = _run("render", "k8s/overlays/dev")
    assert result.returncode == 0, result.stderr
    assert "kind: Deployment" in result.stdout
