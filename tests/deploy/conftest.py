"""Deployment files, validated statically: no Docker engine, no cluster, no network.

The validators live in tools/deploy_validate (a plain package, not a workspace member), so
this puts tools/ on sys.path. Tests needing the schema packages (kubernetes-validate,
check-jsonschema, jsonschema; root dev dependency group) skip when they are not installed.
"""

import sys
from pathlib import Path
from typing import Any

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
TOOLS = REPO_ROOT / "tools"
if str(TOOLS) not in sys.path:
    sys.path.insert(0, str(TOOLS))

from deploy_validate import kustomize  # noqa: E402
from deploy_validate.k8s import K8S_DIR, OVERLAYS  # noqa: E402


@pytest.fixture(scope="session")
def rendered() -> dict[str, list[dict[str, Any]]]:
    """Every overlay rendered with the Python renderer (what works on any machine)."""
    return {name: kustomize.render_python(K8S_DIR / "overlays" / name) for name in OVERLAYS}
