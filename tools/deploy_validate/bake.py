"""docker-bake.hcl, read statically: the list of images, checked against what uses them.

``docker buildx bake --print`` would resolve the file, but buildx is not installed on the
development machines (no Docker engine or plugins there), so the file is parsed with
python-hcl2, a real HCL2 parser. Bake's own semantics are only needed for the part of the
language the file is allowed to use: string literals with ``${VARIABLE}`` references to
declared variables, and ``inherits`` (a target takes its parents' attributes, maps merged,
its own winning). Anything else (functions, conditionals, bare expressions, ``matrix``) is
refused, so what is checked here is what bake builds.

The checks:

* every target's Dockerfile and stage exist, every build argument it sets is declared by that
  stage (or a stage it needs), and every argument without a default is set;
* the service images run a console script of a package they install, and expose exactly the
  port their health check probes and the port Prometheus scrapes;
* the ``default`` group is every image, and those are exactly docker-compose.yml's services
  that build one, each with the same Dockerfile, stage, build arguments, named contexts and
  image name;
* the ``k8s`` group is exactly the images the Kubernetes manifests run.
"""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path
from typing import Any

import yaml

from deploy_validate import REPO_ROOT, compose, dockerfile

BAKE_FILE = REPO_ROOT / "docker-bake.hcl"
K8S_DIR = REPO_ROOT / "k8s"
IMAGE_PREFIX = "objectvision/"  # the repository part every image of ours has, before REGISTRY
HEALTHCHECK_SCRIPT = "/opt/objectvision/healthcheck.py"
_REFERENCE = re.compile(r"\$\{([^}]*)\}")
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_TEMPLATE_KEYS = {"inherits"}
_MAP_ATTRIBUTES = {"args", "contexts", "labels", "annotations"}


class BakeFileError(ValueError):
    """The bake file uses HCL that this static reading does not resolve."""


def _literal(value: Any, where: str) -> Any:
    """A parsed HCL value as plain Python: quoted strings unquoted, expressions refused."""
    if isinstance(value, dict):
        return {str(k).strip('"'): _literal(v, where) for k, v in value.items()}
    if isinstance(value, list):
        return [_literal(item, where) for item in value]
    if isinstance(value, str):
        if len(value) < 2 or not (value.startswith('"') and value.endswith('"')):
            raise BakeFileError(f"{where}: {value!r} is an expression; use a quoted string")
        if "%{" in value:
            raise BakeFileError(f"{where}: template directives (%{{...}}) are not supported")
        return json.loads(value)
    return value


def _blocks(document: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    """Labelled blocks of one kind (``target "x" {...}``) by label."""
    found: dict[str, dict[str, Any]] = {}
    for block in document.get(kind, []):
        for label, body in block.items():
            name = label.strip('"')
            if name in found:
                raise BakeFileError(f'{kind} "{name}" is defined twice')
            found[name] = body
    return found


def load(path: Path = BAKE_FILE) -> dict[str, Any]:
    """The bake file as python-hcl2 parses it. String literals keep their quotes, which is
    what tells them from expressions (``_literal``)."""
    import hcl2
    from hcl2.utils import SerializationOptions
    from lark.exceptions import LarkError

    options = SerializationOptions(with_comments=False, explicit_blocks=False)
    try:
        with path.open(encoding="utf-8") as handle:
            return hcl2.load(handle, serialization_options=options)
    except LarkError as error:
        raise BakeFileError(f"{path.name} is not valid HCL: {error}") from error


def variables(document: dict[str, Any], env: dict[str, str]) -> dict[str, str]:
    """Each variable's value: from ``env`` (bake reads the environment) else its default."""
    values = {}
    for name, body in _blocks(document, "variable").items():
        default = _literal(body.get("default", '""'), f'variable "{name}"')
        values[name] = env.get(name, str(default))
    return values


def _interpolate(value: Any, values: dict[str, str], where: str) -> Any:
    if isinstance(value, dict):
        return {k: _interpolate(v, values, where) for k, v in value.items()}
    if isinstance(value, list):
        return [_interpolate(item, values, where) for item in value]
    if not isinstance(value, str):
        return value

    def replace(match: re.Match[str]) -> str:
        name = match.group(1).strip()
        if not _IDENTIFIER.match(name) or name not in values:
            raise BakeFileError(f"{where}: ${{{name}}} is not a declared variable")
        return values[name]

    return _REFERENCE.sub(replace, value)


def targets(document: dict[str, Any], env: dict[str, str]) -> dict[str, dict[str, Any]]:
    """Every target with ``inherits`` resolved and variables substituted."""
    raw = {
        name: _literal(body, f'target "{name}"')
        for name, body in _blocks(document, "target").items()
    }
    if any("matrix" in body for body in raw.values()):
        raise BakeFileError("matrix targets are not supported: list each image")
    values = variables(document, env)
    resolved: dict[str, dict[str, Any]] = {}

    def resolve(name: str, stack: tuple[str, ...]) -> dict[str, Any]:
        if name in stack:
            raise BakeFileError(f"inherits cycle through {name}")
        if name not in raw:
            raise BakeFileError(f'target "{stack[-1]}" inherits unknown target "{name}"')
        merged: dict[str, Any] = {}
        for parent in raw[name].get("inherits", []):
            for key, value in resolve(parent, (*stack, name)).items():
                merged[key] = {**merged.get(key, {}), **value} if key in _MAP_ATTRIBUTES else value
        for key, value in raw[name].items():
            if key in _TEMPLATE_KEYS:
                continue
            merged[key] = {**merged.get(key, {}), **value} if key in _MAP_ATTRIBUTES else value
        return merged

    for name in raw:
        resolved[name] = _interpolate(resolve(name, ()), values, f'target "{name}"')
    return resolved


def groups(document: dict[str, Any]) -> dict[str, list[str]]:
    return {
        name: list(_literal(body.get("targets", []), f'group "{name}"'))
        for name, body in _blocks(document, "group").items()
    }


# ---- what the targets build ------------------------------------------------------------------


def _workspace_scripts(root: Path) -> dict[str, set[str]]:
    """{uv package name: its console scripts} for every workspace member."""
    workspace = tomllib.loads((root / "pyproject.toml").read_text(encoding="utf-8"))
    members = workspace["tool"]["uv"]["workspace"]["members"]
    scripts = {}
    for member in members:
        project = tomllib.loads((root / member / "pyproject.toml").read_text(encoding="utf-8"))
        scripts[project["project"]["name"]] = set(project["project"].get("scripts", {}))
    return scripts


def _health_port(arguments: str) -> str | None:
    words = arguments.split()
    return words[words.index("--default-port") + 1] if "--default-port" in words[:-1] else None


def target_problems(name: str, target: dict[str, Any], root: Path = REPO_ROOT) -> list[str]:
    """One target against the Dockerfile it builds."""
    label = f'target "{name}"'
    relative = target.get("dockerfile", "Dockerfile")
    path = root / target.get("context", ".") / relative
    if not path.is_file():
        return [f"{label}: Dockerfile {relative} missing"]
    instructions = dockerfile.parse(path.read_text(encoding="utf-8"))
    all_stages = dockerfile.stages(instructions)
    by_name = {s.name: s for s in all_stages if s.name}
    stage_name = target.get("target")
    if stage_name is None:
        stage = all_stages[-1]
    elif stage_name in by_name:
        stage = by_name[stage_name]
    else:
        return [f"{label}: {relative} has no stage {stage_name!r}"]
    # ARGs before the first FROM (PYTHON_IMAGE) choose base images; they may be set as well.
    declared = {**dockerfile.global_args(instructions), **dockerfile.stage_args(stage, all_stages)}
    args: dict[str, str] = target.get("args", {})
    problems = [
        f"{label}: build argument {arg} is not declared by {relative} stage {stage_name}"
        for arg in sorted(set(args) - set(declared))
    ]
    problems += [
        f"{label}: build argument {arg} has no default and is not set"
        for arg, default in sorted(declared.items())
        if default is None and not args.get(arg)
    ]
    scripts = _workspace_scripts(root)
    packages = args.get("PACKAGES", "").split()
    problems += [
        f"{label}: PACKAGES names {package}, which is no workspace package"
        for package in packages
        if package not in scripts
    ]
    if "COMMAND" in args and not any(args["COMMAND"] in scripts.get(p, ()) for p in packages):
        problems.append(f"{label}: COMMAND {args['COMMAND']} is no console script of {packages}")
    if "PORTS" in args:
        expected = {_health_port(args.get("HEALTHCHECK_ARGS", ""))}
        if name in compose.METRICS_TARGETS:
            expected.add(str(compose.METRICS_TARGETS[name]))
        if set(args["PORTS"].split()) != expected:
            problems.append(
                f"{label}: PORTS {args['PORTS']!r}: expose the health-checked and the "
                f"scraped port, {sorted(p or '?' for p in expected)}"
            )
    return problems


# ---- against docker-compose.yml and the Kubernetes manifests -----------------------------------


def _compose_build(service: dict[str, Any]) -> dict[str, Any]:
    """A compose service's build, in bake's attribute names."""
    build = service["build"]
    if isinstance(build, str):
        build = {"context": build}
    args = build.get("args") or {}
    if isinstance(args, list):
        args = dict(item.split("=", 1) for item in args)
    return {
        "context": build.get("context", "."),
        "dockerfile": build.get("dockerfile", "Dockerfile"),
        "target": build.get("target"),
        "args": {k: str(v) for k, v in args.items()},
        "contexts": dict(build.get("additional_contexts") or {}),
        "tags": [service["image"]] if service.get("image") else [],
    }


def compose_problems(
    bake_targets: dict[str, dict[str, Any]], default: list[str], document: dict[str, Any]
) -> list[str]:
    """The default group against the compose services that build an image."""
    builds = {n: _compose_build(s) for n, s in document["services"].items() if "build" in s}
    problems = [
        f"compose service {n} builds an image that docker-bake.hcl's default group lacks"
        for n in sorted(set(builds) - set(default))
    ]
    problems += [
        f"docker-bake.hcl target {n} is no compose service with a build"
        for n in sorted(set(default) - set(builds))
    ]
    for name in sorted(set(builds) & set(default)):
        bake_target = bake_targets.get(name, {})
        for key, value in builds[name].items():
            ours = bake_target.get(key, {} if key in _MAP_ATTRIBUTES else None)
            if key == "dockerfile":
                ours = ours or "Dockerfile"
            if key == "context":
                ours = ours or "."
            if ours != value:
                problems.append(f"{name}: compose build {key} {value!r}, bake {ours!r}")
        health = (document["services"][name].get("healthcheck") or {}).get("test") or []
        arguments = bake_target.get("args", {}).get("HEALTHCHECK_ARGS")
        if arguments is not None and health[1:] != [
            "python",
            HEALTHCHECK_SCRIPT,
            *arguments.split(),
        ]:
            problems.append(
                f"{name}: compose healthcheck {health} is not the image's HEALTHCHECK_ARGS"
            )
    return problems


def _manifest_images(node: Any) -> set[str]:
    """Every container ``image`` in a manifest (or patch), any depth."""
    if isinstance(node, dict):
        found = set()
        for key, value in node.items():
            if key in ("containers", "initContainers") and isinstance(value, list):
                found |= {str(c["image"]) for c in value if isinstance(c, dict) and "image" in c}
            else:
                found |= _manifest_images(value)
        return found
    if isinstance(node, list):
        return set().union(*(_manifest_images(item) for item in node)) if node else set()
    return set()


def kubernetes_images(k8s_dir: Path = K8S_DIR) -> set[str]:
    """Our image names (``objectvision/<image>``, no tag) that any manifest under k8s/ runs."""
    images: set[str] = set()
    for path in sorted(k8s_dir.rglob("*.yaml")):
        for document in yaml.safe_load_all(path.read_text(encoding="utf-8")):
            images |= _manifest_images(document)
    return {i.split("@")[0].rsplit(":", 1)[0] for i in images if i.startswith(IMAGE_PREFIX)}


def _repository(tag: str, registry: str) -> str:
    return tag.removeprefix(registry).split("@")[0].rsplit(":", 1)[0]


def validate(path: Path = BAKE_FILE) -> list[str]:
    """Every problem of the bake file (see the module docstring)."""
    if not path.is_file():
        return [f"{path.name} missing"]
    env = compose.read_env_file(compose.ENV_EXAMPLE)
    try:
        document = load(path)
        bake_targets = targets(document, env)
        bake_groups = groups(document)
        registry = variables(document, env).get("REGISTRY", "")
    except BakeFileError as error:
        return [str(error)]
    default = bake_groups.get("default", [])
    images = sorted(n for n in bake_targets if not n.startswith("_"))
    problems = [f'group "default" lacks target {n}' for n in images if n not in default]
    for group, members in bake_groups.items():
        problems += [f'group "{group}": no target {n}' for n in members if n not in bake_targets]
    for name in images:
        problems += target_problems(name, bake_targets[name])
    problems += compose_problems(bake_targets, default, compose.load())
    k8s_group = {
        _repository(tag, registry)
        for name in bake_groups.get("k8s", [])
        for tag in bake_targets.get(name, {}).get("tags", [])
    }
    wanted = kubernetes_images()
    problems += [
        f'group "k8s" lacks the image {i}, which k8s/ runs' for i in sorted(wanted - k8s_group)
    ]
    problems += [
        f'group "k8s" builds {i}, which no manifest runs' for i in sorted(k8s_group - wanted)
    ]
    return problems
