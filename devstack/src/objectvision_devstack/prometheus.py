"""A real Prometheus (Debian's `prometheus` binary) scraping a local stack, as compose's does.

It reads deploy/prometheus.yml, the file compose mounts, and points each listed job at the
stack's own address for it, so the scrape jobs, their names and the alert rules are those an
operator runs. Used by tests/test_monitoring.py (every rule and dashboard query against what
it scraped) and tools/dashboard_screenshot.py (the dashboard in docs/, drawn from it).
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import httpx
import yaml

from objectvision_devstack.health import http_ok
from objectvision_devstack.processes import ManagedProcess, free_port
from objectvision_devstack.stack import Stack
from objectvision_devstack.triton import LocalTriton

INSTALL_HINT = "apt-get install prometheus (make rules-check installs it)"


class PrometheusMissing(RuntimeError):
    """Debian's prometheus package is not installed."""


def static_jobs(config: dict[str, Any]) -> list[dict[str, Any]]:
    """The jobs of a Prometheus config with listed targets (not those found by DNS)."""
    return [job for job in config["scrape_configs"] if "static_configs" in job]


def scrape_targets(stack: Stack, triton: LocalTriton, own: str) -> dict[str, str]:
    """host:port of every job of deploy/prometheus.yml in the running ``stack``."""
    return {
        "prometheus": own,
        "gateway": f"127.0.0.1:{stack.gateway_metrics_port}",
        "auth-service": f"127.0.0.1:{stack.env['AUTH_METRICS_PORT']}",
        "detection-service": f"127.0.0.1:{stack.env['DETECTION_METRICS_PORT']}",
        "notification-service": f"127.0.0.1:{stack.env['NOTIFICATION_METRICS_PORT']}",
        "triton": f"127.0.0.1:{triton.metrics_port}",
    }


class LocalPrometheus:
    """Prometheus on a free loopback port, its data in ``directory``, scraping ``stack``."""

    def __init__(
        self,
        directory: Path,
        *,
        config: Path,
        rules: Path,
        stack: Stack,
        triton: LocalTriton,
        scrape_interval_s: int,
    ) -> None:
        binary = shutil.which("prometheus")
        if binary is None:
            raise PrometheusMissing(f"prometheus not found: {INSTALL_HINT}")
        self.directory = directory
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.config = self._config(config, rules, stack, triton, scrape_interval_s)
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "prometheus.yml").write_text(yaml.safe_dump(self.config))
        self.process = ManagedProcess(
            "prometheus",
            [
                binary,
                f"--config.file={directory / 'prometheus.yml'}",
                f"--storage.tsdb.path={directory / 'data'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
                "--log.level=warn",
            ],
            log_path=directory / "prometheus.log",
        )

    def _config(
        self, path: Path, rules: Path, stack: Stack, triton: LocalTriton, interval_s: int
    ) -> dict[str, Any]:
        targets = scrape_targets(stack, triton, f"127.0.0.1:{self.port}")
        config: dict[str, Any] = yaml.safe_load(path.read_text())
        config["global"]["scrape_interval"] = f"{interval_s}s"
        config["global"]["evaluation_interval"] = f"{interval_s}s"
        config["rule_files"] = [str(rules)]
        # Jobs found by DNS (detection-realtime: compose profile realtime only) have no target
        # in this stack, which does not run the realtime role; the listed ones point at it.
        config["scrape_configs"] = static_jobs(config)
        for job in config["scrape_configs"]:
            name = job["job_name"]
            if name not in targets:
                raise ValueError(f"{path} job {name}: teach scrape_targets its address")
            job.pop("scrape_interval", None)
            job["static_configs"] = [{"targets": [targets[name]]}]
        return config

    def start(self) -> None:
        self.process.start()
        self.process.wait_ready(lambda: http_ok(f"{self.url}/-/ready"), timeout=60)

    def stop(self) -> None:
        self.process.stop()

    def get(self, path: str, **params: Any) -> Any:
        """The ``data`` of an HTTP API answer; an unsuccessful answer raises."""
        response = httpx.get(f"{self.url}{path}", params=params, timeout=30.0)
        body = response.json()
        if body.get("status") != "success":
            raise RuntimeError(f"Prometheus {path} {params}: {body}")
        return body["data"]

    def __enter__(self) -> LocalPrometheus:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
