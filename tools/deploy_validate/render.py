"""Render kustomizations with the real Kustomize, the one ``kubectl kustomize`` carries.

Kustomize itself refuses what a kustomization gets wrong: an unknown field, a resource or
patch file that does not exist, a strategic merge patch or a ``replicas`` entry that matches
no object, an object listed twice, a ConfigMap merged into one that does not exist. Rendering
with it is therefore the first check. What Kustomize accepts silently and this repository
does not want is checked here, on the kustomization files and their rendered result
(``kustomization_problems``).

There is no fallback renderer: without kubectl nothing can be validated, and we say so
(``KubectlMissing``) instead of skipping.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

KUSTOMIZATION_FILES = ("kustomization.yaml", "kustomization.yml", "Kustomization")
INSTALL_HINT = (
    "kubectl not found on PATH: install kubectl (it carries Kustomize: Kubernetes' or Google "
    "Cloud's apt package `kubectl`, or the release binary from kubernetes.io), then run again"
)
RENDER_TIMEOUT_SECONDS = 120


class KubectlMissing(RuntimeError):
    """kubectl is not installed, so nothing can be rendered (the message says what to do)."""

    def __init__(self) -> None:
        super().__init__(INSTALL_HINT)


class RenderError(RuntimeError):
    """``kubectl kustomize`` refused the kustomization; the message is Kustomize's."""


def kubectl() -> str:
    """The kubectl executable, or KubectlMissing."""
    path = shutil.which("kubectl")
    if path is None:
        raise KubectlMissing()
    return path


def render(directory: Path) -> list[dict[str, Any]]:
    """Every object ``kubectl kustomize DIRECTORY`` prints, in its order."""
    result = subprocess.run(
        [kubectl(), "kustomize", str(directory)],
        capture_output=True,
        text=True,
        timeout=RENDER_TIMEOUT_SECONDS,
        check=False,
    )
    if result.returncode != 0:
        raise RenderError(f"kubectl kustomize {directory} failed:\n{result.stderr.strip()}")
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def dump(objects: list[dict[str, Any]]) -> str:
    return "---\n".join(yaml.safe_dump(obj, sort_keys=False) for obj in objects)


def kustomization(directory: Path) -> dict[str, Any]:
    """A directory's kustomization file, parsed (not rendered)."""
    for name in KUSTOMIZATION_FILES:
        candidate = directory / name
        if candidate.is_file():
            return yaml.safe_load(candidate.read_text(encoding="utf-8")) or {}
    raise FileNotFoundError(f"no kustomization file in {directory}")


def overlays(k8s_dir: Path) -> list[Path]:
    """Every directory under ``k8s/overlays`` that holds a kustomization: whatever is added
    there is validated without a list to update."""
    root = k8s_dir / "overlays"
    return sorted(
        p for p in root.iterdir() if any((p / name).is_file() for name in KUSTOMIZATION_FILES)
    )


def _local_bases(directory: Path) -> Iterator[Path]:
    """``directory`` and every kustomization directory its resources name, depth first."""
    yield directory
    for entry in kustomization(directory).get("resources") or []:
        target = directory / entry
        if target.is_dir():
            yield from _local_bases(target)


def _containers(node: Any) -> Iterator[dict[str, Any]]:
    """Every container-like map anywhere below ``node`` (the places Kustomize sets images)."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key in ("containers", "initContainers", "ephemeralContainers") and isinstance(
                value, list
            ):
                yield from (c for c in value if isinstance(c, dict))
            else:
                yield from _containers(value)
    elif isinstance(node, list):
        for item in node:
            yield from _containers(item)


def _image_entry_applied(entry: dict[str, Any], images: set[str]) -> bool:
    """Whether some rendered image is what the ``images`` entry asks for."""
    name = str(entry.get("newName") or entry["name"])
    if entry.get("digest"):
        return f"{name}@{entry['digest']}" in images
    if entry.get("newTag") is not None:
        return f"{name}:{entry['newTag']}" in images
    return any(image == name or image.startswith((f"{name}:", f"{name}@")) for image in images)


def kustomization_problems(directory: Path, objects: list[dict[str, Any]]) -> list[str]:
    """What ``kubectl kustomize`` accepts but we do not, for one rendered kustomization.

    * an ``images`` entry of ``directory`` that no rendered container shows: Kustomize ignores
      a name it does not find, so a renamed image would silently keep its unpinned base tag;
    * labels that reach selectors (``commonLabels``, ``labels`` with ``includeSelectors``), in
      ``directory`` or a local base: a Deployment's selector is immutable, so such a label
      breaks every later apply.
    """
    problems = []
    images = {str(c.get("image", "")) for obj in objects for c in _containers(obj)}
    # Only the top kustomization's entries: an overlay may re-pin what a base pinned.
    for entry in kustomization(directory).get("images") or []:
        if not _image_entry_applied(entry, images):
            problems.append(f"{directory.name}: images entry {entry} matches no container")
    for base in _local_bases(directory):
        spec = kustomization(base)
        where = base.name
        if spec.get("commonLabels"):
            problems.append(f"{where}: commonLabels also changes selectors; use labels.pairs")
        for entry in spec.get("labels") or []:
            if entry.get("includeSelectors"):
                problems.append(f"{where}: labels with includeSelectors change immutable selectors")
    return problems
