"""Rendering is Kustomize's own (`kubectl kustomize`): what it refuses fails the validation
with its message, and what it lets pass that we do not want is caught on top."""

import textwrap
from pathlib import Path

import pytest
from deploy_validate import render
from deploy_validate.k8s import K8S_DIR, OVERLAYS

DEPLOYMENT = """\
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers: [{name: web, image: objectvision/web:1}]
"""


def _kustomization(directory: Path, text: str) -> Path:
    (directory / "web.yaml").write_text(DEPLOYMENT)
    (directory / "kustomization.yaml").write_text(textwrap.dedent(text))
    return directory


def test_every_overlay_directory_is_validated(tmp_path):
    """What `make k8s-validate` renders is found, not listed: a new overlay is validated."""
    for name in ("staging", "dev", "notes"):
        (tmp_path / "overlays" / name).mkdir(parents=True)
    for name in ("staging", "dev"):
        (tmp_path / "overlays" / name / "kustomization.yaml").write_text("resources: []\n")
    assert [p.name for p in render.overlays(tmp_path)] == ["dev", "staging"]
    assert set(OVERLAYS) <= {p.name for p in render.overlays(K8S_DIR)}


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_repository_overlays_render_and_have_no_kustomization_problems(rendered, overlay):
    kinds = {o["kind"] for o in rendered[overlay]}
    assert {"Namespace", "Deployment", "Service", "ConfigMap", "Job", "NetworkPolicy"} <= kinds
    directory = K8S_DIR / "overlays" / overlay
    assert render.kustomization_problems(directory, rendered[overlay]) == []


@pytest.mark.parametrize(
    ("kustomization", "kustomize_says"),
    [
        ("resources: [web.yaml, gone.yaml]\n", "gone.yaml"),
        ("resources: [web.yaml, web.yaml]\n", "already registered id"),
        ("resources: [web.yaml]\nnamePrefx: x-\n", "namePrefx"),
        (
            """\
            resources: [web.yaml]
            patches:
              - patch: |-
                  apiVersion: apps/v1
                  kind: Deployment
                  metadata: {name: wbe}
                  spec: {replicas: 2}
            """,
            "wbe",
        ),
        ("resources: [web.yaml]\nreplicas: [{name: wbe, count: 2}]\n", "wbe"),
        (
            "resources: [web.yaml]\n"
            "configMapGenerator: [{name: cfg, behavior: merge, literals: [A=b]}]\n",
            "cannot merge",
        ),
    ],
    ids=["missing-resource", "duplicate", "unknown-field", "patch-target", "replicas", "merge"],
)
def test_what_kustomize_refuses_fails_with_its_message(tmp_path, kustomization, kustomize_says):
    """Missing files, duplicates, typos in fields, patches and replicas that match nothing:
    the checks the old Python renderer made, now made by Kustomize itself."""
    with pytest.raises(render.RenderError, match=kustomize_says):
        render.render(_kustomization(tmp_path, kustomization))


def test_rendering_applies_namespace_labels_images_and_patches(tmp_path):
    objects = render.render(
        _kustomization(
            tmp_path,
            """\
            namespace: team
            resources: [web.yaml]
            labels: [{pairs: {part-of: shop}, includeTemplates: true}]
            images: [{name: objectvision/web, newName: r.io/web, newTag: "2"}]
            patches:
              - patch: |-
                  apiVersion: apps/v1
                  kind: Deployment
                  metadata: {name: web}
                  spec: {replicas: 3}
            """,
        )
    )
    (deployment,) = objects
    assert deployment["metadata"]["namespace"] == "team"
    assert deployment["metadata"]["labels"] == {"part-of": "shop"}
    assert deployment["spec"]["template"]["metadata"]["labels"]["part-of"] == "shop"
    assert deployment["spec"]["selector"] == {"matchLabels": {"app": "web"}}
    assert deployment["spec"]["replicas"] == 3
    assert deployment["spec"]["template"]["spec"]["containers"][0]["image"] == "r.io/web:2"
    assert render.kustomization_problems(tmp_path, objects) == []


def test_an_images_entry_that_matches_nothing_is_reported(tmp_path):
    """Kustomize ignores an images entry whose name no container has; a renamed image would
    then run its unpinned base tag in prod."""
    directory = _kustomization(
        tmp_path, 'resources: [web.yaml]\nimages: [{name: objectvision/wbe, newTag: "2"}]\n'
    )
    objects = render.render(directory)
    (problem,) = render.kustomization_problems(directory, objects)
    assert "objectvision/wbe" in problem


@pytest.mark.parametrize(
    "labels",
    [
        "labels: [{pairs: {tier: web}, includeSelectors: true}]\n",
        "commonLabels: {tier: web}\n",
    ],
)
def test_labels_that_reach_selectors_are_refused_in_bases_too(tmp_path, labels):
    """A Deployment's selector is immutable: such a label breaks every later apply."""
    base = tmp_path / "base"
    base.mkdir()
    _kustomization(base, "resources: [web.yaml]\n" + labels)
    overlay = tmp_path / "overlay"
    overlay.mkdir()
    (overlay / "kustomization.yaml").write_text("resources: [../base]\n")
    (problem,) = render.kustomization_problems(overlay, render.render(overlay))
    assert problem.startswith("base: ") and "selectors" in problem


def test_without_kubectl_nothing_renders_and_the_error_says_what_to_install(monkeypatch):
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(render.KubectlMissing, match="install kubectl"):
        render.render(K8S_DIR / "overlays" / "dev")
