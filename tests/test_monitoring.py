"""Monitoring: the alert rules, the Perses dashboard, and their queries against real metrics.

Static checks (no stack): promtool accepts the rules and their unit tests pass
(deploy/prometheus-rules.test.yml); every alert has a firing case there, a severity and a
runbook_url whose section exists in docs/runbooks.md; the Kubernetes PrometheusRule is the compose
rule file (k8s/monitoring, rendered by the prod overlay); compose mounts what Prometheus and
Perses are configured to read, and the dashboard's layout places every panel once.

The live check: a real Prometheus (the Debian `prometheus` binary) scrapes the whole stack of
tests/conftest.py, with the jobs of deploy/prometheus.yml pointed at the stack's ports, while
traffic goes through every layer (sign-up, login, one detection, a batch job, webhooks). Then
every rule expression and every dashboard query is evaluated through Prometheus' HTTP API, and
each metric it selects must be one the scrape produced, with the label names its matchers use
(and, for the labels naming a thing rather than an outcome, such as job or model, the values).
A renamed metric or label fails here. Metrics that only exist in Kubernetes or on a GPU are
listed in KNOWN_EXTERNAL with the reason; nothing else is exempt.
"""

import json
import re
import shutil
import subprocess
import sys
import time
import urllib.parse
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import httpx
import numpy as np
import pytest
import yaml
from websockets.sync.client import connect

from objectvision_devstack.api_users import fresh_network
from objectvision_devstack.prometheus import LocalPrometheus, PrometheusMissing, static_jobs
from objectvision_devstack.stack import Stack
from objectvision_devstack.triton import LocalTriton

from .conftest import SHARED_IMAGES

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT / "tools") not in sys.path:
    sys.path.insert(0, str(REPO_ROOT / "tools"))  # deploy_validate, as in tests/deploy

from deploy_validate import k8s, monitoring, render  # noqa: E402

RULES = REPO_ROOT / "deploy" / "prometheus-rules.yml"
RULES_TEST = REPO_ROOT / "deploy" / "prometheus-rules.test.yml"
PROMETHEUS_CONFIG = REPO_ROOT / "deploy" / "prometheus.yml"
PERSES = REPO_ROOT / "deploy" / "perses"
PERSES_RESOURCES = PERSES / "resources"
DASHBOARDS = sorted(PERSES_RESOURCES.glob("dashboard-*.json"))
RUNBOOKS = REPO_ROOT / "docs" / "runbooks.md"
RUNBOOK_BASE = "https://github.com/objectvision/objectvision/blob/main/docs/runbooks.md#"
SEVERITIES = {"critical", "warning"}

# Selected by a rule or a panel, never produced by the stack this test runs.
KNOWN_EXTERNAL = {
    **dict.fromkeys(
        (
            "kube_horizontalpodautoscaler_status_current_replicas",
            "kube_horizontalpodautoscaler_spec_max_replicas",
            "kube_pod_init_container_status_restarts_total",
            "kube_pod_init_container_status_waiting_reason",
            "kube_pod_init_container_status_running",
        ),
        "kube-state-metrics: Kubernetes objects (HPAs, Triton's init containers) only",
    ),
    **dict.fromkeys(
        (
            "certmanager_certificate_expiration_timestamp_seconds",
            "certmanager_certificate_ready_status",
        ),
        "cert-manager's controller: the prod overlay's Certificates only",
    ),
    **dict.fromkeys(
        ("nv_gpu_utilization", "nv_gpu_memory_used_bytes", "nv_gpu_memory_total_bytes"),
        "Triton's GPU metrics: only a Triton on a GPU exports them (the test Triton is CPU)",
    ),
}
# Labels whose values name a thing (a scrape job, a model, an RPC), not an outcome: an equality
# matcher on one must match a scraped series, or the query silently selects nothing.
IDENTITY_LABELS = {"job", "model", "grpc_service", "grpc_method"}
# Perses' built-in variables in panel queries, as Perses would fill them for a short range.
DASHBOARD_VARIABLES = {
    "$__rate_interval": "1m",
    "${__rate_interval}": "1m",
    "$__interval": "15s",
    "${__interval}": "15s",
    "$__range": "1h",
}
SCRAPE_INTERVAL_SECONDS = 1


# ---- a small PromQL reader: which metrics and matchers a query selects -----------------------

_TOKEN = re.compile(
    r"""
    (?P<space>\s+)
    | (?P<comment>\#[^\n]*)
    | (?P<string>"(?:\\.|[^"\\])*"|'(?:\\.|[^'\\])*'|`[^`]*`)
    | (?P<number>(?:0x[0-9a-fA-F]+|(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?)
        (?:(?:ms|[smhdwy])(?:[0-9]+(?:ms|[smhdwy]))*)?)
    | (?P<ident>[a-zA-Z_:][a-zA-Z0-9_:]*)
    | (?P<op>=~|!~|!=|==|>=|<=|[-+*/%^=<>(){}\[\],:@])
    """,
    re.VERBOSE,
)
_AGGREGATIONS = {
    "sum",
    "min",
    "max",
    "avg",
    "group",
    "stddev",
    "stdvar",
    "count",
    "count_values",
    "bottomk",
    "topk",
    "quantile",
    "limitk",
    "limit_ratio",
}
_KEYWORDS = _AGGREGATIONS | {"and", "or", "unless", "bool", "offset", "atan2", "inf", "nan"}
_GROUPING = {"by", "without", "on", "ignoring", "group_left", "group_right"}


@dataclass(frozen=True)
class Selector:
    metric: str
    matchers: tuple[tuple[str, str, str], ...] = field(default=())


def _tokens(expr: str) -> list[tuple[str, str]]:
    tokens, position = [], 0
    while position < len(expr):
        match = _TOKEN.match(expr, position)
        if match is None:
            raise ValueError(f"cannot read {expr[position : position + 20]!r} in {expr!r}")
        kind = match.lastgroup or ""
        if kind not in ("space", "comment"):
            tokens.append((kind, match.group()))
        position = match.end()
    return tokens


def _skip_group(tokens: list[tuple[str, str]], index: int, opening: str, closing: str) -> int:
    """The index after the bracket that closes the one at `index`."""
    depth = 0
    for position in range(index, len(tokens)):
        if tokens[position][1] == opening:
            depth += 1
        elif tokens[position][1] == closing:
            depth -= 1
            if depth == 0:
                return position + 1
    raise ValueError(f"unbalanced {opening}")


def _matchers(tokens: list[tuple[str, str]], index: int) -> tuple[list[tuple[str, str, str]], int]:
    """Matchers from the token after `{` up to `}`; returns them and the index after `}`."""
    found = []
    while tokens[index][1] != "}":
        if tokens[index][1] == ",":
            index += 1
            continue
        (_, name), (_, op), (_, value) = tokens[index : index + 3]
        found.append((name.strip("\"'`"), op, value[1:-1]))
        index += 3
    return found, index + 1


def selectors(expr: str) -> list[Selector]:
    """Every vector or range selector of a PromQL expression."""
    tokens = _tokens(expr)
    found: list[Selector] = []
    index = 0
    while index < len(tokens):
        kind, text = tokens[index]
        following = tokens[index + 1][1] if index + 1 < len(tokens) else ""
        if text == "[":
            index = _skip_group(tokens, index, "[", "]")
        elif kind == "ident" and text.lower() in _GROUPING:
            index = _skip_group(tokens, index + 1, "(", ")") if following == "(" else index + 1
        elif kind == "ident" and (text.lower() in _KEYWORDS or following == "("):
            index += 1  # an operator, an aggregation or a function
        elif kind == "ident":
            matchers: list[tuple[str, str, str]] = []
            index += 1
            if following == "{":
                matchers, index = _matchers(tokens, index + 1)
            found.append(Selector(text, tuple(matchers)))
        elif text == "{":
            matchers, index = _matchers(tokens, index + 1)
            names = [value for name, op, value in matchers if name == "__name__" and op == "="]
            if not names:
                raise ValueError(f"a selector without a metric name in {expr!r}")
            rest = tuple(m for m in matchers if m[0] != "__name__")
            found.append(Selector(names[0], rest))
        else:
            index += 1
    return found


def test_the_promql_reader_finds_metrics_and_matchers():
    expr = (
        "histogram_quantile(0.99, sum by (namespace, le) (rate(http_request_duration_seconds_bucket"
        '{route!~"/users/{id}", status=~"5.."}[5m])))'
        " > 2.5 and on (job) sum without (le) (rate(x:y:rate5m[1m:10s] offset 1h)) > bool 1e3"
        ' unless {__name__="up", job="gateway"} or vector(0) * time()'
    )
    assert selectors(expr) == [
        Selector(
            "http_request_duration_seconds_bucket",
            (("route", "!~", "/users/{id}"), ("status", "=~", "5..")),
        ),
        Selector("x:y:rate5m"),
        Selector("up", (("job", "=", "gateway"),)),
    ]
    assert selectors("sum(rate(grpc_server_handled_total[5m])) by (grpc_code) / 60") == [
        Selector("grpc_server_handled_total")
    ]


# ---- what the rules and the dashboard query -------------------------------------------------


def _rules() -> list[dict[str, Any]]:
    document = yaml.safe_load(RULES.read_text())
    return [rule for group in document["groups"] for rule in group["rules"]]


def _alerts() -> list[dict[str, Any]]:
    return [rule for rule in _rules() if "alert" in rule]


def _dashboard_panels(path: Path) -> dict[str, dict[str, Any]]:
    """{key: panel spec} of one Perses dashboard."""
    panels: dict[str, dict[str, Any]] = {
        key: panel["spec"] for key, panel in json.loads(path.read_text())["spec"]["panels"].items()
    }
    return panels


def _dashboard_expr(expr: str) -> str:
    for variable, value in sorted(DASHBOARD_VARIABLES.items(), key=lambda item: -len(item[0])):
        expr = expr.replace(variable, value)
    assert "$" not in expr, f"a dashboard variable this test cannot fill: {expr}"
    return expr


def _queries() -> dict[str, str]:
    """{where: PromQL} for every rule and every query of a dashboard panel."""
    queries = {}
    for rule in _rules():
        queries[f"rule {rule.get('alert') or rule.get('record')}"] = str(rule["expr"])
    for path in DASHBOARDS:
        for panel in _dashboard_panels(path).values():
            for number, query in enumerate(panel["queries"]):
                where = f"{path.name}: panel {panel['display']['name']!r} query {number}"
                queries[where] = _dashboard_expr(query["spec"]["plugin"]["spec"]["query"])
    return queries


# ---- static checks --------------------------------------------------------------------------


def _promtool() -> str:
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.fail("promtool not found: apt-get install prometheus (CI's image has it)")
    return promtool


def test_promtool_checks_the_rules():
    result = subprocess.run(
        [_promtool(), "check", "rules", str(RULES)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_alert_passes_its_promtool_unit_tests():
    result = subprocess.run(
        [_promtool(), "test", "rules", str(RULES_TEST)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_alert_has_a_firing_unit_test():
    tested = yaml.safe_load(RULES_TEST.read_text())
    fired = {
        case["alertname"]
        for test in tested["tests"]
        for case in test.get("alert_rule_test") or []
        if case.get("exp_alerts")
    }
    names = [rule["alert"] for rule in _alerts()]
    assert len(names) == len(set(names)), "alert names must be unique"
    assert sorted(set(names) - fired) == []
    assert sorted(fired - set(names)) == []


def _runbook_anchors() -> set[str]:
    """GitHub's anchors of docs/runbooks.md's headings (lowercase, spaces to dashes)."""
    anchors = set()
    for line in RUNBOOKS.read_text().splitlines():
        if line.startswith("#"):
            title = line.lstrip("#").strip().lower()
            anchors.add(re.sub(r"[^a-z0-9_ -]", "", title).replace(" ", "-"))
    return anchors


def test_every_alert_has_a_severity_a_summary_and_a_runbook_section():
    anchors = _runbook_anchors()
    for alert in _alerts():
        name = alert["alert"]
        assert alert["labels"]["severity"] in SEVERITIES, name
        annotations = alert["annotations"]
        assert annotations["summary"] and annotations["description"], name
        url = annotations["runbook_url"]
        assert url == RUNBOOK_BASE + name.lower(), f"{name}: runbook_url {url}"
        assert name.lower() in anchors, f"docs/runbooks.md has no section {name}"


def test_the_kubernetes_prometheus_rule_is_the_compose_rule_file():
    assert monitoring.drift_problems() == []
    source = yaml.safe_load(RULES.read_text())
    objects = render.render(REPO_ROOT / "k8s" / "overlays" / "prod")
    (rule,) = [o for o in objects if o["kind"] == "PrometheusRule"]
    assert rule["metadata"]["namespace"] == "objectvision"
    assert rule["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    assert rule["spec"] == source
    # The same selector label as the ServiceMonitors, so the same Prometheus picks both up.
    monitors = [o for o in objects if o["kind"] == "ServiceMonitor"]
    assert monitors
    for monitor in monitors:
        assert monitor["metadata"]["labels"]["release"] == rule["metadata"]["labels"]["release"]
    dev = render.render(REPO_ROOT / "k8s" / "overlays" / "dev")
    assert not [o for o in dev if o["kind"] == "PrometheusRule"], "dev has no Operator CRDs"


def test_the_kubernetes_perses_dashboard_is_the_compose_dashboard():
    (path,) = DASHBOARDS
    source = json.loads(path.read_text())
    objects = render.render(REPO_ROOT / "k8s" / "overlays" / "prod")
    (dashboard,) = [o for o in objects if o["kind"] == "PersesDashboard"]
    # The namespace is the Perses project, as compose's project resource names it.
    assert dashboard["metadata"]["namespace"] == _resource("project.json")["metadata"]["name"]
    assert dashboard["metadata"]["name"] == source["metadata"]["name"]
    assert dashboard["spec"]["config"] == source["spec"]
    # The operator's own CRD schema accepts it, and refuses a malformed one.
    assert k8s.schema_errors([dashboard], versions=[]) == []
    broken = json.loads(json.dumps(dashboard))
    broken["spec"]["config"]["layouts"][0]["kind"] = 7
    assert k8s.schema_errors([broken], versions=[]) != []
    dev = render.render(REPO_ROOT / "k8s" / "overlays" / "dev")
    assert not [o for o in dev if o["kind"] == "PersesDashboard"], "dev has no Operator CRDs"


def _resource(name: str) -> dict[str, Any]:
    resource: dict[str, Any] = json.loads((PERSES_RESOURCES / name).read_text())
    return resource


def test_compose_mounts_what_prometheus_and_perses_read():
    compose = yaml.safe_load((REPO_ROOT / "docker-compose.yml").read_text())["services"]
    config = yaml.safe_load(PROMETHEUS_CONFIG.read_text())
    mounts = {
        volume.split(":")[1]: volume.split(":")[0] for volume in compose["prometheus"]["volumes"]
    }
    for rule_file in config["rule_files"]:
        assert (REPO_ROOT / mounts[rule_file]).resolve() == RULES, rule_file

    perses = compose["perses"]
    assert perses["image"].startswith("persesdev/perses:v")
    assert perses["depends_on"] == {"prometheus": {"condition": "service_healthy"}}
    perses_mounts = {volume.split(":")[1]: volume.split(":")[0] for volume in perses["volumes"]}
    (config_flag,) = [arg for arg in perses["command"] if arg.startswith("--config=")]
    config_path = config_flag.removeprefix("--config=")
    assert (REPO_ROOT / perses_mounts[config_path]).resolve() == (PERSES / "config.yaml").resolve()
    perses_config = yaml.safe_load((PERSES / "config.yaml").read_text())
    (folder,) = perses_config["provisioning"]["folders"]
    assert (REPO_ROOT / perses_mounts[folder]).resolve() == PERSES_RESOURCES.resolve()
    # Read-only: the API refuses writes; reachable on 127.0.0.1 only.
    assert perses_config["security"]["readonly"] is True
    assert all(str(port).startswith("127.0.0.1:") for port in perses["ports"])

    # The datasource is the compose Prometheus, on the port it listens on (its own scrape job
    # says which), with Prometheus' scrape interval (Perses derives $__rate_interval from it).
    datasource = _resource("datasource-prometheus.json")
    assert datasource["kind"] == "GlobalDatasource" and datasource["spec"]["default"] is True
    prometheus_spec = datasource["spec"]["plugin"]["spec"]
    assert datasource["spec"]["plugin"]["kind"] == "PrometheusDatasource"
    assert prometheus_spec["scrapeInterval"] == config["global"]["scrape_interval"]
    host, port = urllib.parse.urlsplit(prometheus_spec["proxy"]["spec"]["url"]).netloc.split(":")
    (own,) = [job for job in config["scrape_configs"] if job["job_name"] == "prometheus"]
    assert host == "prometheus" and host in compose
    assert own["static_configs"] == [{"targets": [f"127.0.0.1:{port}"]}]
    assert any(str(p).endswith(f":{port}") for p in compose["prometheus"]["ports"])

    # Every dashboard belongs to the provisioned project; the home page lists them.
    project = _resource("project.json")
    assert project["kind"] == "Project"
    names = set()
    for path in DASHBOARDS:
        metadata = json.loads(path.read_text())["metadata"]
        assert metadata["project"] == project["metadata"]["name"]
        assert path.name == f"dashboard-{metadata['name']}.json"
        names.add(metadata["name"])
    listed = perses_config["frontend"]["important_dashboards"]
    assert {entry["dashboard"] for entry in listed} == names
    assert {entry["project"] for entry in listed} == {project["metadata"]["name"]}


# Perses' units (@perses-dev/core) the panels use; a misspelt one is drawn as a plain number.
PERSES_UNITS = {"decimal", "percent-decimal", "seconds", "bytes", "requests/sec", "ops/sec"}
GRID_COLUMNS = 24


def _layout_items(path: Path) -> Iterator[tuple[str, dict[str, Any]]]:
    """(section title, item) for every panel placement of a dashboard's grid layouts."""
    for layout in json.loads(path.read_text())["spec"]["layouts"]:
        assert layout["kind"] == "Grid"
        for item in layout["spec"]["items"]:
            yield layout["spec"]["display"]["title"], item


def test_dashboard_panels_are_well_formed():
    assert [path.name for path in DASHBOARDS] == ["dashboard-objectvision.json"]
    for path in DASHBOARDS:
        dashboard = json.loads(path.read_text())
        assert dashboard["kind"] == "Dashboard"
        panels = _dashboard_panels(path)
        # Every panel is placed exactly once, inside the 24 columns, without overlapping
        # another of its section.
        placed = []
        cells: dict[str, set[tuple[int, int]]] = {}
        for section, item in _layout_items(path):
            key = item["content"]["$ref"].removeprefix("#/spec/panels/")
            assert key in panels, f"{section}: no panel {key}"
            placed.append(key)
            assert item["x"] >= 0 and item["x"] + item["width"] <= GRID_COLUMNS, key
            area = {
                (item["x"] + column, item["y"] + row)
                for column in range(item["width"])
                for row in range(item["height"])
            }
            taken = cells.setdefault(section, set())
            assert not area & taken, f"{section}: {key} overlaps another panel"
            taken |= area
        assert sorted(placed) == sorted(panels), "every panel placed once"
        for key, panel in panels.items():
            plugin = panel["plugin"]
            assert plugin["kind"] in {"TimeSeriesChart", "StatChart"}, key
            unit = (plugin["spec"].get("yAxis") or plugin["spec"])["format"]["unit"]
            assert unit in PERSES_UNITS, f"{key}: unit {unit}"
            assert panel["queries"], key
            for query in panel["queries"]:
                assert query["kind"] == "TimeSeriesQuery", key
                assert query["spec"]["plugin"]["kind"] == "PrometheusTimeSeriesQuery", key
                # No datasource named: the default one, the provisioned Prometheus.
                assert "datasource" not in query["spec"]["plugin"]["spec"], key
    titles = " ".join(
        panel["display"]["name"]
        for path in DASHBOARDS
        for panel in _dashboard_panels(path).values()
    )
    for needed in ("latency", "5xx", "Batch size", "GPU utilisation", "Queue depths", "Job"):
        assert needed in titles, needed


def test_every_known_external_metric_is_used():
    used = {s.metric for expr in _queries().values() for s in selectors(expr)}
    assert sorted(set(KNOWN_EXTERNAL) - used) == [], "stale KNOWN_EXTERNAL entries"


# ---- the live check -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def prometheus(
    stack: Stack, triton: LocalTriton, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LocalPrometheus]:
    try:
        server = LocalPrometheus(
            tmp_path_factory.mktemp("prometheus"),
            config=PROMETHEUS_CONFIG,
            rules=RULES,
            stack=stack,
            triton=triton,
            scrape_interval_s=SCRAPE_INTERVAL_SECONDS,
        )
    except PrometheusMissing as exc:
        pytest.fail(f"{exc} (CI's image has it)")
    with server:
        yield server


def _jpeg(seed: int) -> bytes:
    pixels = np.random.default_rng(seed).integers(0, 256, (240, 320, 3), dtype=np.uint8)
    ok, encoded = cv2.imencode(".jpg", pixels)
    assert ok
    return encoded.tobytes()


def _traffic(stack: Stack) -> None:
    """One request through every layer, so that every labelled series exists."""
    with httpx.Client(base_url=stack.gateway_url, timeout=60.0) as client:
        email = f"monitoring-{uuid.uuid4().hex}@example.com"
        address = fresh_network()
        password = "correct horse battery"
        signed_up = client.post(
            "/api/v1/auth/signup",
            json={"email": email, "password": password, "name": "Monitoring"},
            headers=address,
        )
        assert signed_up.status_code == 202, signed_up.text
        tokens = client.post(
            "/api/v1/auth/login", json={"email": email, "password": password}, headers=address
        )
        assert tokens.status_code == 200, tokens.text
        user = {"Authorization": f"Bearer {tokens.json()['access_token']}"}
        assert client.get("/api/v1/users/me", headers=user).status_code == 200
        assert client.get("/api/v1/webhooks", headers=user).status_code == 200
        assert client.get("/api/v1/no-such-route").status_code == 404
        # A picture with objects in it: the per-class series of what the models see (ADR 0057)
        # exist once a class has been detected.
        detected = client.post(
            "/api/v1/detect/image",
            files={"file": ("bus.jpg", (SHARED_IMAGES / "bus.jpg").read_bytes(), "image/jpeg")},
            headers=user,
        )
        assert detected.status_code == 200, detected.text
        assert detected.json()["detections"], "bus.jpg has objects"
        # One live detection stream with a frame each way it can be answered: its frames'
        # outcomes are series of their own.
        live_url = stack.gateway_url.replace("http://", "ws://") + "/api/v1/ws/detect"
        with connect(live_url, additional_headers=user, open_timeout=10) as live:
            live.send(json.dumps({}))
            assert json.loads(live.recv(timeout=60))["type"] == "ready"
            live.send((SHARED_IMAGES / "bus.jpg").read_bytes())
            live.send(b"not an image")
            live.send(json.dumps({"type": "end"}))
            answers = [json.loads(live.recv(timeout=60))["type"] for _ in range(3)]
        assert answers == ["detections", "frame_error", "ended"], answers
        submitted = client.post(
            "/api/v1/detect/batch",
            files=[("files", (f"noise-{i}.jpg", _jpeg(i), "image/jpeg")) for i in (2, 3)],
            headers=user,
        )
        assert submitted.status_code == 202, submitted.text
        job_id = submitted.json()["job_id"]
        deadline = time.monotonic() + 60
        while True:
            job = client.get(f"/api/v1/detect/jobs/{job_id}", headers=user).json()
            if job["status"] in ("completed", "failed"):
                break
            assert time.monotonic() < deadline, f"job still {job['status']}"
            time.sleep(0.2)


def _wait_for_scrapes(prometheus: LocalPrometheus, jobs: set[str], since: float) -> None:
    """Every job scraped successfully after `since` (and the rules evaluated on that)."""
    deadline = time.monotonic() + 60
    while True:
        result = prometheus.get("/api/v1/query", query="max by (job) (timestamp(up == 1))")
        fresh = {s["metric"]["job"] for s in result["result"] if float(s["value"][1]) > since}
        if fresh >= jobs:
            time.sleep(3 * SCRAPE_INTERVAL_SECONDS)  # the rules' next evaluations
            return
        if time.monotonic() > deadline:
            targets = prometheus.get("/api/v1/targets", state="active")["activeTargets"]
            errors = {t["labels"]["job"]: t.get("lastError") for t in targets}
            pytest.fail(f"not scraped since the traffic: {sorted(jobs - fresh)}: {errors}")
        time.sleep(0.5)


def test_every_rule_and_panel_query_selects_scraped_metrics(
    stack: Stack, prometheus: LocalPrometheus
):
    config = yaml.safe_load(PROMETHEUS_CONFIG.read_text())
    jobs = {job["job_name"] for job in static_jobs(config)}
    _traffic(stack)
    _wait_for_scrapes(prometheus, jobs, since=time.time())

    # The real Prometheus loaded every rule and evaluates it without an error.
    groups = prometheus.get("/api/v1/rules")["groups"]
    loaded = {rule["name"]: rule for group in groups for rule in group["rules"]}
    for rule in _rules():
        name = rule.get("alert") or rule.get("record")
        assert name in loaded, f"Prometheus did not load rule {name}"
        assert loaded[name]["health"] == "ok", (name, loaded[name].get("lastError"))

    scraped = set(prometheus.get("/api/v1/label/__name__/values"))
    recorded = {rule["record"] for rule in _rules() if "record" in rule}
    labels_of: dict[str, dict[str, set[str]]] = {}
    problems = []
    for where, expr in _queries().items():
        result = httpx.get(f"{prometheus.url}/api/v1/query", params={"query": expr}, timeout=30)
        if result.json().get("status") != "success":
            problems.append(f"{where}: Prometheus refuses the query: {result.json()}")
            continue
        for selector in selectors(expr):
            metric = selector.metric
            if metric in KNOWN_EXTERNAL or metric in recorded:
                continue
            if metric not in scraped:
                problems.append(f"{where}: {metric} is not among the scraped metrics")
                continue
            if metric not in labels_of:
                series = prometheus.get("/api/v1/series", **{"match[]": metric})
                labels_of[metric] = {}
                for labels in series:
                    for label, value in labels.items():
                        labels_of[metric].setdefault(label, set()).add(value)
            for label, op, value in selector.matchers:
                if label not in labels_of[metric]:
                    problems.append(f"{where}: {metric} has no label {label}")
                elif (
                    op == "=" and label in IDENTITY_LABELS and value not in labels_of[metric][label]
                ):
                    problems.append(
                        f"{where}: no {metric} series with {label}={value!r} "
                        f"(scraped: {sorted(labels_of[metric][label])})"
                    )
    assert problems == [], "\n".join(problems)
    # Guard against a reader that finds nothing: the stack's own metrics were all checked.
    checked = set(labels_of)
    for expected in (
        "http_requests_total",
        "grpc_server_handled_total",
        "detection_queue_wait_seconds_bucket",
        "detection_batch_size_bucket",
        "detection_job_items_total",
        "nv_inference_queue_duration_us",
        "nv_inference_pending_request_count",
        "objectvision_outbox_backlog_age_seconds",
        "objectvision_outbox_unpublished_events",
        "objectvision_stream_backlog_age_seconds",
        "objectvision_stream_pending_entries",
        "objectvision_stream_length",
        "notification_deliveries_dead_total",
        "notification_webhooks_disabled_total",
        "gateway_job_streams_open",
        "gateway_live_detect_streams_open",
        "gateway_live_detect_frames_total",
        "up",
    ):
        assert expected in checked, expected
    # The live stream's two frames are the two outcomes the frames panel splits by.
    outcomes = prometheus.get("/api/v1/query", query="gateway_live_detect_frames_total")["result"]
    assert {series["metric"]["outcome"] for series in outcomes} == {"detected", "frame_error"}

    # The backlog gauges are measured from every store the stack has: the three outboxes, the
    # job stream's group in detection-service and the events stream's in notification-service.
    def measured(metric: str, *labels: str) -> set[tuple[str, ...]]:
        result = prometheus.get("/api/v1/query", query=metric)["result"]
        return {tuple(series["metric"][label] for label in labels) for series in result}

    assert measured("objectvision_outbox_backlog_age_seconds", "job", "outbox") == {
        ("auth-service", "auth"),
        ("detection-service", "detection"),
        ("notification-service", "notification"),
    }
    assert {job for (job,) in measured("objectvision_stream_backlog_age_seconds", "job")} == {
        "detection-service",
        "notification-service",
    }
