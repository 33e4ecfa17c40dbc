"""GRPC_ALLOWED_PEERS in the prod overlay (grpc-peers.yaml) against the code and the protos.

Each gRPC service lists the client certificates it serves and the methods each may call.
The lists are least privilege only while they match what the callers' code calls: a call
added without its line in the overlay is PERMISSION_DENIED in production, and a line left
after the call is gone is a privilege nobody needs. Both fail here, as does a method name
that the proto descriptors do not have (a renamed or removed RPC).
"""

import ast
import re
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

import pytest
from deploy_validate import REPO_ROOT
from deploy_validate.k8s import find
from google.protobuf.descriptor import ServiceDescriptor

from objectvision.v1 import auth_pb2, detection_pb2, notification_pb2
from objectvision_common.peer_policy import PeerPolicy

# Each server Deployment and the proto service it serves.
SERVED = {
    "auth-service": auth_pb2.DESCRIPTOR.services_by_name["AuthService"],
    "detection-service": detection_pb2.DESCRIPTOR.services_by_name["DetectionService"],
    "notification-service": notification_pb2.DESCRIPTOR.services_by_name["NotificationService"],
}
SERVICES_BY_NAME = {service.name: service for service in SERVED.values()}
# Each Deployment holding a client certificate, and where its code is.
CALLER_SOURCES = {
    "gateway": REPO_ROOT / "gateway" / "src",
    "auth-service": REPO_ROOT / "auth-service" / "src",
    "detection-service": REPO_ROOT / "detection-service" / "src",
    "notification-service": REPO_ROOT / "notification-service" / "src",
}
_STUB_TYPE = re.compile(rf"\b({'|'.join(SERVICES_BY_NAME)})(?:Async)?Stub\b")


def _full_methods(service: ServiceDescriptor) -> set[str]:
    return {f"/{service.full_name}/{method.name}" for method in service.methods}


def _stub_services(node: ast.expr | None) -> set[str]:
    """The proto services a stub constructor call or a stub annotation names."""
    return set(_STUB_TYPE.findall(ast.unparse(node))) if node is not None else set()


def _bound_names(tree: ast.Module) -> Iterator[tuple[str, set[str]]]:
    """Names that hold a stub: `self._stub = XStub(channel)`, `auth=XStub(...)`, a field or
    property annotated with `XAsyncStub`."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Call):
            for target in node.targets:
                yield _name_of(target), _stub_services(node.value.func)
        elif isinstance(node, ast.AnnAssign):
            yield _name_of(node.target), _stub_services(node.annotation)
        elif isinstance(node, ast.keyword) and node.arg and isinstance(node.value, ast.Call):
            yield node.arg, _stub_services(node.value.func)
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            yield node.name, _stub_services(node.returns)


def _name_of(node: ast.expr) -> str:
    if isinstance(node, ast.Attribute):
        return node.attr
    return node.id if isinstance(node, ast.Name) else ""


def calls_in_code(source: Path) -> dict[str, set[str]]:
    """The full method names the code under `source` calls, by proto service: `<stub>.Method`
    where `<stub>` is a name that holds that service's stub somewhere in the package."""
    trees = [ast.parse(path.read_text(), str(path)) for path in sorted(source.rglob("*.py"))]
    stubs: dict[str, set[str]] = defaultdict(set)
    for tree in trees:
        for name, services in _bound_names(tree):
            stubs[name] |= services
    calls: dict[str, set[str]] = defaultdict(set)
    for tree in trees:
        for node in ast.walk(tree):
            if not isinstance(node, ast.Attribute):
                continue
            for service_name in stubs.get(_name_of(node.value), ()):
                service = SERVICES_BY_NAME[service_name]
                if node.attr in service.methods_by_name:
                    calls[service.full_name].add(f"/{service.full_name}/{node.attr}")
    return calls


def _certificate_name(objects: list[dict], deployment: str) -> str:
    """The common name of the client certificate the Deployment mounts (mtls.yaml)."""
    spec = find(objects, "Deployment", deployment)["spec"]["template"]["spec"]
    (volume,) = [v for v in spec["volumes"] if v["name"] == "grpc-tls"]
    secret = volume["secret"]["secretName"]
    (certificate,) = [
        o for o in objects if o["kind"] == "Certificate" and o["spec"]["secretName"] == secret
    ]
    return str(certificate["spec"]["commonName"])


def _policy(objects: list[dict], deployment: str) -> PeerPolicy:
    (container,) = find(objects, "Deployment", deployment)["spec"]["template"]["spec"]["containers"]
    values = [e["value"] for e in container.get("env", []) if e["name"] == "GRPC_ALLOWED_PEERS"]
    assert values, f"{deployment} serves every certificate of the CA: set GRPC_ALLOWED_PEERS"
    return PeerPolicy.parse(values[0])


@pytest.fixture(scope="module")
def policies(rendered) -> dict[str, PeerPolicy]:
    return {server: _policy(rendered["prod"], server) for server in SERVED}


def test_every_method_the_overlay_names_exists_in_the_service_it_is_set_on(policies) -> None:
    for server, policy in policies.items():
        served = SERVED[server]
        assert policy.services() <= {served.full_name}, f"{server} serves {served.full_name}"
        for peer, grant in policy.grants.items():
            missing = sorted(grant.methods - _full_methods(served)) if grant else []
            assert not missing, (
                f"grpc-peers.yaml lets {peer} call {missing} on {server}, which "
                f"{served.full_name} does not have (renamed or removed?)"
            )


def test_each_service_serves_exactly_the_methods_its_callers_call(rendered, policies) -> None:
    """Least privilege, checked both ways for every caller with a certificate."""
    objects = rendered["prod"]
    called_by = {
        _certificate_name(objects, caller): calls_in_code(source)
        for caller, source in CALLER_SOURCES.items()
    }
    for server, policy in policies.items():
        served = SERVED[server]
        for peer in sorted(set(called_by) | set(policy.grants)):
            allowed = {m for m in _full_methods(served) if policy.allows(peer, m)}
            called = called_by.get(peer, {}).get(served.full_name, set())
            assert allowed == called, (
                f"{server}'s GRPC_ALLOWED_PEERS in k8s/overlays/prod/grpc-peers.yaml lets {peer} "
                f"call methods its code does not ({sorted(allowed - called)}) or refuses "
                f"methods it calls ({sorted(called - allowed)})"
            )


def test_the_code_scan_finds_the_calls_it_is_trusted_with() -> None:
    """The check above is only as good as the scan: calls through each way a stub is held."""
    gateway = calls_in_code(CALLER_SOURCES["gateway"])
    notifier = calls_in_code(CALLER_SOURCES["notification-service"])
    assert {
        "/objectvision.v1.AuthService/Login",  # upstream.call(upstream.auth.Login, ...)
        "/objectvision.v1.AuthService/GetJwks",  # clients.auth.GetJwks(...)
    } <= gateway["objectvision.v1.AuthService"]
    assert "/objectvision.v1.DetectionService/Detect" in gateway["objectvision.v1.DetectionService"]
    assert notifier == {
        "objectvision.v1.AuthService": {
            "/objectvision.v1.AuthService/GetUser",
            "/objectvision.v1.AuthService/GetSettings",
        },
        "objectvision.v1.DetectionService": {"/objectvision.v1.DetectionService/GetJob"},
    }
