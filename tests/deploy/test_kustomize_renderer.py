"""The Python Kustomize renderer: same objects as `kubectl kustomize`, and its subset refuses
anything else."""

import shutil
import subprocess
import textwrap
from pathlib import Path

import pytest
import yaml
from deploy_validate import REPO_ROOT, kustomize, smp
from deploy_validate.k8s import OVERLAYS

needs_kubectl = pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl not on PATH")


def _write(directory: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = directory / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    return directory


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_overlay_renders(rendered, overlay):
    kinds = {o["kind"] for o in rendered[overlay]}
    assert {"Namespace", "Deployment", "Service", "ConfigMap", "Job", "NetworkPolicy"} <= kinds


@needs_kubectl
@pytest.mark.parametrize("overlay", ["base", *(f"overlays/{o}" for o in OVERLAYS)])
def test_python_renderer_matches_kubectl_kustomize(overlay):
    directory = REPO_ROOT / "k8s" / overlay
    expected = kustomize.render_kubectl(directory)
    actual = kustomize.render_python(directory)
    assert kustomize.differences(expected, actual) == []


@needs_kubectl
def test_configmap_hash_matches_kustomize(tmp_path):
    literals = ["A=b", "EMPTY=", "HTML=<a href='x'>&amp;</a>", "UNICODE=grüße", "NUM=8000"]
    _write(
        tmp_path,
        {
            "kustomization.yaml": yaml.safe_dump(
                {"configMapGenerator": [{"name": "cfg", "literals": literals}]}
            )
        },
    )
    (expected,) = kustomize.render_kubectl(tmp_path)
    (actual,) = kustomize.render_python(tmp_path)
    assert actual == expected


def test_strategic_merge_semantics():
    base = {
        "kind": "Deployment",
        "metadata": {"name": "x", "labels": {"a": "1", "b": "2"}},
        "spec": {
            "template": {
                "spec": {
                    "nodeSelector": {"gpu": "true"},
                    "tolerations": [{"key": "t"}],
                    "initContainers": [{"name": "one", "args": ["a"]}, {"name": "two"}],
                    "containers": [
                        {
                            "name": "c",
                            "args": ["--x", "--y"],
                            "env": [{"name": "A", "value": "1"}],
                            "ports": [{"containerPort": 80, "name": "http"}],
                            "resources": {"limits": {"cpu": "1", "nvidia.com/gpu": 1}},
                        }
                    ],
                }
            }
        },
    }
    patch = {
        "kind": "Deployment",
        "metadata": {"name": "x", "labels": {"b": None, "c": "3"}},
        "spec": {
            "template": {
                "spec": {
                    "nodeSelector": None,
                    "tolerations": None,
                    "initContainers": [
                        {"name": "two", "$patch": "delete"},
                        {"name": "one", "args": ["b"]},
                    ],
                    "containers": [
                        {
                            "name": "c",
                            "args": ["--z"],
                            "env": [{"name": "B", "value": "2"}],
                            "ports": [{"containerPort": 81, "name": "grpc"}],
                            "resources": {"limits": {"nvidia.com/gpu": None}},
                        }
                    ],
                }
            }
        },
    }
    merged = smp.merge(base, patch)
    spec = merged["spec"]["template"]["spec"]
    assert merged["metadata"]["labels"] == {"a": "1", "c": "3"}
    assert "nodeSelector" not in spec and "tolerations" not in spec
    assert spec["initContainers"] == [{"name": "one", "args": ["b"]}]
    container = spec["containers"][0]
    assert container["args"] == ["--z"]  # lists without a merge key are replaced
    # Merged by key, Kustomize's order: the patch's elements first, then the base's others.
    assert [e["name"] for e in container["env"]] == ["B", "A"]
    assert [p["containerPort"] for p in container["ports"]] == [81, 80]
    assert container["resources"] == {"limits": {"cpu": "1"}}
    assert base["spec"]["template"]["spec"]["nodeSelector"] == {"gpu": "true"}  # not mutated
    assert smp.merge(base, {"kind": "Deployment", "$patch": "delete"}) is smp.DELETE


def test_strategic_merge_refuses_unsupported_directives():
    with pytest.raises(smp.UnsupportedPatch):
        smp.merge({"kind": "X", "spec": {"a": [1]}}, {"kind": "X", "$setElementOrder/spec": []})


@pytest.mark.parametrize(
    ("image", "expected"),
    [
        ("nginx", ("nginx", "", "")),
        ("nginx:1.27", ("nginx", "1.27", "")),
        ("registry:5000/team/app:v1", ("registry:5000/team/app", "v1", "")),
        ("app@sha256:abc", ("app", "", "sha256:abc")),
        ("nvcr.io/nvidia/tritonserver:24.10-py3", ("nvcr.io/nvidia/tritonserver", "24.10-py3", "")),
        ("r.io/a/b:t@sha256:d", ("r.io/a/b", "t", "sha256:d")),
    ],
)
def test_split_image(image, expected):
    assert kustomize.split_image(image) == expected


def test_unsupported_fields_are_refused(tmp_path):
    _write(tmp_path, {"kustomization.yaml": "namePrefix: x-\nresources: []\n"})
    with pytest.raises(kustomize.UnsupportedKustomization, match="namePrefix"):
        kustomize.render_python(tmp_path)


def test_json6902_patches_are_refused(tmp_path):
    _write(
        tmp_path,
        {
            "kustomization.yaml": """
                resources: [cm.yaml]
                patches:
                  - path: p.yaml
                    target: {kind: ConfigMap, name: c}
            """,
            "cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n",
            "p.yaml": "- op: add\n  path: /data\n  value: {}\n",
        },
    )
    with pytest.raises(kustomize.UnsupportedKustomization):
        kustomize.render_python(tmp_path)


@needs_kubectl
def test_repository_kustomizations_build_with_kubectl():
    for overlay in OVERLAYS:
        result = subprocess.run(
            ["kubectl", "kustomize", str(REPO_ROOT / "k8s" / "overlays" / overlay)],
            capture_output=True,
            text=True,
            check=False,
        )
        assert result.returncode == 0, result.stderr
