"""One set of Prometheus rules and one dashboard for docker compose and Kubernetes.

``deploy/prometheus-rules.yml`` is the source of the rules: compose's Prometheus mounts it as
is. Kubernetes gets ``k8s/monitoring/prometheus-rules.yaml``, a PrometheusRule (Prometheus
Operator) whose ``spec`` is that file's text from ``groups:`` on, indented under ``spec:``
(comments included). ``deploy/perses/resources/dashboard-objectvision.json`` is the source of
the dashboard: compose's Perses provisions it as is, and Kubernetes gets
``k8s/monitoring/perses-dashboard.yaml``, a PersesDashboard (Perses operator) whose
``spec.config`` is the dashboard's spec (ADR 0037). ``python -m deploy_validate monitoring``
(``make monitoring-rules``) writes both; ``make k8s-validate`` fails when a generated file
differs from its source, and when a rendered overlay carries one whose spec is not the source's.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml

from deploy_validate import REPO_ROOT

RULES_FILE = REPO_ROOT / "deploy" / "prometheus-rules.yml"
PROMETHEUS_RULE_FILE = REPO_ROOT / "k8s" / "monitoring" / "prometheus-rules.yaml"
PROMETHEUS_RULE_NAME = "objectvision"
API_VERSION = "monitoring.coreos.com/v1"
DASHBOARD_FILE = REPO_ROOT / "deploy" / "perses" / "resources" / "dashboard-objectvision.json"
PERSES_DASHBOARD_FILE = REPO_ROOT / "k8s" / "monitoring" / "perses-dashboard.yaml"
PERSES_API_VERSION = "perses.dev/v1alpha2"

_HEADER = f"""\
# GENERATED from deploy/prometheus-rules.yml by `make monitoring-rules`: edit that file, then run
# it; `make k8s-validate` fails while the two differ. The same recording and alerting rules as
# docker compose's Prometheus, for the Prometheus Operator (kube-prometheus-stack), applied with
# the prod overlay (k8s/overlays/prod includes k8s/monitoring). The `release` label is what
# kube-prometheus-stack's Prometheus selects rules by (its default ruleSelector, release name
# kube-prometheus-stack), as for the ServiceMonitors in k8s/base; change both together.
# Runbooks: docs/runbooks.md.
apiVersion: {API_VERSION}
kind: PrometheusRule
metadata:
  name: {PROMETHEUS_RULE_NAME}
  labels:
    release: kube-prometheus-stack
spec:
"""


def rules() -> dict[str, Any]:
    """The source rule file, parsed."""
    return yaml.safe_load(RULES_FILE.read_text(encoding="utf-8"))


def render_prometheus_rule() -> str:
    """The PrometheusRule file's text for the current source."""
    lines = RULES_FILE.read_text(encoding="utf-8").splitlines()
    try:
        start = lines.index("groups:")
    except ValueError as error:
        raise ValueError(f"{RULES_FILE}: no top-level `groups:` line") from error
    body = [f"  {line}" if line.strip() else "" for line in lines[start:]]
    return _HEADER + "\n".join(body) + "\n"


def dashboard() -> dict[str, Any]:
    """The source dashboard, parsed."""
    source: dict[str, Any] = json.loads(DASHBOARD_FILE.read_text(encoding="utf-8"))
    return source


_DASHBOARD_HEADER = """\
# GENERATED from deploy/perses/resources/dashboard-objectvision.json by `make monitoring-rules`:
# edit that file, then run it; `make k8s-validate` fails while the two differ. The dashboard
# docker compose's Perses shows, for the Perses operator, applied with the prod overlay; the
# namespace is its Perses project. Its queries name no datasource: they use the default one of
# the Perses instance, which the operator points at the cluster's Prometheus
# (docs/deployment.md, "Dashboard"). ADR 0037.
"""


def render_perses_dashboard() -> str:
    """The PersesDashboard file's text for the current source."""
    source = dashboard()
    resource = {
        "apiVersion": PERSES_API_VERSION,
        "kind": "PersesDashboard",
        "metadata": {"name": source["metadata"]["name"]},
        "spec": {"config": source["spec"]},
    }
    return _DASHBOARD_HEADER + yaml.safe_dump(resource, sort_keys=False, width=100)


def write_generated() -> list[str]:
    """Write both generated files; their paths, relative to the repository."""
    PROMETHEUS_RULE_FILE.write_text(render_prometheus_rule(), encoding="utf-8")
    PERSES_DASHBOARD_FILE.write_text(render_perses_dashboard(), encoding="utf-8")
    written = (PROMETHEUS_RULE_FILE, PERSES_DASHBOARD_FILE)
    return [str(path.relative_to(REPO_ROOT)) for path in written]


def _drift(path: Path, generated: str, source: Path) -> list[str]:
    if not path.exists():
        return [f"{path.name} is missing: run `make monitoring-rules`"]
    if path.read_text(encoding="utf-8") != generated:
        return [f"{path.name} differs from {source.name}: run `make monitoring-rules`"]
    return []


def drift_problems() -> list[str]:
    """The checked-in generated files against their sources."""
    rule, perses_dashboard = render_prometheus_rule(), render_perses_dashboard()
    problems = []
    if yaml.safe_load(rule)["spec"] != rules():
        problems.append(f"the generator does not reproduce {RULES_FILE.name}")
    if yaml.safe_load(perses_dashboard)["spec"]["config"] != dashboard()["spec"]:
        problems.append(f"the generator does not reproduce {DASHBOARD_FILE.name}")
    problems += _drift(PROMETHEUS_RULE_FILE, rule, RULES_FILE)
    problems += _drift(PERSES_DASHBOARD_FILE, perses_dashboard, DASHBOARD_FILE)
    return problems


def rendered_rule_problems(objects: Iterable[dict[str, Any]]) -> list[str]:
    """A rendered PrometheusRule `objectvision` must carry exactly the source's rules, and a
    rendered PersesDashboard `objectvision` exactly the source dashboard."""
    rule_source, dashboard_source = rules(), dashboard()
    problems = []
    for obj in objects:
        kind, name = obj.get("kind"), obj.get("metadata", {}).get("name")
        if (
            obj.get("apiVersion") == API_VERSION
            and kind == "PrometheusRule"
            and name == PROMETHEUS_RULE_NAME
            and obj.get("spec") != rule_source
        ):
            problems.append(f"PrometheusRule/{name}: spec differs from {RULES_FILE.name}")
        if (
            obj.get("apiVersion") == PERSES_API_VERSION
            and kind == "PersesDashboard"
            and name == dashboard_source["metadata"]["name"]
            and obj.get("spec", {}).get("config") != dashboard_source["spec"]
        ):
            problems.append(f"PersesDashboard/{name}: config differs from {DASHBOARD_FILE.name}")
    return problems
