"""The whole system as real processes: infrastructure, migrations, services, gateway.

`make run` and the end-to-end tests both use this, so what the tests exercise is what a
newcomer runs. Each embedded part is skipped when its external URL is given.
"""

import logging
import os
import secrets
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from objectvision_devstack.health import grpc_serving, http_ok
from objectvision_devstack.postgres import EmbeddedPostgres
from objectvision_devstack.processes import ManagedProcess, free_port, port_open
from objectvision_devstack.redis import EmbeddedRedis
from objectvision_devstack.triton import LocalTriton

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ServiceSpec:
    """A gRPC service: its console script and the variables that name its ports."""

    name: str
    command: str
    port_variable: str
    metrics_variable: str


SERVICES = (
    ServiceSpec("auth", "objectvision-auth", "AUTH_GRPC_PORT", "AUTH_METRICS_PORT"),
    ServiceSpec(
        "detection", "objectvision-detection", "DETECTION_GRPC_PORT", "DETECTION_METRICS_PORT"
    ),
    ServiceSpec(
        "notification",
        "objectvision-notification",
        "NOTIFICATION_GRPC_PORT",
        "NOTIFICATION_METRICS_PORT",
    ),
)
SERVICE_ADDRESS_VARIABLES = {
    "auth": "AUTH_SERVICE_ADDR",
    "detection": "DETECTION_SERVICE_ADDR",
    "notification": "NOTIFICATION_SERVICE_ADDR",
}


@dataclass
class StackConfig:
    data_dir: Path
    gateway_port: int = 8000
    service_ports: Mapping[str, int] = field(default_factory=dict)
    database_url: str | None = None
    redis_url: str | None = None
    triton_url: str | None = None
    served_model: Path | None = None
    extra_env: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def from_environment(cls) -> "StackConfig":
        env = os.environ
        return cls(
            data_dir=Path(env.get("OBJECTVISION_DATA_DIR", ".data")).resolve(),
            gateway_port=int(env.get("GATEWAY_PORT", "8000")),
            service_ports={
                spec.name: int(env[spec.port_variable])
                for spec in SERVICES
                if spec.port_variable in env
            },
            database_url=env.get("DATABASE_URL") or None,
            redis_url=env.get("REDIS_URL") or None,
            triton_url=env.get("TRITON_URL") or None,
        )


def _bin(command: str) -> str:
    """A console script installed beside the running interpreter."""
    return str(Path(sys.executable).with_name(command))


class Stack:
    def __init__(self, config: StackConfig) -> None:
        self.config = config
        self.data_dir = config.data_dir
        self.logs_dir = self.data_dir / "logs"
        self.postgres = None if config.database_url else EmbeddedPostgres(self.data_dir)
        self.redis = None if config.redis_url else EmbeddedRedis(self.data_dir)
        self.served_model = config.served_model or self.data_dir / "models" / "yolov8n_served.onnx"
        self.triton = (
            None
            if config.triton_url
            else LocalTriton(self.data_dir, served_model=self.served_model)
        )
        self.service_ports = {
            spec.name: config.service_ports.get(spec.name) or free_port() for spec in SERVICES
        }
        self.smtp_port = free_port()
        self.mail_dir = self.data_dir / "mail"
        self.processes: dict[str, ManagedProcess] = {}
        self.env: dict[str, str] = {}

    @property
    def database_url(self) -> str:
        return self.config.database_url or self.postgres.url()  # type: ignore[union-attr]

    @property
    def redis_url(self) -> str:
        return self.config.redis_url or self.redis.url  # type: ignore[union-attr]

    @property
    def triton_url(self) -> str:
        return self.config.triton_url or self.triton.grpc_url  # type: ignore[union-attr]

    @property
    def gateway_url(self) -> str:
        return f"http://127.0.0.1:{self.config.gateway_port}"

    def service_address(self, name: str) -> str:
        return f"127.0.0.1:{self.service_ports[name]}"

    def _service_secret(self) -> str:
        path = self.data_dir / "keys" / "service-token-secret"
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(secrets.token_urlsafe(32))
            path.chmod(0o600)
        return path.read_text().strip()

    def _base_env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            OBJECTVISION_DATA_DIR=str(self.data_dir),
            DATABASE_URL=self.database_url,
            REDIS_URL=self.redis_url,
            TRITON_URL=self.triton_url,
            SERVICE_TOKEN_SECRET=env.get("SERVICE_TOKEN_SECRET") or self._service_secret(),
            GATEWAY_PORT=str(self.config.gateway_port),
            SERVED_MODEL_PATH=str(self.served_model),
            EMAIL_TRANSPORT=env.get("EMAIL_TRANSPORT") or "smtp",
            SMTP_HOST=env.get("SMTP_HOST") or "127.0.0.1",
            SMTP_PORT=env.get("SMTP_PORT") or str(self.smtp_port),
            PYTHONUNBUFFERED="1",
        )
        for spec in SERVICES:
            env[spec.port_variable] = str(self.service_ports[spec.name])
            env[spec.metrics_variable] = env.get(spec.metrics_variable) or str(free_port())
            env[SERVICE_ADDRESS_VARIABLES[spec.name]] = self.service_address(spec.name)
        env.update(self.config.extra_env)
        return env

    def start_infrastructure(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if self.postgres:
            self.postgres.start()
            self.processes["postgres"] = self.postgres.process
        if self.redis:
            self.redis.start()
            self.processes["redis"] = self.redis.process
        if self.triton:
            self.triton.start()
            self.processes["triton"] = self.triton.process
        self.env = self._base_env()
        if "SMTP_HOST" not in os.environ:
            self._start_mail_sink()

    def _start_mail_sink(self) -> None:
        """A local SMTP server that keeps every message as an .eml file under data_dir/mail."""
        process = ManagedProcess(
            "mail-sink",
            [
                _bin("objectvision-mail-sink"),
                "--port",
                str(self.smtp_port),
                "--directory",
                str(self.mail_dir),
            ],
            env=self.env,
            log_path=self.logs_dir / "mail-sink.log",
        )
        process.start()
        self.processes["mail-sink"] = process
        process.wait_ready(lambda: port_open("127.0.0.1", self.smtp_port), timeout=30)

    def migrate(self) -> None:
        for spec in SERVICES:
            result = subprocess.run(
                [_bin(spec.command), "migrate"], env=self.env, capture_output=True, text=True
            )
            if result.returncode != 0:
                raise RuntimeError(f"{spec.name} migrations failed:\n{result.stderr[-4000:]}")

    def service_process(self, spec: ServiceSpec) -> ManagedProcess:
        return ManagedProcess(
            spec.name,
            [_bin(spec.command), "serve"],
            env=self.env,
            log_path=self.logs_dir / f"{spec.name}.log",
        )

    def start_service(self, name: str) -> None:
        spec = next(s for s in SERVICES if s.name == name)
        process = self.service_process(spec)
        process.start()
        self.processes[name] = process
        address = self.service_address(name)
        process.wait_ready(lambda: grpc_serving(address), timeout=60)

    def start_gateway(self) -> None:
        process = ManagedProcess(
            "gateway",
            [_bin("objectvision-gateway")],
            env=self.env,
            log_path=self.logs_dir / "gateway.log",
        )
        process.start()
        self.processes["gateway"] = process
        process.wait_ready(lambda: http_ok(f"{self.gateway_url}/health"), timeout=60)

    def start_process(self, name: str) -> None:
        """Start one part again after it stopped or was killed, with its old ports, data and
        environment, and wait until it is ready: a service, the gateway, or an embedded
        PostgreSQL, Redis or Triton. For fault-injection tests and operators alike."""
        if name == "gateway":
            self.start_gateway()
        elif name in SERVICE_ADDRESS_VARIABLES:
            self.start_service(name)
        elif name == "postgres" and self.postgres:
            self.postgres.start()
            self.processes["postgres"] = self.postgres.process
        elif name == "redis" and self.redis:
            self.redis.start()
            self.processes["redis"] = self.redis.process
        elif name == "triton" and self.triton:
            self.triton.start()
            self.processes["triton"] = self.triton.process
        else:
            raise ValueError(f"{name!r} is not a part this stack started")

    def stop_process(self, name: str) -> None:
        """A graceful stop with the part's own signal (SIGTERM; SIGINT for PostgreSQL)."""
        self.processes[name].stop()

    def kill_process(self, name: str) -> None:
        """SIGKILL, as a crash or the OOM killer would."""
        self.processes[name].kill()

    def restart(self, name: str, *, kill: bool = False) -> None:
        """Stop (or kill) one part and start it again; returns once it is ready."""
        if name in self.processes:
            if kill:
                self.kill_process(name)
            else:
                self.stop_process(name)
        self.start_process(name)

    def start(self) -> None:
        self.start_infrastructure()
        self.migrate()
        for spec in SERVICES:
            self.start_service(spec.name)
        self.start_gateway()

    def stop(self) -> None:
        """Stop in reverse dependency order so in-flight requests can finish."""
        for name in ["gateway", *(s.name for s in reversed(SERVICES))]:
            if name in self.processes:
                self.processes[name].stop()
        if "mail-sink" in self.processes:
            self.processes["mail-sink"].stop()
        if self.triton:
            self.triton.stop()
        if self.redis:
            self.redis.stop()
        if self.postgres:
            self.postgres.stop()

    def exited(self) -> list[str]:
        return [name for name, process in self.processes.items() if not process.running()]
