"""Strategic merge patch: the subset of Kubernetes' semantics that Kustomize applies to the
built-in kinds this repository patches (Deployment, Job, Service, Ingress, ...).

* maps merge recursively; a ``null`` value deletes the key;
* ``$patch: replace`` on a map replaces it, ``$patch: delete`` on a list element removes the
  element with the same merge key, ``$patch: delete`` on a whole patch deletes the object;
* lists merge by key where the Kubernetes API declares ``patchStrategy: merge``
  (``MERGE_KEYS``): as Kustomize (kyaml) orders them, the patch's elements come first in the
  patch's order (merged with the base element of the same key, if any), then the base's other
  elements in their order; every other list is replaced.

Anything else (``$setElementOrder``, ``$retainKeys``, ``$deleteFromPrimitiveList``, JSON 6902)
raises ``UnsupportedPatch``: keep the repository's patches inside this subset.
"""

from __future__ import annotations

import copy
from typing import Any

DELETE = object()  # returned by merge() when the patch deletes the whole object

# Lists that the Kubernetes API merges by key (patchStrategy=merge, patchMergeKey), by the
# field's name; "ports" depends on where it is (see _merge_key).
MERGE_KEYS = {
    "containers": "name",
    "initContainers": "name",
    "ephemeralContainers": "name",
    "volumes": "name",
    "env": "name",
    "imagePullSecrets": "name",
    "volumeMounts": "mountPath",
    "volumeDevices": "devicePath",
    "hostAliases": "ip",
    "ownerReferences": "uid",
}
_CONTAINER_LISTS = {"containers", "initContainers", "ephemeralContainers"}


class UnsupportedPatch(ValueError):
    """The patch uses strategic-merge features this renderer does not implement."""


def _merge_key(kind: str, path: tuple[str, ...]) -> str | None:
    field = path[-1]
    if field == "ports":
        if len(path) >= 2 and path[-2] in _CONTAINER_LISTS:
            return "containerPort"  # a container's ports (list elements add no path step)
        if kind == "Service" and path == ("spec", "ports"):
            return "port"
        return None  # NetworkPolicy, Ingress, ...: replaced
    return MERGE_KEYS.get(field)


def _strip(value: Any) -> Any:
    """A new value from a patch: directives removed, nulls inside new maps dropped."""
    if isinstance(value, dict):
        directive = value.get("$patch")
        if directive not in (None, "replace"):
            raise UnsupportedPatch(f"$patch: {directive} on a value that is not in the base")
        return {k: _strip(v) for k, v in value.items() if k != "$patch" and v is not None}
    if isinstance(value, list):
        return [_strip(v) for v in value]
    return copy.deepcopy(value)


def _merge_map(kind: str, base: dict, patch: dict, path: tuple[str, ...]) -> Any:
    directive = patch.get("$patch")
    if directive == "delete":
        return DELETE
    if directive == "replace":
        return _strip(patch)
    if directive is not None:
        raise UnsupportedPatch(f"$patch: {directive} at {'.'.join(path) or '<root>'}")
    result = copy.deepcopy(base)
    for key, value in patch.items():
        if key.startswith("$"):
            raise UnsupportedPatch(f"directive {key} at {'.'.join(path) or '<root>'}")
        here = (*path, key)
        if value is None:
            result.pop(key, None)
        elif isinstance(value, dict) and isinstance(result.get(key), dict):
            merged = _merge_map(kind, result[key], value, here)
            if merged is DELETE:
                result.pop(key, None)
            else:
                result[key] = merged
        elif isinstance(value, list) and isinstance(result.get(key), list):
            result[key] = _merge_list(kind, result[key], value, here)
        else:
            result[key] = _strip(value)
    return result


def _merge_list(kind: str, base: list, patch: list, path: tuple[str, ...]) -> list:
    key = _merge_key(kind, path)
    if key is None:
        return _strip(patch)
    for item in patch:
        if not isinstance(item, dict) or key not in item:
            raise UnsupportedPatch(f"{'.'.join(path)}: element without merge key {key!r}")
    result = []
    for item in patch:
        old = next((element for element in base if element.get(key) == item[key]), None)
        if item.get("$patch") == "delete":
            continue
        if old is None:
            result.append(_strip(item))
        else:
            merged = _merge_map(kind, old, item, path)
            if merged is not DELETE:
                result.append(merged)
    patched = {item[key] for item in patch}
    result += [copy.deepcopy(element) for element in base if element.get(key) not in patched]
    return result


def merge(base: dict, patch: dict) -> Any:
    """Return ``base`` with the strategic merge ``patch`` applied (or ``DELETE``)."""
    return _merge_map(str(base.get("kind", "")), base, patch, ())
