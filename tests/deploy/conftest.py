"""Deployment files, validated statically: no Docker engine, no cluster, no network.

The validators live in tools/deploy_validate (a plain package, not a workspace member), so
this puts tools/ on sys.path. The overlays are rendered by `kubectl kustomize`: without
kubectl these tests fail, saying what to install, rather than skip.
"""

import sys
from pathlib import Path
from typing import Any

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
TOOLS = REPO_ROOT / "tools"
if str(TOOLS) not in sys.path:
    sys.path.insert(0, str(TOOLS))

from deploy_validate import render  # noqa: E402
from deploy_validate.k8s import K8S_DIR, OVERLAYS  # noqa: E402


@pytest.fixture(scope="session")
def rendered() -> dict[str, list[dict[str, Any]]]:
    """Every overlay as `kubectl kustomize` renders it."""
    try:
        return {name: render.render(K8S_DIR / "overlays" / name) for name in OVERLAYS}
    except render.KubectlMissing as error:
        pytest.fail(str(error), pytrace=False)
