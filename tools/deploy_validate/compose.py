"""docker-compose.yml: interpolation, the compose-spec JSON schema, and the project's rules.

The schema is the compose-spec one vendored in the ``check-jsonschema`` wheel
(``check_jsonschema/builtin_schemas/vendor/compose-spec.json``, taken from the compose-spec
repository's ``schema/compose-spec.json``): no network, no Docker. What Docker Compose itself
checks beyond the schema (profiles, dependencies, aliases) is re-checked here in
``effective_services`` and ``check_rules``.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from deploy_validate import REPO_ROOT

COMPOSE_FILE = REPO_ROOT / "docker-compose.yml"
ENV_EXAMPLE = REPO_ROOT / "deploy" / "compose.env.example"
PROMETHEUS_CONFIG = REPO_ROOT / "deploy" / "prometheus.yml"
TRITON_PROFILES = ("gpu", "cpu")
# detection-service's realtime role (ADR 0019): only with this profile, next to a Triton one.
REALTIME_SERVICE = "detection-realtime"
REALTIME_PROFILE = "realtime"
# Services that must exist, and what Prometheus must scrape on which port.
APP_SERVICES = ("auth-service", "detection-service", "notification-service", "gateway")
METRICS_TARGETS = {
    "gateway": 9100,
    "auth-service": 9101,
    "detection-service": 9102,
    "detection-realtime": 9102,
    "notification-service": 9103,
    "triton": 8002,
}
_SECRET_WORDS = ("PASSWORD", "SECRET", "TOKEN", "PRIVATE_KEY", "API_KEY")
_BARE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_BRACED = re.compile(r"^(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?+])(?P<arg>.*))?$", re.S)


class InterpolationError(ValueError):
    """A ${VAR:?message} whose variable is unset, or a malformed reference."""


@dataclass
class Interpolation:
    env: dict[str, str]
    used: set[str] = field(default_factory=set)
    missing: set[str] = field(default_factory=set)

    def string(self, text: str) -> str:
        """Compose's interpolation: $$, $NAME, ${NAME}, ${NAME:-default} (nestable), ...?, ...+."""
        out, i = [], 0
        while i < len(text):
            if text[i] != "$" or i + 1 == len(text):
                out.append(text[i])
                i += 1
            elif text[i + 1] == "$":
                out.append("$")
                i += 2
            elif text[i + 1] == "{":
                depth, j = 1, i + 2
                while j < len(text) and depth:
                    depth += {"{": 1, "}": -1}.get(text[j], 0)
                    j += 1
                if depth:
                    raise InterpolationError(f"unclosed ${{ in {text!r}")
                braced = _BRACED.match(text[i + 2 : j - 1])
                if not braced:
                    raise InterpolationError(f"malformed variable reference in {text!r}")
                out.append(self._lookup(braced["name"], braced["op"], braced["arg"] or ""))
                i = j
            else:
                bare = _BARE.match(text, i + 1)
                if not bare:
                    out.append("$")
                    i += 1
                    continue
                out.append(self._lookup(bare.group(0), None, ""))
                i = bare.end()
        return "".join(out)

    def _lookup(self, name: str, op: str | None, arg: str) -> str:
        self.used.add(name)
        value = self.env.get(name)
        unset_or_empty = not value if op and op.startswith(":") else value is None
        if op in (":-", "-"):
            return self.string(arg) if unset_or_empty else str(value)
        if op in (":?", "?"):
            if unset_or_empty:
                raise InterpolationError(f"${{{name}}} is required: {arg}")
            return str(value)
        if op in (":+", "+"):
            return "" if unset_or_empty else self.string(arg)
        if value is None:
            self.missing.add(name)
            return ""
        return value

    def walk(self, node: Any) -> Any:
        if isinstance(node, str):
            return self.string(node)
        if isinstance(node, list):
            return [self.walk(item) for item in node]
        if isinstance(node, dict):
            return {key: self.walk(value) for key, value in node.items()}
        return node


def read_env_file(path: Path) -> dict[str, str]:
    """KEY=VALUE lines of a .env file (comments and blank lines skipped)."""
    values: dict[str, str] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        if not sep:
            raise ValueError(f"{path}: {line!r} is not KEY=VALUE")
        values[key.strip()] = value.strip().strip("\"'")
    return values


def load_raw(path: Path = COMPOSE_FILE) -> dict[str, Any]:
    """The file as YAML (anchors and merge keys resolved), before interpolation."""
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def load(path: Path = COMPOSE_FILE, env: dict[str, str] | None = None) -> dict[str, Any]:
    """The file interpolated with ``env`` (default: deploy/compose.env.example)."""
    env = read_env_file(ENV_EXAMPLE) if env is None else env
    return Interpolation(env).walk(load_raw(path))


def compose_schema() -> dict[str, Any]:
    """compose-spec.json as vendored by check-jsonschema."""
    vendor = resources.files("check_jsonschema.builtin_schemas.vendor")
    return json.loads(vendor.joinpath("compose-spec.json").read_text(encoding="utf-8"))


def schema_errors(document: dict[str, Any]) -> list[str]:
    """Every compose-spec schema violation of an (interpolated) compose document."""
    import jsonschema  # a dev dependency, like check-jsonschema that ships the schema

    validator = jsonschema.Draft202012Validator(compose_schema())
    errors = sorted(validator.iter_errors(document), key=lambda e: list(e.absolute_path))
    return [f"{'.'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}" for e in errors]


def _profiles(service: dict[str, Any]) -> list[str]:
    return list(service.get("profiles") or [])


def effective_services(document: dict[str, Any], profiles: set[str]) -> dict[str, Any]:
    """The services `docker compose up` starts with these profiles active."""
    return {
        name: service
        for name, service in document["services"].items()
        if not _profiles(service) or set(_profiles(service)) & profiles
    }


def _depends_on(service: dict[str, Any]) -> dict[str, dict[str, Any]]:
    depends = service.get("depends_on") or {}
    if isinstance(depends, list):
        return {name: {"condition": "service_started"} for name in depends}
    return depends


# Long-running services whose image has no command to probe them with: their healthcheck is
# disabled in so many words, and no service may wait for them to be healthy.
UNPROBED = {"perses": "distroless image: no shell, curl or wget"}


def is_one_shot(service: dict[str, Any]) -> bool:
    return str(service.get("restart", "no")) == "no"


def _healthcheck_ok(service: dict[str, Any]) -> bool:
    check = service.get("healthcheck") or {}
    return bool(check.get("test")) and not check.get("disable", False)


def _network_names(name: str, service: dict[str, Any]) -> set[str]:
    names = {name}
    networks = service.get("networks") or {}
    if isinstance(networks, dict):
        for config in networks.values():
            names.update((config or {}).get("aliases", []))
    return names


def _gpu_reservation(service: dict[str, Any]) -> bool:
    devices = (
        ((service.get("deploy") or {}).get("resources") or {}).get("reservations") or {}
    ).get("devices") or []
    return any(
        d.get("driver") == "nvidia" and int(d.get("count", 0)) == 1 and "gpu" in d["capabilities"]
        for d in devices
    )


def check_rules(document: dict[str, Any], raw: dict[str, Any]) -> list[str]:
    """The project's rules for the compose file; ``raw`` is the file before interpolation."""
    problems: list[str] = []
    services: dict[str, Any] = document["services"]

    for name, service in services.items():
        image = str(service.get("image", ""))
        if not image or image.endswith(":latest") or ":" not in image.rsplit("/", 1)[-1]:
            problems.append(f"{name}: image {image!r} must carry an explicit tag")
        if is_one_shot(service):
            if service.get("healthcheck") and _healthcheck_ok(service):
                problems.append(f"{name}: a one-shot needs no healthcheck")
        elif name in UNPROBED:
            if service.get("healthcheck") != {"disable": True}:
                problems.append(f"{name}: cannot be probed ({UNPROBED[name]}): disable its check")
        elif not _healthcheck_ok(service):
            problems.append(f"{name}: long-running service without a healthcheck")
        for dep, spec in _depends_on(service).items():
            condition = spec.get("condition")
            target = services.get(dep)
            if target is None:
                problems.append(f"{name}: depends on unknown service {dep}")
                continue
            if condition == "service_healthy" and not _healthcheck_ok(target):
                problems.append(f"{name}: waits for {dep} to be healthy, which has no healthcheck")
            elif condition == "service_completed_successfully" and not is_one_shot(target):
                problems.append(f"{name}: waits for {dep} to complete, which is not a one-shot")
            elif condition not in ("service_healthy", "service_completed_successfully"):
                problems.append(f"{name}: depends_on {dep} without a health/completion condition")
        for key, value in (service.get("environment") or {}).items():
            raw_value = ((raw["services"][name].get("environment") or {}).get(key)) or ""
            if any(word in key.upper() for word in _SECRET_WORDS) and "${" not in str(raw_value):
                problems.append(f"{name}: {key} is written in the file, not taken from .env")
            if value is None:
                problems.append(f"{name}: {key} has no value")

    migrate = services.get("migrate")
    if migrate is None or not is_one_shot(migrate):
        problems.append("no one-shot `migrate` service")
    for name in ("auth-service", "detection-service", "notification-service"):
        spec = _depends_on(services.get(name, {})).get("migrate", {})
        if spec.get("condition") != "service_completed_successfully":
            problems.append(f"{name}: must wait for migrate (service_completed_successfully)")
    for name in APP_SERVICES:
        if name not in services:
            problems.append(f"missing service {name}")
        elif ".env" not in (services[name].get("env_file") or []):
            problems.append(f"{name}: env_file .env missing")

    triton = services.get("triton", {})
    if _profiles(triton) != ["gpu"] or not _gpu_reservation(triton):
        problems.append("triton: must be in profile gpu with an nvidia GPU reservation (count 1)")
    cpu = services.get("triton-cpu", {})
    if _profiles(cpu) != ["cpu"] or "triton" not in _network_names("triton-cpu", cpu):
        problems.append("triton-cpu: must be in profile cpu and answer as alias `triton`")
    gpu_users = {n for n, s in services.items() if _gpu_reservation(s)}
    if gpu_users - {"triton", "engine-build", "dali-pipeline"}:
        problems.append(f"GPU reserved outside Triton: {sorted(gpu_users)}")

    for profile in TRITON_PROFILES:
        active = effective_services(document, {profile})
        names = set().union(*(_network_names(n, s) for n, s in active.items()))
        if "triton" not in names:
            problems.append(f"profile {profile}: nothing answers as `triton`")
        if REALTIME_SERVICE in active:
            problems.append(f"profile {profile}: {REALTIME_SERVICE} must need profile realtime")
        for profiles in ({profile}, {profile, REALTIME_PROFILE}):
            active = effective_services(document, profiles)
            label = ",".join(sorted(profiles))
            for name, service in active.items():
                for dep, spec in _depends_on(service).items():
                    if dep not in active and spec.get("required", True):
                        problems.append(f"profile {label}: {name} requires disabled service {dep}")
    problems.extend(realtime_problems(services))
    env_example = read_env_file(ENV_EXAMPLE)
    if env_example.get("COMPOSE_PROFILES") not in TRITON_PROFILES:
        problems.append("compose.env.example: COMPOSE_PROFILES must be gpu or cpu")

    interpolation = Interpolation(dict(env_example))
    interpolation.walk(raw)
    undocumented = sorted(interpolation.used - set(env_example))
    if undocumented:
        problems.append(f"variables used but not in compose.env.example: {undocumented}")
    problems.extend(metrics_port_problems(services))
    problems.extend(prometheus_problems(document))
    return problems


def realtime_problems(services: dict[str, Any]) -> list[str]:
    """detection-realtime: the detection image running the realtime command, in profile
    realtime only, with none of PostgreSQL, Redis, migrate or a volume (ADR 0019)."""
    service = services.get(REALTIME_SERVICE)
    if service is None:
        return [f"missing service {REALTIME_SERVICE}"]
    problems = []
    name = REALTIME_SERVICE
    if _profiles(service) != [REALTIME_PROFILE]:
        problems.append(f"{name}: must be in profile {REALTIME_PROFILE} only")
    if service.get("image") != services.get("detection-service", {}).get("image"):
        problems.append(f"{name}: must run detection-service's image")
    if "build" in service:
        problems.append(f"{name}: builds nothing (detection-service builds its image)")
    environment = service.get("environment") or {}
    if environment.get("OBJECTVISION_COMMAND") != "objectvision-detection-realtime":
        problems.append(f"{name}: OBJECTVISION_COMMAND must be objectvision-detection-realtime")
    for key in ("DATABASE_URL", "REDIS_URL", "STORAGE_DIR"):
        if key in environment:
            problems.append(f"{name}: {key} set, but the realtime role has no state")
    stateful = {"migrate", "postgres", "redis"} & set(_depends_on(service))
    if stateful:
        problems.append(f"{name}: depends on {sorted(stateful)}, but the role has no state")
    if service.get("volumes"):
        problems.append(f"{name}: mounts a volume, but the role writes only /tmp")
    if ".env" not in (service.get("env_file") or []):
        problems.append(f"{name}: env_file .env missing")
    if not service.get("read_only"):
        problems.append(f"{name}: root filesystem must be read-only like the other services")
    return problems


def _container_port(entry: Any) -> int | None:
    """The container side of a `ports:` entry (short syntax `[ip:][host:]container[/proto]`
    or long syntax `{target: ...}`); None for a range."""
    if isinstance(entry, dict):
        target = entry.get("target")
        return int(target) if str(target).isdigit() else None
    container = str(entry).rsplit(":", 1)[-1].split("/", 1)[0]
    return int(container) if container.isdigit() else None


def metrics_port_problems(services: dict[str, Any]) -> list[str]:
    """Each process serves metrics where Prometheus scrapes it (its `*_METRICS_PORT`), and no
    metrics port is published to the host: only Prometheus, on the compose network, reads it."""
    problems = []
    for name, port in METRICS_TARGETS.items():
        service = services.get(name)
        if service is None:
            continue
        for key, value in (service.get("environment") or {}).items():
            if key.endswith("_METRICS_PORT") and str(value) != str(port):
                problems.append(f"{name}: {key}={value}, but Prometheus scrapes {name}:{port}")
        if port in {_container_port(entry) for entry in service.get("ports") or []}:
            problems.append(f"{name}: metrics port {port} must not be published to the host")
    return problems


def prometheus_problems(document: dict[str, Any]) -> list[str]:
    """deploy/prometheus.yml scrapes every service's metrics port by a resolvable name. A listed
    (static) target must run in every Triton profile: one whose service is off by default would
    be down, and fire ObjectVisionTargetDown, on a plain `docker compose up`. A service of an
    optional profile is found by DNS (dns_sd_configs, type A), which has no target while the
    name does not resolve."""
    config = yaml.safe_load(PROMETHEUS_CONFIG.read_text(encoding="utf-8"))
    names = set().union(*(_network_names(n, s) for n, s in document["services"].items()))
    jobs = config.get("scrape_configs", [])
    static = {
        target
        for job in jobs
        for group in job.get("static_configs", [])
        for target in group.get("targets", [])
    }
    discovered = {
        f"{host}:{sd.get('port')}"
        for job in jobs
        for sd in job.get("dns_sd_configs", [])
        if sd.get("type") == "A"
        for host in sd.get("names", [])
    }
    targets = static | discovered
    problems = [
        f"prometheus.yml does not scrape {host}:{port}"
        for host, port in METRICS_TARGETS.items()
        if f"{host}:{port}" not in targets
    ]
    for target in targets:
        host = target.rsplit(":", 1)[0]
        if host not in names and host not in ("127.0.0.1", "localhost"):
            problems.append(f"prometheus.yml target {target}: no compose service or alias {host}")
    for profile in TRITON_PROFILES:
        active = effective_services(document, {profile})
        running = set().union(*(_network_names(n, s) for n, s in active.items()))
        for target in sorted(static):
            host = target.rsplit(":", 1)[0]
            if host in names and host not in running:
                problems.append(
                    f"prometheus.yml target {target}: not started in profile {profile}, "
                    "so it would be down there (find it by dns_sd_configs instead)"
                )
    return problems


def validate() -> list[str]:
    """Every problem of docker-compose.yml (schema after interpolation, then the rules)."""
    raw = load_raw()
    document = load()
    return [f"schema: {e}" for e in schema_errors(document)] + check_rules(document, raw)
