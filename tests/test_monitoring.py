"""Monitoring: the alert rules, the Grafana dashboard, and their queries against real metrics.

Static checks (no stack): promtool accepts the rules and their unit tests pass
(deploy/prometheus-rules.test.yml); every alert has a firing case there, a severity and a
runbook_url whose section exists in docs/runbooks.md; the Kubernetes PrometheusRule is the compose
rule file (k8s/monitoring, rendered by the prod overlay); compose mounts what Prometheus and
Grafana are configured to read.

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

from objectvision_devstack.api_users import fresh_network
from objectvision_devstack.health import http_ok
from objectvision_devstack.processes import ManagedProcess, free_port
from objectvision_devstack.stack import Stack
from objectvision_devstack.triton import LocalTriton

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT / "tools") not in sys.path:
    sys.path.insert(0, str(REPO_ROOT / "tools"))  # deploy_validate, as in tests/deploy

from deploy_validate import monitoring, render  # noqa: E402

RULES = REPO_ROOT / "deploy" / "prometheus-rules.yml"
RULES_TEST = REPO_ROOT / "deploy" / "prometheus-rules.test.yml"
PROMETHEUS_CONFIG = REPO_ROOT / "deploy" / "prometheus.yml"
GRAFANA = REPO_ROOT / "deploy" / "grafana"
DASHBOARDS = sorted((GRAFANA / "dashboards").glob("*.json"))
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
# Grafana's variables in panel queries, as Grafana would fill them for a short range.
GRAFANA_VARIABLES = {
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


def _panels(panels: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for panel in panels:
        yield panel
        yield from _panels(panel.get("panels") or [])


def _grafana_expr(expr: str) -> str:
    for variable, value in sorted(GRAFANA_VARIABLES.items(), key=lambda item: -len(item[0])):
        expr = expr.replace(variable, value)
    assert "$" not in expr, f"a Grafana variable this test cannot fill: {expr}"
    return expr


def _queries() -> dict[str, str]:
    """{where: PromQL} for every rule and every dashboard panel target."""
    queries = {}
    for rule in _rules():
        queries[f"rule {rule.get('alert') or rule.get('record')}"] = str(rule["expr"])
    for path in DASHBOARDS:
        dashboard = json.loads(path.read_text())
        for panel in _panels(dashboard["panels"]):
            for target in panel.get("targets") or []:
                where = f"{path.name}: panel {panel['title']!r} target {target['refId']}"
                queries[where] = _grafana_expr(target["expr"])
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


def test_compose_mounts_what_prometheus_and_grafana_read():
    compose = yaml.safe_load((REPO_ROOT / "docker-compose.yml").read_text())["services"]
    config = yaml.safe_load(PROMETHEUS_CONFIG.read_text())
    mounts = {
        volume.split(":")[1]: volume.split(":")[0] for volume in compose["prometheus"]["volumes"]
    }
    for rule_file in config["rule_files"]:
        assert (REPO_ROOT / mounts[rule_file]).resolve() == RULES, rule_file

    grafana = compose["grafana"]
    assert grafana["depends_on"] == {"prometheus": {"condition": "service_healthy"}}
    grafana_mounts = {volume.split(":")[1]: volume.split(":")[0] for volume in grafana["volumes"]}
    provisioning = REPO_ROOT / grafana_mounts["/etc/grafana/provisioning"]
    assert provisioning.resolve() == (GRAFANA / "provisioning").resolve()
    (datasource,) = yaml.safe_load((provisioning / "datasources" / "prometheus.yml").read_text())[
        "datasources"
    ]
    assert datasource["type"] == "prometheus"
    # The compose service, on the port Prometheus listens on (its own scrape job says which).
    host, port = urllib.parse.urlsplit(datasource["url"]).netloc.split(":")
    (own,) = [job for job in config["scrape_configs"] if job["job_name"] == "prometheus"]
    assert host == "prometheus" and host in compose
    assert own["static_configs"] == [{"targets": [f"127.0.0.1:{port}"]}]
    assert any(str(p).endswith(f":{port}") for p in compose["prometheus"]["ports"])
    (provider,) = yaml.safe_load((provisioning / "dashboards" / "objectvision.yml").read_text())[
        "providers"
    ]
    dashboards_dir = REPO_ROOT / grafana_mounts[provider["options"]["path"]]
    assert dashboards_dir.resolve() == (GRAFANA / "dashboards").resolve()
    home = grafana["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert home.startswith(provider["options"]["path"] + "/")
    assert (dashboards_dir / Path(home).name).is_file()
    # Read-only: anonymous viewers on 127.0.0.1, no login, no sign-up.
    assert grafana["environment"]["GF_AUTH_ANONYMOUS_ORG_ROLE"] == "Viewer"
    assert grafana["environment"]["GF_AUTH_DISABLE_LOGIN_FORM"] == "true"
    assert all(str(port).startswith("127.0.0.1:") for port in grafana["ports"])


def test_dashboard_panels_are_well_formed():
    assert [path.name for path in DASHBOARDS] == ["objectvision.json"]
    datasource_uid = yaml.safe_load(
        (GRAFANA / "provisioning" / "datasources" / "prometheus.yml").read_text()
    )["datasources"][0]["uid"]
    for path in DASHBOARDS:
        dashboard = json.loads(path.read_text())
        (variable,) = dashboard["templating"]["list"]
        assert variable["type"] == "datasource" and variable["query"] == "prometheus"
        assert variable["current"]["value"] == datasource_uid
        panels = list(_panels(dashboard["panels"]))
        ids = [panel["id"] for panel in panels]
        assert len(ids) == len(set(ids)), "panel ids must be unique"
        for panel in panels:
            assert {"h", "w", "x", "y"} <= set(panel["gridPos"]), panel["title"]
            if panel["type"] == "row":
                continue
            assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
            assert panel["targets"], panel["title"]
            refs = [target["refId"] for target in panel["targets"]]
            assert len(refs) == len(set(refs)), panel["title"]
    titles = " ".join(
        panel["title"]
        for path in DASHBOARDS
        for panel in _panels(json.loads(path.read_text())["panels"])
    )
    for needed in ("latency", "5xx", "Batch size", "GPU utilisation", "Queue depths", "Job"):
        assert needed in titles, needed


def test_every_known_external_metric_is_used():
    used = {s.metric for expr in _queries().values() for s in selectors(expr)}
    assert sorted(set(KNOWN_EXTERNAL) - used) == [], "stale KNOWN_EXTERNAL entries"


# ---- the live check -------------------------------------------------------------------------


@dataclass
class Prometheus:
    url: str
    process: ManagedProcess

    def get(self, path: str, **params: Any) -> Any:
        response = httpx.get(f"{self.url}{path}", params=params, timeout=30.0)
        body = response.json()
        assert body.get("status") == "success", f"{path} {params}: {body}"
        return body["data"]


def _static_jobs(config: dict[str, Any]) -> list[dict[str, Any]]:
    """The jobs of deploy/prometheus.yml with listed targets (not those found by DNS)."""
    return [job for job in config["scrape_configs"] if "static_configs" in job]


def _scrape_targets(stack: Stack, triton: LocalTriton, own: str) -> dict[str, str]:
    """host:port of every job of deploy/prometheus.yml in the running stack."""
    gateway_metrics = getattr(stack, "gateway_metrics_url", stack.gateway_url)
    return {
        "prometheus": own,
        "gateway": urllib.parse.urlsplit(gateway_metrics).netloc,
        "auth-service": f"127.0.0.1:{stack.env['AUTH_METRICS_PORT']}",
        "detection-service": f"127.0.0.1:{stack.env['DETECTION_METRICS_PORT']}",
        "notification-service": f"127.0.0.1:{stack.env['NOTIFICATION_METRICS_PORT']}",
        "triton": f"127.0.0.1:{triton.metrics_port}",
    }


@pytest.fixture(scope="module")
def prometheus(
    stack: Stack, triton: LocalTriton, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Prometheus]:
    binary = shutil.which("prometheus")
    if binary is None:
        pytest.fail("prometheus not found: apt-get install prometheus (CI's image has it)")
    directory = tmp_path_factory.mktemp("prometheus")
    port = free_port()
    targets = _scrape_targets(stack, triton, f"127.0.0.1:{port}")
    config = yaml.safe_load(PROMETHEUS_CONFIG.read_text())
    config["global"]["scrape_interval"] = f"{SCRAPE_INTERVAL_SECONDS}s"
    config["global"]["evaluation_interval"] = f"{SCRAPE_INTERVAL_SECONDS}s"
    config["rule_files"] = [str(RULES)]
    # Jobs found by DNS (detection-realtime: compose profile realtime only) have no target in
    # this stack, which does not run the realtime role; the listed ones are pointed at it.
    config["scrape_configs"] = _static_jobs(config)
    for job in config["scrape_configs"]:
        name = job["job_name"]
        assert name in targets, f"deploy/prometheus.yml job {name}: teach this test its address"
        job.pop("scrape_interval", None)
        job["static_configs"] = [{"targets": [targets[name]]}]
    (directory / "prometheus.yml").write_text(yaml.safe_dump(config))
    process = ManagedProcess(
        "prometheus",
        [
            binary,
            f"--config.file={directory / 'prometheus.yml'}",
            f"--storage.tsdb.path={directory / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--log.level=warn",
        ],
        log_path=directory / "prometheus.log",
    )
    process.start()
    try:
        url = f"http://127.0.0.1:{port}"
        process.wait_ready(lambda: http_ok(f"{url}/-/ready"), timeout=60)
        yield Prometheus(url, process)
    finally:
        process.stop()


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
        detected = client.post(
            "/api/v1/detect/image",
            files={"file": ("noise.jpg", _jpeg(1), "image/jpeg")},
            headers=user,
        )
        assert detected.status_code == 200, detected.text
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


def _wait_for_scrapes(prometheus: Prometheus, jobs: set[str], since: float) -> None:
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


def test_every_rule_and_panel_query_selects_scraped_metrics(stack: Stack, prometheus: Prometheus):
    config = yaml.safe_load(PROMETHEUS_CONFIG.read_text())
    jobs = {job["job_name"] for job in _static_jobs(config)}
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
        "up",
    ):
        assert expected in checked, expected

    # The backlog gauges are measured from every store the stack has: both outboxes, the job
    # stream's group in detection-service and the events stream's in notification-service.
    def measured(metric: str, *labels: str) -> set[tuple[str, ...]]:
        result = prometheus.get("/api/v1/query", query=metric)["result"]
        return {tuple(series["metric"][label] for label in labels) for series in result}

    assert measured("objectvision_outbox_backlog_age_seconds", "job", "outbox") == {
        ("auth-service", "auth"),
        ("detection-service", "detection"),
    }
    assert {job for (job,) in measured("objectvision_stream_backlog_age_seconds", "job")} == {
        "detection-service",
        "notification-service",
    }
