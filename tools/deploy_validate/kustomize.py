"""Render a kustomization: ``kubectl kustomize`` when available, else this Python renderer.

The Python renderer implements only what ``k8s/`` uses (``SUPPORTED_FIELDS``); a
kustomization with any other field is refused (``UnsupportedKustomization``) rather than
rendered differently from Kustomize. Order of operations follows Kustomize v5: resources
(recursively rendered), generators, then patches, namespace, labels, replicas, images; the
ConfigMap name hashes and the references to them are applied once, for the top kustomization.
``tests/deploy`` compares both renderers object by object wherever kubectl is on PATH.
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
import shutil
import subprocess
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from deploy_validate import smp

KUSTOMIZATION_FILES = ("kustomization.yaml", "kustomization.yml", "Kustomization")
SUPPORTED_FIELDS = {
    "apiVersion",
    "kind",
    "metadata",
    "resources",
    "namespace",
    "labels",
    "patches",
    "images",
    "replicas",
    "configMapGenerator",
    "generatorOptions",
}
# Kinds that live outside namespaces (those Kustomize knows and this repository may use).
CLUSTER_SCOPED = {
    "Namespace",
    "ClusterRole",
    "ClusterRoleBinding",
    "CustomResourceDefinition",
    "PersistentVolume",
    "StorageClass",
    "PriorityClass",
    "IngressClass",
    "RuntimeClass",
    "APIService",
    "ValidatingWebhookConfiguration",
    "MutatingWebhookConfiguration",
}
_TEMPLATE_KINDS = {"Deployment", "ReplicaSet", "StatefulSet", "DaemonSet", "Job"}
_REPLICA_KINDS = {"Deployment", "ReplicaSet", "StatefulSet", "ReplicationController"}
# kubectl kustomize's default ("legacy") output order: these kinds first, in this order...
_LEGACY_FIRST = [
    "Namespace",
    "ResourceQuota",
    "StorageClass",
    "CustomResourceDefinition",
    "ServiceAccount",
    "PodSecurityPolicy",
    "Role",
    "ClusterRole",
    "RoleBinding",
    "ClusterRoleBinding",
    "ConfigMap",
    "Secret",
    "Endpoints",
    "Service",
    "LimitRange",
    "PriorityClass",
    "PersistentVolume",
    "PersistentVolumeClaim",
    "Deployment",
    "StatefulSet",
    "CronJob",
    "PodDisruptionBudget",
]
# ... and these last.
_LEGACY_LAST = ["MutatingWebhookConfiguration", "ValidatingWebhookConfiguration"]
_GENERATED = "__deploy_validate_generated__"  # marker on generated ConfigMaps, removed at the end


class UnsupportedKustomization(ValueError):
    """The kustomization uses a feature the Python renderer does not implement."""


@dataclass
class _Generated:
    name: str
    hash_suffix: bool


@dataclass
class _Accumulated:
    resources: list[dict[str, Any]] = field(default_factory=list)


def kustomization_file(directory: Path) -> Path:
    for name in KUSTOMIZATION_FILES:
        candidate = directory / name
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(f"no kustomization file in {directory}")


def load_yaml_documents(path: Path) -> list[dict[str, Any]]:
    """Every non-empty YAML document of a file."""
    with path.open(encoding="utf-8") as handle:
        return [doc for doc in yaml.safe_load_all(handle) if doc]


def resource_id(obj: dict[str, Any]) -> tuple[str, str, str, str]:
    meta = obj.get("metadata") or {}
    return (obj.get("apiVersion", ""), obj.get("kind", ""), meta.get("namespace", ""), meta["name"])


# ---- configMapGenerator --------------------------------------------------------------------


def _parse_env_line(line: str, origin: str) -> tuple[str, str] | None:
    line = line.strip()
    if not line or line.startswith("#"):
        return None
    if "=" not in line:
        raise UnsupportedKustomization(f"{origin}: {line!r} is not KEY=VALUE")
    key, value = line.split("=", 1)
    return key.strip(), value


def _generator_data(spec: dict[str, Any], base_dir: Path) -> dict[str, str]:
    data: dict[str, str] = {}
    for literal in spec.get("literals", []):
        parsed = _parse_env_line(literal, f"literal of {spec['name']}")
        if parsed:
            key, value = parsed
            if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
                value = value[1:-1]
            data[key] = value
    for env_file in spec.get("envs", []):
        path = base_dir / env_file
        for line in path.read_text(encoding="utf-8").splitlines():
            parsed = _parse_env_line(line, str(path))
            if parsed:
                data[parsed[0]] = parsed[1]
    for entry in spec.get("files", []):
        key, _, rel = entry.partition("=") if "=" in entry else (Path(entry).name, "", entry)
        path = (base_dir / rel).resolve()
        if base_dir.resolve() not in path.parents:
            raise UnsupportedKustomization(f"{entry}: file outside the kustomization directory")
        data[key] = path.read_text(encoding="utf-8")
    unknown = set(spec) - {"name", "namespace", "behavior", "literals", "envs", "files", "options"}
    if unknown:
        raise UnsupportedKustomization(f"configMapGenerator {spec['name']}: {sorted(unknown)}")
    return data


def _generate_configmaps(kust: dict[str, Any], base_dir: Path, acc: _Accumulated) -> None:
    options = kust.get("generatorOptions") or {}
    if set(options) - {"disableNameSuffixHash", "labels", "annotations"}:
        raise UnsupportedKustomization(f"generatorOptions: {sorted(options)}")
    for spec in kust.get("configMapGenerator", []):
        behavior = spec.get("behavior", "create")
        data = _generator_data(spec, base_dir)
        spec_options = {**options, **(spec.get("options") or {})}
        disable_hash = bool(spec_options.get("disableNameSuffixHash", False))
        existing = [
            obj
            for obj in acc.resources
            if obj.get("kind") == "ConfigMap"
            and obj["metadata"]["name"] == spec["name"]
            and (not spec.get("namespace") or obj["metadata"].get("namespace") == spec["namespace"])
        ]
        if behavior == "create":
            if existing:
                raise UnsupportedKustomization(f"ConfigMap {spec['name']} generated twice")
            metadata: dict[str, Any] = {"name": spec["name"]}
            if spec.get("namespace"):
                metadata["namespace"] = spec["namespace"]
            if spec_options.get("labels"):
                metadata["labels"] = dict(spec_options["labels"])
            if spec_options.get("annotations"):
                metadata["annotations"] = dict(spec_options["annotations"])
            acc.resources.append(
                {
                    "apiVersion": "v1",
                    "kind": "ConfigMap",
                    "metadata": metadata,
                    "data": data,
                    _GENERATED: _Generated(spec["name"], not disable_hash),
                }
            )
        elif behavior in ("merge", "replace"):
            if len(existing) != 1:
                raise UnsupportedKustomization(f"{behavior}: no single ConfigMap {spec['name']}")
            target = existing[0]
            target["data"] = {**target.get("data", {}), **data} if behavior == "merge" else data
            if "disableNameSuffixHash" in (spec.get("options") or {}) and _GENERATED in target:
                target[_GENERATED].hash_suffix = not disable_hash
        else:
            raise UnsupportedKustomization(f"configMapGenerator behavior {behavior!r}")


# ---- transformers ---------------------------------------------------------------------------


def _apply_patches(kust: dict[str, Any], base_dir: Path, acc: _Accumulated) -> None:
    for entry in kust.get("patches", []):
        if set(entry) - {"path", "patch"}:
            raise UnsupportedKustomization(
                f"patches entry keys {sorted(entry)} (no target/options)"
            )
        if "path" in entry:
            documents = load_yaml_documents(base_dir / entry["path"])
        else:
            documents = [doc for doc in yaml.safe_load_all(entry["patch"]) if doc]
        for patch in documents:
            if not isinstance(patch, dict):
                raise UnsupportedKustomization("JSON 6902 patches are not supported")
            kind = patch.get("kind")
            meta = patch.get("metadata") or {}
            matches = [
                i
                for i, obj in enumerate(acc.resources)
                if obj.get("kind") == kind
                and obj["metadata"]["name"] == meta.get("name")
                and (
                    "namespace" not in meta
                    or obj["metadata"].get("namespace", "") == meta["namespace"]
                )
            ]
            if len(matches) != 1:
                raise UnsupportedKustomization(
                    f"patch {kind}/{meta.get('name')} matches {len(matches)} resources"
                )
            index = matches[0]
            marker = acc.resources[index].get(_GENERATED)
            merged = smp.merge(acc.resources[index], patch)
            if merged is smp.DELETE:
                del acc.resources[index]
            else:
                if marker is not None:
                    merged[_GENERATED] = marker
                acc.resources[index] = merged


def _apply_namespace(namespace: str, acc: _Accumulated) -> None:
    for obj in acc.resources:
        if obj.get("kind") == "Namespace":
            continue
        if obj.get("kind") in CLUSTER_SCOPED:
            continue
        obj["metadata"]["namespace"] = namespace


def _pod_template_metas(obj: dict[str, Any]) -> Iterable[dict[str, Any]]:
    kind = obj.get("kind")
    if kind in _TEMPLATE_KINDS:
        yield obj.setdefault("spec", {}).setdefault("template", {}).setdefault("metadata", {})
    elif kind == "CronJob":
        job = obj.setdefault("spec", {}).setdefault("jobTemplate", {})
        yield job.setdefault("metadata", {})
        yield job.setdefault("spec", {}).setdefault("template", {}).setdefault("metadata", {})


def _apply_labels(entries: list[dict[str, Any]], acc: _Accumulated) -> None:
    for entry in entries:
        if set(entry) - {"pairs", "includeSelectors", "includeTemplates"}:
            raise UnsupportedKustomization(f"labels entry keys {sorted(entry)}")
        if entry.get("includeSelectors"):
            raise UnsupportedKustomization(
                "labels.includeSelectors: true (selectors are immutable)"
            )
        pairs = {str(k): str(v) for k, v in (entry.get("pairs") or {}).items()}
        for obj in acc.resources:
            obj["metadata"].setdefault("labels", {}).update(pairs)
            if entry.get("includeTemplates"):
                for meta in _pod_template_metas(obj):
                    meta.setdefault("labels", {}).update(pairs)


def _apply_replicas(entries: list[dict[str, Any]], acc: _Accumulated) -> None:
    for entry in entries:
        matched = [
            obj
            for obj in acc.resources
            if obj.get("kind") in _REPLICA_KINDS and obj["metadata"]["name"] == entry["name"]
        ]
        if not matched:
            raise UnsupportedKustomization(f"replicas: no workload named {entry['name']}")
        for obj in matched:
            obj.setdefault("spec", {})["replicas"] = int(entry["count"])


def split_image(image: str) -> tuple[str, str, str]:
    """(name, tag, digest) the way Kustomize splits an image reference."""
    slash = image.find("/")
    offset = slash if slash > 0 else 0
    search = image[offset:]
    at, colon = search.find("@"), search.find(":")
    if colon < 0 and at < 0:
        return image, "", ""
    if at >= 0 and (colon < 0 or at < colon):
        return image[: offset + at], "", image[offset + at + 1 :]
    if at >= 0:
        return (
            image[: offset + colon],
            image[offset + colon + 1 : offset + at],
            image[offset + at + 1 :],
        )
    return image[: offset + colon], image[offset + colon + 1 :], ""


def _containers(node: Any) -> Iterable[dict[str, Any]]:
    """Every container-like map anywhere below ``node``."""
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


def _apply_images(entries: list[dict[str, Any]], acc: _Accumulated) -> None:
    for entry in entries:
        if set(entry) - {"name", "newName", "newTag", "digest"}:
            raise UnsupportedKustomization(f"images entry keys {sorted(entry)}")
        for obj in acc.resources:
            for container in _containers(obj):
                name, tag, digest = split_image(str(container.get("image", "")))
                if name != entry["name"]:
                    continue
                new = entry.get("newName", name)
                if entry.get("digest"):
                    new += "@" + entry["digest"]
                elif entry.get("newTag") is not None:
                    new += ":" + str(entry["newTag"])
                elif tag:
                    new += ":" + tag + ("@" + digest if digest else "")
                elif digest:
                    new += "@" + digest
                container["image"] = new


# ---- hashing and references (top kustomization only) -----------------------------------------


def _go_json(value: Any) -> str:
    """json.Marshal's bytes for maps of strings: sorted keys, HTML characters escaped."""
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    for char, escaped in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026")):
        text = text.replace(char, escaped)
    return text.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")


def configmap_hash(configmap: dict[str, Any]) -> str:
    """Kustomize's name suffix of a generated ConfigMap (api/hasher: sha256, 10 characters).

    Kustomize looks the name up with the path "metadata/name" as ONE field name, finds
    nothing and hashes an empty name: the suffix depends on the data only (checked against
    kubectl kustomize by tests/deploy).
    """
    encoded: dict[str, Any] = {"kind": "ConfigMap", "name": "", "data": configmap.get("data") or {}}
    if configmap.get("binaryData"):
        encoded["binaryData"] = configmap["binaryData"]
    digest = hashlib.sha256(_go_json(encoded).encode("utf-8")).hexdigest()[:10]
    return digest.translate(str.maketrans({"0": "g", "1": "h", "3": "k", "a": "m", "e": "t"}))


def _pod_specs(obj: dict[str, Any]) -> Iterable[dict[str, Any]]:
    spec = obj.get("spec") or {}
    if obj.get("kind") == "Pod":
        yield spec
    elif obj.get("kind") == "CronJob":
        yield (
            ((spec.get("jobTemplate") or {}).get("spec") or {}).get("template", {}).get("spec", {})
        )
    elif "template" in spec:
        yield (spec.get("template") or {}).get("spec") or {}


def _rename_configmap_refs(obj: dict[str, Any], old: str, new: str) -> None:
    for pod in _pod_specs(obj):
        for volume in pod.get("volumes", []):
            if (volume.get("configMap") or {}).get("name") == old:
                volume["configMap"]["name"] = new
            for source in (volume.get("projected") or {}).get("sources", []):
                if (source.get("configMap") or {}).get("name") == old:
                    source["configMap"]["name"] = new
        for container in [*pod.get("containers", []), *pod.get("initContainers", [])]:
            for env_from in container.get("envFrom", []):
                if (env_from.get("configMapRef") or {}).get("name") == old:
                    env_from["configMapRef"]["name"] = new
            for env in container.get("env", []):
                ref = (env.get("valueFrom") or {}).get("configMapKeyRef")
                if ref and ref.get("name") == old:
                    ref["name"] = new


def _finish(acc: _Accumulated) -> list[dict[str, Any]]:
    for obj in acc.resources:
        generated = obj.pop(_GENERATED, None)
        if generated is None or not generated.hash_suffix:
            continue
        old = obj["metadata"]["name"]
        new = f"{old}-{configmap_hash(obj)}"
        obj["metadata"]["name"] = new
        namespace = obj["metadata"].get("namespace", "")
        for other in acc.resources:
            if other.get("metadata", {}).get("namespace", "") == namespace:
                _rename_configmap_refs(other, old, new)
    return sort_legacy(acc.resources)


def sort_legacy(objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """kubectl kustomize's default order: by kind group, then by id."""

    def key(obj: dict[str, Any]) -> tuple[int, tuple[str, str, str, str]]:
        kind = obj.get("kind", "")
        if kind in _LEGACY_FIRST:
            rank = _LEGACY_FIRST.index(kind)
        elif kind in _LEGACY_LAST:
            rank = 1000 + _LEGACY_LAST.index(kind)
        else:
            rank = len(_LEGACY_FIRST)
        return rank, resource_id(obj)

    return sorted(objects, key=key)


# ---- the renderer ---------------------------------------------------------------------------


def _accumulate(directory: Path, stack: tuple[Path, ...] = ()) -> _Accumulated:
    directory = directory.resolve()
    if directory in stack:
        raise UnsupportedKustomization(f"cycle through {directory}")
    path = kustomization_file(directory)
    kust = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    unknown = set(kust) - SUPPORTED_FIELDS
    if unknown:
        raise UnsupportedKustomization(f"{path}: unsupported fields {sorted(unknown)}")
    acc = _Accumulated()
    for entry in kust.get("resources", []):
        target = directory / entry
        if target.is_dir():
            acc.resources.extend(_accumulate(target, (*stack, directory)).resources)
        elif target.is_file():
            acc.resources.extend(copy.deepcopy(load_yaml_documents(target)))
        else:
            raise UnsupportedKustomization(f"{path}: resource {entry} not found (no remote bases)")
    _generate_configmaps(kust, directory, acc)
    _apply_patches(kust, directory, acc)
    if kust.get("namespace"):
        _apply_namespace(kust["namespace"], acc)
    _apply_labels(kust.get("labels", []), acc)
    _apply_replicas(kust.get("replicas", []), acc)
    _apply_images(kust.get("images", []), acc)
    ids = [resource_id(obj) for obj in acc.resources]
    duplicates = {i for i in ids if ids.count(i) > 1}
    if duplicates:
        raise UnsupportedKustomization(f"{path}: duplicate resources {sorted(duplicates)}")
    return acc


def render_python(directory: Path) -> list[dict[str, Any]]:
    """Render with the Python renderer (no kubectl needed)."""
    return _finish(_accumulate(Path(directory)))


def kubectl_path() -> str | None:
    return shutil.which("kubectl")


def render_kubectl(directory: Path) -> list[dict[str, Any]]:
    """Render with ``kubectl kustomize`` (Kustomize built into kubectl)."""
    kubectl = kubectl_path()
    if kubectl is None:
        raise FileNotFoundError("kubectl is not on PATH")
    result = subprocess.run(
        [kubectl, "kustomize", str(directory)], capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        raise RuntimeError(f"kubectl kustomize {directory} failed:\n{result.stderr}")
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def render(directory: Path, renderer: str = "auto") -> tuple[str, list[dict[str, Any]]]:
    """Render with ``renderer`` ('kubectl', 'python' or 'auto'); return (renderer used, objects)."""
    if renderer == "kubectl" or (renderer == "auto" and kubectl_path()):
        return "kubectl", render_kubectl(directory)
    if renderer in ("python", "auto"):
        return "python", render_python(directory)
    raise ValueError(f"unknown renderer {renderer!r}")


def dump(objects: list[dict[str, Any]]) -> str:
    return "---\n".join(yaml.safe_dump(obj, sort_keys=False) for obj in objects)


_OVERLAY_RE = re.compile(r"^[a-z0-9-]+$")


def overlays(k8s_dir: Path) -> list[Path]:
    """Every overlay directory under ``k8s/overlays``."""
    root = k8s_dir / "overlays"
    return sorted(
        p
        for p in root.iterdir()
        if p.is_dir()
        and _OVERLAY_RE.match(p.name)
        and any((p / name).is_file() for name in KUSTOMIZATION_FILES)
    )


def differences(expected: list[dict[str, Any]], actual: list[dict[str, Any]]) -> list[str]:
    """Objects that differ between two renderings (by apiVersion, kind, namespace, name)."""
    left = {resource_id(o): o for o in expected}
    right = {resource_id(o): o for o in actual}
    problems = [f"only in the first rendering: {i}" for i in sorted(set(left) - set(right))]
    problems += [f"only in the second rendering: {i}" for i in sorted(set(right) - set(left))]
    problems += [
        f"renderings differ for {i}" for i in sorted(set(left) & set(right)) if left[i] != right[i]
    ]
    return problems
