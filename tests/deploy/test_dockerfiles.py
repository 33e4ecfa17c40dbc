"""The images: multi-stage uv builds from the root lock, non-root, health-checked, secret-free."""

import pytest
from deploy_validate import REPO_ROOT, dockerfile


def test_all_dockerfiles_follow_the_rules():
    assert dockerfile.validate() == []


@pytest.mark.parametrize("relative", sorted(dockerfile.SERVICE_DOCKERFILES))
def test_service_dockerfile(relative):
    instructions = dockerfile.parse((REPO_ROOT / relative).read_text())
    stages = dockerfile.stages(instructions)
    assert stages[0].name == "builder" and len(stages) == 2
    final = stages[-1].instructions
    assert [i.value for i in final if i.keyword == "USER"] == ["10001:10001"]
    (health,) = [i for i in final if i.keyword == "HEALTHCHECK"]
    assert "/opt/objectvision/healthcheck.py" in health.value
    assert [i.value for i in final if i.keyword == "STOPSIGNAL"] == ["SIGTERM"]
    for instruction in instructions:
        if instruction.keyword in ("ENV", "ARG"):
            for key, _ in dockerfile.env_pairs(instruction):
                assert not dockerfile._SECRET_NAME.search(key), key
    package = dockerfile.SERVICE_DOCKERFILES[relative][0]
    syncs = [i.value for i in stages[0].instructions if "uv sync" in i.value]
    assert len(syncs) == 2 and all(f"--package {package}" in s and "--frozen" in s for s in syncs)


def test_rules_catch_a_bad_dockerfile(tmp_path):
    (tmp_path / ".dockerignore").write_text(".env\nsecret.txt\n")
    (tmp_path / "Makefile").write_text("UV_VERSION := 0.13.9\n")
    (tmp_path / "secret.txt").write_text("x")
    bad = tmp_path / "Dockerfile"
    bad.write_text(
        "FROM python:3.11-slim\n"
        "ENV DB_PASSWORD=hunter2\n"
        "COPY secret.txt missing.txt /app/\n"
        "USER root\n"
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
