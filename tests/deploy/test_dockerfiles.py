"""The images: one Dockerfile for every Python image (a stage per kind, build arguments per
image), multi-stage uv builds from the root lock, non-root, health-checked, secret-free."""

from pathlib import Path

import pytest
from deploy_validate import REPO_ROOT, dockerfile

PYTHON_IMAGE_STAGES = ("service", "migrate", "model-prep")


def _python_stages() -> list[dockerfile.Stage]:
    return dockerfile.load_stages(REPO_ROOT / dockerfile.PYTHON_DOCKERFILE)


def test_all_dockerfiles_follow_the_rules():
    assert dockerfile.validate() == []


def test_one_dockerfile_builds_every_python_image():
    """The six near-identical Dockerfiles are gone; what differed is a stage or an argument."""
    found = sorted(
        str(path.relative_to(REPO_ROOT))
        for path in REPO_ROOT.glob("**/Dockerfile")
        if not any(part.startswith(".") for part in path.relative_to(REPO_ROOT).parts)
    )
    assert found == sorted(dockerfile.DOCKERFILES)
    stages = _python_stages()
    assert sorted(s.name for s in dockerfile.image_stages(stages)) == sorted(PYTHON_IMAGE_STAGES)
    assert stages[0].name == "builder"


@pytest.mark.parametrize("name", PYTHON_IMAGE_STAGES)
def test_every_python_image_is_the_locked_venv_as_uid_10001(name):
    stages = _python_stages()
    (stage,) = [s for s in stages if s.name == name]
    chain = [i for s in dockerfile.lineage(stage, stages) for i in s.instructions]
    assert [i.value for i in chain if i.keyword == "USER"][-1] == "10001:10001"
    assert [i.value for i in chain if i.keyword == "STOPSIGNAL"] == ["SIGTERM"]
    assert any(i.flags.get("from") == "builder" and "/opt/venv" in i.value for i in chain)
    # What the image installs is a build argument of the builder, which every image needs.
    assert dockerfile.stage_args(stage, stages)["PACKAGES"] is None
    syncs = [i.value for i in stages[0].instructions if "uv sync" in i.value]
    assert len(syncs) == 2
    assert all("--frozen" in s and "--no-dev" in s and "${PACKAGES}" in s for s in syncs)


def test_the_service_stage_runs_its_command_as_pid_1_and_health_checks_it():
    """ENTRYPOINT and HEALTHCHECK take no build arguments: COMMAND and HEALTHCHECK_ARGS reach
    them through ENV, and the entrypoint execs the command so that it gets SIGTERM."""
    stages = _python_stages()
    (service,) = [s for s in stages if s.name == "service"]
    env = dict(
        p for i in service.instructions if i.keyword == "ENV" for p in dockerfile.env_pairs(i)
    )
    assert env["OBJECTVISION_COMMAND"] == "${COMMAND}"
    assert env["OBJECTVISION_HEALTHCHECK"] == "${HEALTHCHECK_ARGS}"
    (entrypoint,) = [i for i in service.instructions if i.keyword == "ENTRYPOINT"]
    assert entrypoint.exec_form()[:3] == ["/bin/sh", "-c", 'exec "$OBJECTVISION_COMMAND" "$@"']
    (health,) = [i for i in service.instructions if i.keyword == "HEALTHCHECK"]
    assert "/opt/objectvision/healthcheck.py $OBJECTVISION_HEALTHCHECK" in health.value
    assert [i.value for i in service.instructions if i.keyword == "EXPOSE"] == ["${PORTS}"]
    assert set(dockerfile.stage_args(service, stages)) >= {"COMMAND", "HEALTHCHECK_ARGS", "PORTS"}


def _context(tmp_path: Path, dockerfile_text: str) -> Path:
    """A build context with a .dockerignore, the Makefile's uv version and one Dockerfile."""
    (tmp_path / ".dockerignore").write_text(".env\nsecret.txt\n")
    (tmp_path / "Makefile").write_text("UV_VERSION := 0.13.9\n")
    (tmp_path / "Dockerfile").write_text(dockerfile_text)
    return tmp_path / "Dockerfile"


def test_rules_catch_a_bad_dockerfile(tmp_path):
    (tmp_path / "secret.txt").write_text("x")
    bad = _context(
        tmp_path,
        "FROM python:3.11-slim\n"
        "ENV DB_PASSWORD=hunter2\n"
        "COPY secret.txt missing.txt /app/\n"
        "USER root\n",
    )
    problems = "\n".join(dockerfile.check(bad, tmp_path))
    for expected in (
        "DB_PASSWORD",
        "secret.txt is .dockerignored",
        "missing.txt missing",
        "non-root USER",
        "HEALTHCHECK",
        "STOPSIGNAL",
        "multi-stage",
    ):
        assert expected in problems


def test_rules_follow_each_image_stage_through_the_stages_it_starts_from(tmp_path):
    """A stage inherits USER, STOPSIGNAL and ENV from the stage it starts FROM; a stage that
    exposes ports is long-running; ENTRYPOINT and HEALTHCHECK see only ENV, never ARG."""
    bad = _context(
        tmp_path,
        "FROM python:3.11-slim AS builder\n"
        "ARG UV_VERSION=0.13.9\n"
        "RUN uv sync --frozen --no-dev --no-editable\n"
        "FROM python:3.11-slim AS runtime\n"
        "COPY --from=builder /opt/venv /opt/venv\n"
        "STOPSIGNAL SIGTERM\n"
        "USER 10001:10001\n"
        "FROM runtime AS one-shot\n"
        "HEALTHCHECK NONE\n"
        'ENTRYPOINT ["run"]\n'
        "FROM runtime AS server\n"
        "ARG COMMAND\n"
        "EXPOSE 80\n"
        "HEALTHCHECK NONE\n"
        'ENTRYPOINT ["/bin/sh", "-c", "exec $COMMAND"]\n',
    )
    problems = dockerfile.check(bad, tmp_path)
    assert not [p for p in problems if "one-shot" in p]
    assert sorted(p.split(": ", 1)[1] for p in problems) == [
        "ENTRYPOINT reads $COMMAND, which no ENV of the image sets",
        "it EXPOSEs ports, so it is long-running and needs a HEALTHCHECK",
    ]


def test_parser_handles_continuations_comments_and_flags():
    instructions = dockerfile.parse(
        "# syntax=docker/dockerfile:1.7\n"
        "ARG BASE=python:3.11-slim\n"
        "FROM ${BASE} AS builder\n"
        "RUN --mount=type=cache,target=/root/.cache \\\n"
        "    # a comment inside the continuation\n"
        "    echo one \\\n"
        "    && echo two\n"
        "COPY --from=builder --chmod=0755 /a /b\n"
        'ENTRYPOINT ["app"]\n'
    )
    assert [i.keyword for i in instructions] == ["ARG", "FROM", "RUN", "COPY", "ENTRYPOINT"]
    run = instructions[2]
    assert run.flags == {"mount": "type=cache,target=/root/.cache"}
    assert run.value == "echo one && echo two"
    assert instructions[3].flags == {"from": "builder", "chmod": "0755"}
    assert instructions[4].exec_form() == ["app"]
    assert dockerfile.global_args(instructions) == {"BASE": "python:3.11-slim"}


@pytest.mark.parametrize(
    ("path", "excluded"),
    [
        (".env", True),
        (".git/config", True),
        (".venv/bin/python", True),
        ("common/tests/test_identity.py", True),
        ("auth-service/src/auth_service/__pycache__/x.pyc", True),
        ("k8s/base/kustomization.yaml", True),
        ("docs/deployment.md", True),
        ("uv.lock", False),
        ("common/src/objectvision_common/settings.py", False),
        ("inference/scripts/build_engine.sh", False),
        ("deploy/docker/healthcheck.py", False),
        ("deploy/triton-cpu/requirements.txt", False),
    ],
)
def test_dockerignore(path, excluded):
    ignore = dockerfile.DockerIgnore.load(REPO_ROOT / ".dockerignore")
    assert ignore.excluded(path) is excluded


def test_dockerignore_exceptions_and_double_star(tmp_path):
    (tmp_path / ".dockerignore").write_text("**/*.md\n!keep/README.md\nbuild\n")
    ignore = dockerfile.DockerIgnore.load(tmp_path / ".dockerignore")
    assert ignore.excluded("README.md") and ignore.excluded("a/b/c.md")
    assert not ignore.excluded("keep/README.md")
    assert ignore.excluded("build/x/y.py") and not ignore.excluded("buildx/y.py")
