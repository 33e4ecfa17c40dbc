"""Rendered Kubernetes objects: OpenAPI-derived JSON schemas, then the project's rules.

Built-in kinds are validated offline against the schemas in the ``kubernetes-validate`` wheel
(strict variant: unknown fields fail), for the oldest Kubernetes version this repository
supports and the newest the wheel ships. CRDs have no schema there: ServiceMonitor,
PrometheusRule, cert-manager's Certificate and Issuer are checked against hand-written subsets
of their CRDs in ``schemas/`` that reject fields outside them, the PersesDashboard against its
operator's own CRD schema; any other CRD is an error.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from deploy_validate import REPO_ROOT, monitoring

K8S_DIR = REPO_ROOT / "k8s"
OVERLAYS = ("dev", "prod")
MIN_KUBERNETES = "1.29.0"  # native gRPC probes, autoscaling/v2, policy/v1, restricted PSA
SCHEMA_DIR = Path(__file__).parent / "schemas"
CRD_SCHEMAS = {
    ("monitoring.coreos.com/v1", "ServiceMonitor"): "servicemonitor-monitoring.coreos.com-v1.json",
    ("monitoring.coreos.com/v1", "PrometheusRule"): "prometheusrule-monitoring.coreos.com-v1.json",
    ("cert-manager.io/v1", "Certificate"): "certificate-cert-manager.io-v1.json",
    ("cert-manager.io/v1", "Issuer"): "issuer-cert-manager.io-v1.json",
    ("perses.dev/v1alpha2", "PersesDashboard"): "persesdashboard-perses.dev-v1alpha2.json",
}
# Secrets the workloads reference but the repository never contains: the operator creates
# them (kubectl create secret / External Secrets); docs/deployment.md lists every key.
EXTERNAL_SECRETS = {"objectvision-secrets"}
CERT_MANAGER = "cert-manager.io/v1"
WORKLOAD_KINDS = {"Deployment", "StatefulSet", "DaemonSet", "Job", "CronJob", "Pod"}
LONG_RUNNING_KINDS = {"Deployment", "StatefulSet", "DaemonSet"}
GPU_RESOURCE = "nvidia.com/gpu"
_RESOURCE_KEYS = ("cpu", "memory")


def kubernetes_versions() -> list[str]:
    """The oldest supported Kubernetes and the newest one kubernetes-validate has schemas for."""
    import kubernetes_validate

    return [MIN_KUBERNETES, kubernetes_validate.latest_version()]


def _crd_validator(api_version: str, kind: str) -> Any:
    import jsonschema

    schema = json.loads((SCHEMA_DIR / CRD_SCHEMAS[(api_version, kind)]).read_text())
    return jsonschema.Draft202012Validator(schema)


def schema_errors(objects: Iterable[dict[str, Any]], versions: Iterable[str]) -> list[str]:
    """Schema violations of every object, for every Kubernetes version."""
    import kubernetes_validate

    problems = []
    for obj in objects:
        label = f"{obj.get('kind')}/{obj.get('metadata', {}).get('name')}"
        key = (obj.get("apiVersion", ""), obj.get("kind", ""))
        if key in CRD_SCHEMAS:
            validator = _crd_validator(*key)
            problems += [
                f"{label}: {'.'.join(map(str, e.absolute_path))}: {e.message}"
                for e in validator.iter_errors(obj)
            ]
            continue
        for version in versions:
            try:
                kubernetes_validate.validate(obj, version, strict=True)
            except kubernetes_validate.ValidationError as error:
                path = ".".join(map(str, error.path))
                problems.append(f"{label} (k8s {version}): {path}: {error.message}")
            except kubernetes_validate.SchemaNotFoundError as error:
                problems.append(f"{label}: {error.message} (vendor a CRD schema or drop it)")
    return problems


# ---- helpers --------------------------------------------------------------------------------


def pod_spec(obj: dict[str, Any]) -> dict[str, Any] | None:
    spec = obj.get("spec") or {}
    kind = obj.get("kind")
    if kind == "Pod":
        return spec
    if kind == "CronJob":
        return spec["jobTemplate"]["spec"]["template"]["spec"]
    if kind in WORKLOAD_KINDS:
        return spec["template"]["spec"]
    return None


def pod_labels(obj: dict[str, Any]) -> dict[str, str]:
    if obj.get("kind") == "Pod":
        return obj["metadata"].get("labels", {})
    if obj.get("kind") == "CronJob":
        return obj["spec"]["jobTemplate"]["spec"]["template"]["metadata"].get("labels", {})
    return obj["spec"]["template"]["metadata"].get("labels", {})


def containers(spec: dict[str, Any], *, init: bool = True) -> Iterator[tuple[str, dict[str, Any]]]:
    for container in spec.get("containers", []):
        yield "container", container
    if init:
        for container in spec.get("initContainers", []):
            yield "initContainer", container


def selector_matches(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    """A LabelSelector (matchLabels + matchExpressions) against a label set."""
    if any(labels.get(k) != v for k, v in (selector.get("matchLabels") or {}).items()):
        return False
    for expr in selector.get("matchExpressions") or []:
        value, op, values = labels.get(expr["key"]), expr["operator"], expr.get("values", [])
        if (
            (op == "In" and value not in values)
            or (op == "NotIn" and value in values)
            or (op == "Exists" and value is None)
            or (op == "DoesNotExist" and value is not None)
        ):
            return False
    return True


def by_kind(objects: Iterable[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [o for o in objects if o.get("kind") == kind]


def find(objects: Iterable[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    """The one object of that kind and name (ValueError otherwise)."""
    matches = [o for o in objects if o.get("kind") == kind and o["metadata"]["name"] == name]
    if len(matches) != 1:
        raise ValueError(f"{kind}/{name}: {len(matches)} objects")
    return matches[0]


def workloads(objects: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    return [o for o in objects if o.get("kind") in WORKLOAD_KINDS]


def _named_ports(objects: Iterable[dict[str, Any]], labels_selector: dict[str, str]) -> set:
    ports: set = set()
    for workload in workloads(objects):
        if selector_matches({"matchLabels": labels_selector}, pod_labels(workload)):
            for _, container in containers(pod_spec(workload) or {}, init=False):
                for port in container.get("ports", []):
                    ports.update({port.get("name"), port["containerPort"]})
    return ports


# ---- the rules ------------------------------------------------------------------------------


def _container_problems(label: str, where: str, c: dict[str, Any], long_running: bool) -> list[str]:
    name = f"{label} {where} {c.get('name')}"
    problems = []
    resources = c.get("resources") or {}
    for section in ("requests", "limits"):
        missing = [k for k in _RESOURCE_KEYS if k not in (resources.get(section) or {})]
        if missing:
            problems.append(f"{name}: resources.{section} lacks {missing}")
    security = c.get("securityContext") or {}
    if security.get("allowPrivilegeEscalation") is not False:
        problems.append(f"{name}: allowPrivilegeEscalation must be false")
    if "ALL" not in ((security.get("capabilities") or {}).get("drop") or []):
        problems.append(f"{name}: capabilities must drop ALL")
    if security.get("readOnlyRootFilesystem") is not True:
        problems.append(f"{name}: readOnlyRootFilesystem must be true")
    if security.get("runAsUser") == 0 or security.get("privileged"):
        problems.append(f"{name}: runs as root or privileged")
    image = str(c.get("image", ""))
    tail = image.rsplit("/", 1)[-1]
    if "@" not in tail and (":" not in tail or tail.endswith(":latest")):
        problems.append(f"{name}: image {image!r} needs an explicit tag or digest")
    if where == "container" and long_running:
        for probe in ("readinessProbe", "livenessProbe"):
            if probe not in c:
                problems.append(f"{name}: no {probe}")
    ports = {p.get("name") for p in c.get("ports", [])} | {
        p["containerPort"] for p in c.get("ports", [])
    }
    for probe_name in ("startupProbe", "readinessProbe", "livenessProbe"):
        probe = c.get(probe_name) or {}
        for handler in ("httpGet", "grpc", "tcpSocket"):
            port = (probe.get(handler) or {}).get("port")
            if port is not None and port not in ports:
                problems.append(f"{name}: {probe_name} port {port} is not a container port")
    return problems


def issued_secrets(objects: Iterable[dict[str, Any]]) -> set[str]:
    """Secrets that a rendered cert-manager Certificate makes (its spec.secretName)."""
    return {
        c["spec"]["secretName"]
        for c in by_kind(objects, "Certificate")
        if c.get("apiVersion") == CERT_MANAGER
    }


def _pod_problems(obj: dict[str, Any], objects: list[dict[str, Any]]) -> list[str]:
    label = f"{obj['kind']}/{obj['metadata']['name']}"
    known_secrets = EXTERNAL_SECRETS | issued_secrets(objects)
    spec = pod_spec(obj) or {}
    problems = []
    pod_security = spec.get("securityContext") or {}
    if pod_security.get("runAsNonRoot") is not True:
        problems.append(f"{label}: pod securityContext.runAsNonRoot must be true")
    if not isinstance(pod_security.get("runAsUser"), int) or pod_security["runAsUser"] == 0:
        problems.append(f"{label}: pod securityContext.runAsUser must be a non-zero uid")
    if (pod_security.get("seccompProfile") or {}).get("type") != "RuntimeDefault":
        problems.append(f"{label}: seccompProfile must be RuntimeDefault")
    if spec.get("automountServiceAccountToken") is not False:
        problems.append(f"{label}: automountServiceAccountToken must be false")
    account = spec.get("serviceAccountName")
    if account and not any(
        o["metadata"]["name"] == account for o in by_kind(objects, "ServiceAccount")
    ):
        problems.append(f"{label}: ServiceAccount {account} is not rendered")
    long_running = obj["kind"] in LONG_RUNNING_KINDS
    volumes = {v["name"]: v for v in spec.get("volumes", [])}
    configmaps = {o["metadata"]["name"] for o in by_kind(objects, "ConfigMap")}
    for where, container in containers(spec):
        problems += _container_problems(label, where, container, long_running)
        for mount in container.get("volumeMounts", []):
            if mount["name"] not in volumes:
                problems.append(f"{label}: mount of undefined volume {mount['name']}")
        for env_from in container.get("envFrom", []):
            ref = (env_from.get("configMapRef") or {}).get("name")
            if ref and ref not in configmaps:
                problems.append(f"{label}: envFrom ConfigMap {ref} is not rendered")
            if env_from.get("secretRef"):
                problems.append(f"{label}: envFrom secretRef (name secret keys explicitly)")
        for env in container.get("env", []):
            source = env.get("valueFrom") or {}
            if "configMapKeyRef" in source and source["configMapKeyRef"]["name"] not in configmaps:
                problems.append(f"{label}: env {env['name']} from unknown ConfigMap")
            if "secretKeyRef" in source and source["secretKeyRef"]["name"] not in EXTERNAL_SECRETS:
                problems.append(f"{label}: env {env['name']} from unknown Secret")
    for volume in volumes.values():
        if "secret" in volume and volume["secret"]["secretName"] not in known_secrets:
            problems.append(f"{label}: volume {volume['name']} from unknown Secret")
        if "configMap" in volume and volume["configMap"]["name"] not in configmaps:
            problems.append(f"{label}: volume {volume['name']} from unknown ConfigMap")
        if "hostPath" in volume:
            problems.append(f"{label}: hostPath volume {volume['name']}")
        claim = (volume.get("persistentVolumeClaim") or {}).get("claimName")
        if claim and claim not in {
            o["metadata"]["name"] for o in by_kind(objects, "PersistentVolumeClaim")
        }:
            problems.append(f"{label}: PersistentVolumeClaim {claim} is not rendered")
    return problems


def secret_references(objects: Iterable[dict[str, Any]]) -> dict[str, set[str]]:
    """{secret name: keys} the operator provides: referenced by the rendered workloads and
    not made by a rendered cert-manager Certificate."""
    objects = list(objects)
    issued = issued_secrets(objects)
    refs: dict[str, set[str]] = {}
    for obj in workloads(objects):
        spec = pod_spec(obj) or {}
        for _, container in containers(spec):
            for env in container.get("env", []):
                ref = (env.get("valueFrom") or {}).get("secretKeyRef")
                if ref:
                    refs.setdefault(ref["name"], set()).add(ref["key"])
        for volume in spec.get("volumes", []):
            secret = volume.get("secret")
            if secret and secret["secretName"] not in issued:
                keys = {item["key"] for item in secret.get("items", [])} or {"*"}
                refs.setdefault(secret["secretName"], set()).update(keys)
    return refs


def gpu_containers(objects: Iterable[dict[str, Any]]) -> list[tuple[str, str]]:
    """(workload, container) pairs that request or limit a GPU."""
    found = []
    for obj in workloads(objects):
        for _, container in containers(pod_spec(obj) or {}):
            resources = container.get("resources") or {}
            if any(GPU_RESOURCE in (resources.get(s) or {}) for s in ("requests", "limits")):
                found.append((obj["metadata"]["name"], container["name"]))
    return found


def check_rules(objects: list[dict[str, Any]]) -> list[str]:
    """The project's rules for one rendered overlay."""
    problems: list[str] = []
    ids = [(o["kind"], o["metadata"].get("namespace"), o["metadata"]["name"]) for o in objects]
    namespaces = {o["metadata"]["name"] for o in by_kind(objects, "Namespace")}
    for kind, namespace, name in ids:
        if kind != "Namespace" and namespace not in namespaces:
            problems.append(f"{kind}/{name}: namespace {namespace!r} is not rendered")

    for secret in by_kind(objects, "Secret"):
        problems.append(f"Secret/{secret['metadata']['name']}: secrets never live in the repo")
    for obj in workloads(objects):
        problems += _pod_problems(obj, objects)

    pods = [(w, pod_labels(w)) for w in workloads(objects)]
    services = {s["metadata"]["name"]: s for s in by_kind(objects, "Service")}
    for name, service in services.items():
        selector = service["spec"].get("selector") or {}
        matched = [w for w, labels in pods if selector_matches({"matchLabels": selector}, labels)]
        if not matched:
            problems.append(f"Service/{name}: selects no pods")
        ports = _named_ports(objects, selector)
        for port in service["spec"].get("ports", []):
            if port.get("targetPort", port["port"]) not in ports:
                problems.append(f"Service/{name}: targetPort {port.get('targetPort')} not on pods")
    for pdb in by_kind(objects, "PodDisruptionBudget"):
        if not any(selector_matches(pdb["spec"]["selector"], labels) for _, labels in pods):
            problems.append(f"PodDisruptionBudget/{pdb['metadata']['name']}: selects no pods")

    deployments = {d["metadata"]["name"]: d for d in by_kind(objects, "Deployment")}
    for hpa in by_kind(objects, "HorizontalPodAutoscaler"):
        target = hpa["spec"]["scaleTargetRef"]
        deployment = deployments.get(target["name"]) if target["kind"] == "Deployment" else None
        if deployment is None:
            problems.append(f"HPA/{hpa['metadata']['name']}: target {target} is not rendered")
        elif "replicas" in deployment["spec"]:
            problems.append(f"Deployment/{target['name']}: replicas set although an HPA owns it")

    for monitor in by_kind(objects, "ServiceMonitor"):
        matched = [
            s
            for s in services.values()
            if selector_matches(monitor["spec"]["selector"], s["metadata"].get("labels", {}))
        ]
        if not matched:
            problems.append(f"ServiceMonitor/{monitor['metadata']['name']}: selects no Service")
        for endpoint in monitor["spec"]["endpoints"]:
            if not any(
                endpoint["port"] in {p.get("name") for p in s["spec"]["ports"]} for s in matched
            ):
                problems.append(
                    f"ServiceMonitor/{monitor['metadata']['name']}: no port {endpoint['port']}"
                )

    for ingress in by_kind(objects, "Ingress"):
        for rule in ingress["spec"].get("rules", []):
            for path in rule["http"]["paths"]:
                backend = path["backend"]["service"]
                service = services.get(backend["name"])
                names = {p.get("name") for p in service["spec"]["ports"]} if service else set()
                numbers = {p["port"] for p in service["spec"]["ports"]} if service else set()
                port = backend["port"]
                if service is None or (
                    port.get("name") not in names and port.get("number") not in numbers
                ):
                    problems.append(
                        f"Ingress/{ingress['metadata']['name']}: backend {backend} missing"
                    )

    problems += _address_problems(objects, services)
    problems += _certificate_problems(objects)
    problems += monitoring.rendered_rule_problems(objects)
    return problems


def _certificate_problems(objects: list[dict[str, Any]]) -> list[str]:
    """cert-manager objects reference each other by name: every Certificate's issuer is a
    rendered Issuer, every CA Issuer's secret is made by a rendered CA Certificate."""
    problems = []
    issuers = {
        i["metadata"]["name"]: i
        for i in by_kind(objects, "Issuer")
        if i["apiVersion"] == CERT_MANAGER
    }
    certificates = [c for c in by_kind(objects, "Certificate") if c["apiVersion"] == CERT_MANAGER]
    ca_secrets = {c["spec"]["secretName"] for c in certificates if c["spec"].get("isCA")}
    for certificate in certificates:
        ref = certificate["spec"]["issuerRef"]
        if ref.get("kind", "Issuer") == "Issuer" and ref["name"] not in issuers:
            problems.append(
                f"Certificate/{certificate['metadata']['name']}: Issuer {ref['name']} not rendered"
            )
    for name, issuer in issuers.items():
        secret = (issuer["spec"].get("ca") or {}).get("secretName")
        if secret is not None and secret not in ca_secrets:
            problems.append(f"Issuer/{name}: CA secret {secret} is made by no CA Certificate")
    return problems


_ADDRESS = re.compile(r"^(?:dns:///)?(?P<host>[a-z0-9.-]+):(?P<port>\d+)$")


def _address_problems(objects: list[dict[str, Any]], services: dict[str, Any]) -> list[str]:
    """*_SERVICE_ADDR and TRITON_URL in the ConfigMaps name rendered Services and ports."""
    problems = []
    for configmap in by_kind(objects, "ConfigMap"):
        for key, value in (configmap.get("data") or {}).items():
            if not (key.endswith("_SERVICE_ADDR") or key == "TRITON_URL"):
                continue
            match = _ADDRESS.match(value)
            if not match:
                problems.append(f"ConfigMap {key}={value}: not [dns:///]host:port")
                continue
            name, _, rest = match["host"].partition(".")
            namespace = rest.split(".")[0] if rest else configmap["metadata"].get("namespace")
            service = services.get(name)
            if service is None or service["metadata"].get("namespace") != namespace:
                problems.append(f"ConfigMap {key}={value}: no Service {name} in {namespace}")
            elif int(match["port"]) not in {p["port"] for p in service["spec"]["ports"]}:
                problems.append(f"ConfigMap {key}={value}: Service {name} has no such port")
            elif key.endswith("_SERVICE_ADDR") and service["spec"].get("clusterIP") != "None":
                problems.append(f"Service/{name}: gRPC Services must be headless (clusterIP: None)")
    return problems
