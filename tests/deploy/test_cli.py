"""The commands the Makefile runs (make k8s-validate, make compose-validate)."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from deploy_validate import REPO_ROOT


def _run(*args: str, path: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO_ROOT / "tools"), *sys.path])}
    if path is not None:
        env["PATH"] = path
    return subprocess.run(
        [sys.executable, "-m", "deploy_validate", *args],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


def test_k8s_validate_renders_every_overlay_with_kubectl():
    pytest.importorskip("kubernetes_validate")
    result = _run("k8s")
    assert result.returncode == 0, result.stdout + result.stderr
    for overlay in ("dev", "prod"):
        assert f"k8s k8s/overlays/{overlay}:" in result.stdout
    assert "(kubectl kustomize," in result.stdout


def test_without_kubectl_k8s_validate_fails_and_says_what_to_install(tmp_path: Path):
    """No silent skip and no fallback: nothing is validated, and the message names kubectl."""
    result = _run("k8s", path=str(tmp_path))  # a PATH with no kubectl on it
    assert result.returncode == 2
    assert "install kubectl" in result.stderr
    assert "ok" not in result.stdout


def test_compose_and_dockerfiles_validate():
    pytest.importorskip("check_jsonschema")
    result = _run("compose")
    assert result.returncode == 0, result.stdout + result.stderr
    result = _run("dockerfiles")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "bake file docker-bake.hcl: ok" in result.stdout


def test_render_prints_what_kubectl_kustomize_prints():
    result = _run("render", "k8s/overlays/dev")
    assert result.returncode == 0, result.stderr
    assert "kind: Deployment" in result.stdout


def test_render_reports_kustomizes_own_error(tmp_path: Path):
    (tmp_path / "kustomization.yaml").write_text("resources: [missing.yaml]\n")
    result = _run("render", str(tmp_path))
    assert result.returncode == 1
    assert "missing.yaml" in result.stderr


def test_k8s_validate_reports_each_broken_overlay_and_goes_on(tmp_path, monkeypatch, capsys):
    """A kustomization Kustomize refuses, and one it renders with an images entry that pins
    nothing, each fail with the reason; the other overlays are still validated."""
    pytest.importorskip("kubernetes_validate")
    from deploy_validate import __main__ as cli
    from deploy_validate import k8s

    overlays = tmp_path / "overlays"
    for name, text in {
        "a-broken": "resources: [gone.yaml]\n",
        "b-unpinned": 'images: [{name: objectvision/gateway, newTag: "1"}]\n',
        "c-empty": "resources: []\n",
    }.items():
        (overlays / name).mkdir(parents=True)
        (overlays / name / "kustomization.yaml").write_text(text)
    monkeypatch.setattr(k8s, "K8S_DIR", tmp_path)
    assert cli.run_k8s([k8s.MIN_KUBERNETES]) >= 2
    out = capsys.readouterr().out
    assert "gone.yaml" in out
    assert "images entry" in out and "objectvision/gateway" in out
    assert "c-empty: 0 objects" in out
