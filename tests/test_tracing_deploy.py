"""Where spans go when deployed: docker compose and the rendered Kubernetes overlays.

The services and Triton must name an OTLP endpoint that exists there (compose: the `jaeger`
service; Kubernetes: the `otel-collector` Service, on a port it serves), Triton in its
OpenTelemetry mode with the OTLP/HTTP path, the collector's pipeline must take OTLP in and send
it to the backend its ConfigMap names, and the NetworkPolicies must let every exporter reach
it. A renamed Service, port or variable fails here rather than as silently missing traces.
"""

import re
import sys
import urllib.parse
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT / "tools") not in sys.path:
    sys.path.insert(0, str(REPO_ROOT / "tools"))  # deploy_validate, as in tests/deploy

from deploy_validate import compose, render  # noqa: E402

OVERLAYS = ("dev", "prod")
# detection-realtime is detection-service's realtime role (ADR 0019): compose runs it under
# profile realtime, Kubernetes always.
EXPORTERS = (
    "gateway",
    "auth-service",
    "detection-service",
    "notification-service",
    "detection-realtime",
)
K8S_EXPORTERS = EXPORTERS
NAMESPACE = "objectvision"


def _trace_config(args: list[str]) -> dict[str, str]:
    """tritonserver's --trace-config settings: {"mode": ..., "opentelemetry,url": ...}."""
    settings = {}
    for arg in args:
        if arg.startswith("--trace-config="):
            key, _, value = arg.removeprefix("--trace-config=").partition("=")
            settings[key] = value
    return settings


def _assert_triton_traces_to(args: list[str], host: str, port: int) -> None:
    settings = _trace_config(args)
    assert settings["mode"] == "opentelemetry"
    assert settings["level"] == "TIMESTAMPS"
    assert settings["opentelemetry,resource"] == "service.name=triton"
    url = urllib.parse.urlsplit(settings["opentelemetry,url"])
    assert (url.hostname, url.port, url.path) == (host, port, "/v1/traces")


def test_compose_sends_every_services_spans_and_tritons_to_jaeger() -> None:
    services = compose.load()["services"]
    jaeger = services["jaeger"]
    assert jaeger["image"].startswith("jaegertracing/all-in-one:")
    assert jaeger["environment"]["COLLECTOR_OTLP_ENABLED"] == "true"
    assert all(str(port).startswith("127.0.0.1:") for port in jaeger["ports"])
    for name in EXPORTERS:
        endpoint = services[name]["environment"]["OTEL_EXPORTER_OTLP_ENDPOINT"]
        parts = urllib.parse.urlsplit(endpoint)
        assert (parts.scheme, parts.hostname, parts.port) == ("http", "jaeger", 4317), name
    for name in ("triton", "triton-cpu"):
        _assert_triton_traces_to(services[name]["command"], "jaeger", 4318)


@pytest.fixture(scope="module", params=OVERLAYS)
def rendered(request: pytest.FixtureRequest) -> list[dict[str, Any]]:
    return render.render(REPO_ROOT / "k8s" / "overlays" / request.param)


def _one(objects: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    """The object of that kind and name; a generated ConfigMap's name has a hash suffix."""
    generated = re.compile(re.escape(name) + r"-[a-z0-9]{10}")
    (found,) = [
        o
        for o in objects
        if o["kind"] == kind
        and (o["metadata"]["name"] == name or generated.fullmatch(o["metadata"]["name"]))
    ]
    return found


def _service_address(objects: list[dict[str, Any]], url: str) -> tuple[dict[str, Any], int]:
    """The rendered Service a cluster URL names, and the port it names on it."""
    parts = urllib.parse.urlsplit(url if "://" in url else f"//{url}")
    assert parts.hostname is not None and parts.port is not None, url
    name, _, rest = parts.hostname.partition(".")
    namespace = rest.split(".")[0] or NAMESPACE
    (service,) = [
        o
        for o in objects
        if o["kind"] == "Service"
        and o["metadata"]["name"] == name
        and o["metadata"]["namespace"] == namespace
    ]
    assert parts.port in {p["port"] for p in service["spec"]["ports"]}, url
    return service, parts.port


def test_kubernetes_services_and_triton_export_to_the_collector(
    rendered: list[dict[str, Any]],
) -> None:
    config = _one(rendered, "ConfigMap", "objectvision-config")["data"]
    service, port = _service_address(rendered, config["OTEL_EXPORTER_OTLP_ENDPOINT"])
    assert service["metadata"]["name"] == "otel-collector" and port == 4317
    for name in K8S_EXPORTERS:
        deployment = _one(rendered, "Deployment", name)
        (container,) = [
            c for c in deployment["spec"]["template"]["spec"]["containers"] if "envFrom" in c
        ]
        refs = {e["configMapRef"]["name"] for e in container["envFrom"] if "configMapRef" in e}
        assert any(ref.startswith("objectvision-config") for ref in refs), name
    triton = _one(rendered, "Deployment", "triton")
    (server,) = [
        c for c in triton["spec"]["template"]["spec"]["containers"] if c["name"] == "triton"
    ]
    url = _trace_config(server["args"])["opentelemetry,url"]
    service, port = _service_address(rendered, url)
    assert service["metadata"]["name"] == "otel-collector" and port == 4318
    _assert_triton_traces_to(server["args"], urllib.parse.urlsplit(url).hostname or "", 4318)


def test_the_collector_takes_otlp_and_forwards_it_to_the_configured_backend(
    rendered: list[dict[str, Any]],
) -> None:
    collector = yaml.safe_load(_one(rendered, "ConfigMap", "otel-collector")["data"]["config.yaml"])
    protocols = collector["receivers"]["otlp"]["protocols"]
    assert protocols["grpc"]["endpoint"].endswith(":4317")
    assert protocols["http"]["endpoint"].endswith(":4318")
    (pipeline,) = collector["service"]["pipelines"].values()
    assert pipeline["receivers"] == ["otlp"]
    assert pipeline["processors"][0] == "memory_limiter"
    (exporter,) = pipeline["exporters"]
    settings = collector["exporters"][exporter]
    # The backend comes from the environment, which the generated ConfigMap fills in.
    variables = {
        value.removeprefix("${env:").removesuffix("}")
        for value in (settings["endpoint"], str(settings["tls"]["insecure"]))
    }
    backend = _one(rendered, "ConfigMap", "otel-collector-backend")["data"]
    assert variables <= set(backend), variables - set(backend)
    deployment = _one(rendered, "Deployment", "otel-collector")
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    env_from = {e["configMapRef"]["name"] for e in container["envFrom"]}
    assert _one(rendered, "ConfigMap", "otel-collector-backend")["metadata"]["name"] in env_from
    mounted = {
        v["configMap"]["name"]
        for v in deployment["spec"]["template"]["spec"]["volumes"]
        if "configMap" in v
    }
    assert _one(rendered, "ConfigMap", "otel-collector")["metadata"]["name"] in mounted


def _allows(policy: dict[str, Any], direction: str, peer_name: str, port: int) -> bool:
    """Whether one of the policy's rules admits `peer_name` pods (by app label) on `port`."""
    peers_key = "to" if direction == "egress" else "from"
    for rule in policy["spec"].get(direction, []):
        ports = {p["port"] for p in rule.get("ports", [])}
        if ports and port not in ports:
            continue
        peers = rule.get(peers_key)
        if not peers:
            return True
        for peer in peers:
            selector = peer.get("podSelector") or {}
            if selector.get("matchLabels", {}).get("app.kubernetes.io/name") == peer_name:
                return True
            for expression in selector.get("matchExpressions", []):
                if (
                    expression["key"] == "app.kubernetes.io/name"
                    and expression["operator"] == "In"
                    and peer_name in expression["values"]
                ):
                    return True
    return False


def _selects(policy: dict[str, Any], name: str) -> bool:
    selector = policy["spec"]["podSelector"]
    if selector.get("matchLabels", {}).get("app.kubernetes.io/name") == name:
        return True
    return any(
        e["key"] == "app.kubernetes.io/name" and e["operator"] == "In" and name in e["values"]
        for e in selector.get("matchExpressions", [])
    )


@pytest.mark.parametrize(
    ("workload", "port"), [*((name, 4317) for name in K8S_EXPORTERS), ("triton", 4318)]
)
def test_network_policies_let_every_exporter_reach_the_collector(
    rendered: list[dict[str, Any]], workload: str, port: int
) -> None:
    policies = [o for o in rendered if o["kind"] == "NetworkPolicy"]
    assert any(
        _selects(p, workload) and _allows(p, "egress", "otel-collector", port) for p in policies
    ), f"{workload} may not send to otel-collector:{port}"
    assert any(
        _selects(p, "otel-collector") and _allows(p, "ingress", workload, port) for p in policies
    ), f"otel-collector does not admit {workload} on {port}"
