"""docker-bake.hcl: every image once, built as docker-compose.yml builds it, named as the
Kubernetes manifests run it. Read with a real HCL parser (python-hcl2): no buildx here."""

import textwrap
from pathlib import Path

import pytest
from deploy_validate import REPO_ROOT, bake, compose, render


@pytest.fixture(scope="module")
def document():
    return bake.load()


@pytest.fixture(scope="module")
def targets(document):
    return bake.targets(document, {})


def test_the_bake_file_validates():
    assert bake.validate() == []


def test_default_group_is_every_image_compose_builds(document, targets):
    services = compose.load()["services"]
    default = bake.groups(document)["default"]
    assert sorted(default) == sorted(n for n, s in services.items() if "build" in s)
    assert sorted(default) == sorted(n for n in targets if not n.startswith("_"))


def test_python_images_share_one_dockerfile_and_differ_only_in_stage_and_arguments(targets):
    python = {n: t for n, t in targets.items() if not n.startswith("_") and n != "triton-cpu"}
    assert {t["dockerfile"] for t in python.values()} == {"deploy/docker/Dockerfile"}
    assert {t["context"] for t in python.values()} == {"."}
    assert {n: t["target"] for n, t in python.items()} == {
        "gateway": "service",
        "auth-service": "service",
        "detection-service": "service",
        "notification-service": "service",
        "migrate": "migrate",
        "model-prep": "model-prep",
    }
    assert targets["migrate"]["args"]["PACKAGES"].split() == [
        "objectvision-auth",
        "objectvision-detection",
        "objectvision-notification",
    ]
    assert targets["model-prep"]["contexts"] == {"models": "../shared/models"}


def test_registry_and_tag_give_the_names_the_prod_overlay_pins(document):
    """CI builds for prod with REGISTRY and OBJECTVISION_TAG; the result is what
    k8s/overlays/prod's images entries name."""
    built = bake.targets(document, {"REGISTRY": "ghcr.io/", "OBJECTVISION_TAG": "0.1.0"})
    k8s_group = bake.groups(document)["k8s"]
    tags = {tag for name in k8s_group for tag in built[name]["tags"]}
    prod = render.kustomization(REPO_ROOT / "k8s" / "overlays" / "prod")
    for entry in prod["images"]:
        assert f"{entry['newName']}:{entry['newTag']}" in tags, entry


def _target_problems(targets, name, **changes):
    target = {**targets[name], "args": {**targets[name].get("args", {}), **changes}}
    return bake.target_problems(name, target)


def test_target_rules_catch_mistakes(targets):
    assert bake.target_problems("auth-service", targets["auth-service"]) == []
    assert _target_problems(targets, "auth-service", PORTS="50051") == [
        "target \"auth-service\": PORTS '50051': expose the health-checked and the scraped "
        "port, ['50051', '9101']"
    ]
    assert _target_problems(targets, "auth-service", COMMAND="objectvision-gateway") == [
        'target "auth-service": COMMAND objectvision-gateway is no console script of '
        "['objectvision-auth']"
    ]
    (problem,) = _target_problems(targets, "migrate", PACKAGE="objectvision-auth")
    assert "PACKAGE is not declared" in problem
    (problem,) = _target_problems(targets, "migrate", PACKAGES="objectvision-ath")
    assert "objectvision-ath, which is no workspace package" in problem
    unset = {**targets["gateway"], "args": {"PACKAGES": "objectvision-gateway"}}
    assert sorted(bake.target_problems("gateway", unset)) == [
        f'target "gateway": build argument {arg} has no default and is not set'
        for arg in ("COMMAND", "HEALTHCHECK_ARGS", "PORTS")
    ]
    (problem,) = bake.target_problems("migrate", {**targets["migrate"], "target": "migrat"})
    assert "no stage 'migrat'" in problem


def test_compose_build_sections_must_match_the_bake_targets(document, targets):
    default = bake.groups(document)["default"]
    broken = compose.load()
    broken["services"]["auth-service"]["build"]["args"]["PORTS"] = "50051 9999"
    broken["services"]["gateway"]["healthcheck"]["test"][-1] = "/ready"
    del broken["services"]["migrate"]["build"]
    assert sorted(bake.compose_problems(targets, default, broken)) == [
        "auth-service: compose build args {'PACKAGES': 'objectvision-auth', 'COMMAND': "
        "'objectvision-auth', 'HEALTHCHECK_ARGS': 'grpc --port-env AUTH_GRPC_PORT "
        "--default-port 50051', 'PORTS': '50051 9999'}, bake {'PACKAGES': "
        "'objectvision-auth', 'COMMAND': 'objectvision-auth', 'HEALTHCHECK_ARGS': 'grpc "
        "--port-env AUTH_GRPC_PORT --default-port 50051', 'PORTS': '50051 9101'}",
        "docker-bake.hcl target migrate is no compose service with a build",
        "gateway: compose healthcheck ['CMD', 'python', '/opt/objectvision/healthcheck.py', "
        "'http', '--port-env', 'GATEWAY_PORT', '--default-port', '8000', '--path', '/ready'] "
        "is not the image's HEALTHCHECK_ARGS",
    ]


def test_k8s_group_is_what_the_manifests_run(document, targets):
    k8s_group = bake.groups(document)["k8s"]
    built = {bake._repository(t, "") for name in k8s_group for t in targets[name]["tags"]}
    assert built == bake.kubernetes_images()
    assert "objectvision/migrate" not in built  # Kubernetes migrates from the service images


def _bake_file(tmp_path: Path, old: str, new: str) -> Path:
    text = bake.BAKE_FILE.read_text()
    assert old in text
    path = tmp_path / "docker-bake.hcl"
    path.write_text(text.replace(old, new, 1))
    return path


def test_an_image_missing_from_the_k8s_group_is_reported(tmp_path):
    path = _bake_file(
        tmp_path, '"model-prep", "triton-cpu"]\n}\n\ntarget', '"triton-cpu"]\n}\n\ntarget'
    )
    assert bake.validate(path) == [
        'group "k8s" lacks the image objectvision/model-prep, which k8s/ runs'
    ]


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ('PORTS            = "8000 9100"', "PORTS = PORTS", "is an expression"),
        ('"${MODEL_DIR}"', '"${lower(MODEL_DIR)}"', "is not a declared variable"),
        ('"${MODEL_DIR}"', '"${MODEL_DRI}"', "MODEL_DRI} is not a declared variable"),
        ('inherits = ["_python"]', 'inherits = ["_pyton"]', 'unknown target "_pyton"'),
    ],
)
def test_hcl_beyond_plain_strings_and_variables_is_refused(tmp_path, old, new, message):
    """What this static reading cannot resolve as bake would is refused, not guessed."""
    (problem,) = bake.validate(_bake_file(tmp_path, old, new))
    assert message in problem


def test_matrix_targets_are_refused(tmp_path):
    path = tmp_path / "docker-bake.hcl"
    path.write_text(
        textwrap.dedent(
            """\
            target "svc" {
              name = "svc-${item}"
              matrix = { item = ["a", "b"] }
            }
            """
        )
    )
    (problem,) = bake.validate(path)
    assert "matrix" in problem


def test_a_bake_file_that_does_not_parse_is_reported(tmp_path):
    path = tmp_path / "docker-bake.hcl"
    path.write_text('target "gateway" {\n  tags = ["a"\n')
    (problem,) = bake.validate(path)
    assert problem.startswith("docker-bake.hcl is not valid HCL")
