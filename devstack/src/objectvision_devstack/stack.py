"""The whole system as real processes: infrastructure, migrations, services, gateway.

`make run` and the end-to-end tests both use this, so what the tests exercise is what a
newcomer runs. Each embedded part is skipped when its external URL is given.
"""

import logging
import os
import secrets
import subprocess
import sys
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from objectvision_devstack.health import grpc_serving, http_ok
from objectvision_devstack.postgres import EmbeddedPostgres
from objectvision_devstack.processes import ManagedProcess, free_port, port_open
from objectvision_devstack.redis import EmbeddedRedis
from objectvision_devstack.supervision import Supervisor
from objectvision_devstack.triton import LocalTriton, otlp_http_traces_url, served_model_path

Item = TypeVar("Item")
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
    # /ready and /metrics (GATEWAY_METRICS_PORT); None: a free port.
    gateway_metrics_port: int | None = None
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
            gateway_metrics_port=int(env.get("GATEWAY_METRICS_PORT", "9100")),
            service_ports={
                spec.name: int(env[spec.port_variable])
                for spec in SERVICES
                if spec.port_variable in env
            },
            database_url=env.get("DATABASE_URL") or None,
            redis_url=env.get("REDIS_URL") or None,
            triton_url=env.get("TRITON_URL") or None,
        )


def _all_at_once(step: Callable[[Item], None], items: Iterable[Item]) -> None:
    """`step` for every item in threads of its own, returning once all are done; the first
    failure is raised, after the others have finished (none is left running behind it)."""
    items = list(items)
    with ThreadPoolExecutor(max_workers=len(items) or 1) as pool:
        futures = [pool.submit(step, item) for item in items]
    for future in futures:
        future.result()


def embedded(component: Item | None, what: str) -> Item:
    """The embedded component that stands for a URL left unset; one that was never started
    (a URL was given after all) is a mistake in the caller's wiring, said so."""
    if component is None:
        raise RuntimeError(f"no {what} URL was given and no embedded {what} was started")
    return component


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
            else LocalTriton(
                self.data_dir,
                served_model=self.served_model,
                # Triton's spans join the services' traces when they trace (ADR 0013).
                trace_url=otlp_http_traces_url({**os.environ, **config.extra_env}),
            )
        )
        self.service_ports = {
            spec.name: config.service_ports.get(spec.name) or free_port() for spec in SERVICES
        }
        self.gateway_metrics_port = config.gateway_metrics_port or free_port()
        self.smtp_port = free_port()
        self.mail_dir = self.data_dir / "mail"
        self.processes: dict[str, ManagedProcess] = {}
        self.env: dict[str, str] = {}
        self._locks: dict[str, threading.RLock] = {}
        self._locks_guard = threading.Lock()
        self.supervision = Supervisor(
            parts=lambda: self.processes,
            start_part=self._start_part,
            latest=self._latest,
            part_lock=self._part_lock,
        )

    @property
    def database_url(self) -> str:
        return self.config.database_url or embedded(self.postgres, "PostgreSQL").url()

    @property
    def redis_url(self) -> str:
        return self.config.redis_url or embedded(self.redis, "Redis").url

    @property
    def triton_url(self) -> str:
        return self.config.triton_url or embedded(self.triton, "Triton").grpc_url

    @property
    def gateway_url(self) -> str:
        return f"http://127.0.0.1:{self.config.gateway_port}"

    @property
    def gateway_metrics_url(self) -> str:
        """The gateway's operations listener: /ready, /metrics and /health."""
        return f"http://127.0.0.1:{self.gateway_metrics_port}"

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
            # Links in emails and webhooks open this stack's console, whatever its port.
            PUBLIC_BASE_URL=env.get("PUBLIC_BASE_URL") or self.gateway_url,
            SERVED_MODEL_PATH=str(self.served_model),
            EMAIL_TRANSPORT=env.get("EMAIL_TRANSPORT") or "smtp",
            SMTP_HOST=env.get("SMTP_HOST") or "127.0.0.1",
            SMTP_PORT=env.get("SMTP_PORT") or str(self.smtp_port),
            GATEWAY_METRICS_PORT="0",  # the stack's gateway gets its own in start_gateway
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
        """Every service's migrations, all at once: each owns its schema and version table,
        so they touch nothing in common, and a start spends its time in Python's imports."""

        def run(spec: ServiceSpec) -> None:
            result = subprocess.run(
                [_bin(spec.command), "migrate"], env=self.env, capture_output=True, text=True
            )
            if result.returncode != 0:
                raise RuntimeError(f"{spec.name} migrations failed:\n{result.stderr[-4000:]}")

        _all_at_once(run, SERVICES)

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
        # Only this gateway's: self.env says 0 (no metrics listener), so another gateway
        # started from it (tests start some) finds no port taken.
        env = {**self.env, "GATEWAY_METRICS_PORT": str(self.gateway_metrics_port)}
        process = ManagedProcess(
            "gateway",
            [_bin("objectvision-gateway")],
            env=env,
            log_path=self.logs_dir / "gateway.log",
        )
        process.start()
        self.processes["gateway"] = process
        process.wait_ready(
            lambda: (
                http_ok(f"{self.gateway_url}/health")
                and http_ok(f"{self.gateway_metrics_url}/health")
            ),
            timeout=60,
        )

    def start_process(self, name: str) -> None:
        """Start one part again after it stopped or was killed, with its old ports, data and
        environment, and wait until it is ready: a service, the gateway, the mail sink, or an
        embedded PostgreSQL, Redis or Triton. For fault-injection tests and operators alike.
        A part that is running already (supervision restarted it) is left as it is."""
        with self._part_lock(name):
            if name in self.processes and self.processes[name].running():
                return
            self._start_part(name)

    def _part_lock(self, name: str) -> threading.RLock:
        with self._locks_guard:
            return self._locks.setdefault(name, threading.RLock())

    def _start_part(self, name: str) -> None:
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
        elif name == "mail-sink" and "mail-sink" in self.processes:
            self._start_mail_sink()
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

    @contextmanager
    def running(self) -> Iterator["Stack"]:
        """The whole stack started for the block and stopped after it, also when starting
        failed half way (what did start is stopped): how tests hold a stack of their own."""
        try:
            self.start()
            yield self
        finally:
            self.stop()

    def start(self) -> None:
        """Infrastructure, migrations, then the services side by side (none needs another to
        start: they call each other per request), then the gateway once they all serve."""
        self.start_infrastructure()
        self.migrate()
        _all_at_once(lambda spec: self.start_service(spec.name), SERVICES)
        self.start_gateway()

    def stop(self) -> None:
        """Stop in reverse dependency order so in-flight requests can finish. Supervision ends
        first; a restart under way is let finish (its part is then stopped like the rest)."""
        self.supervision.close()

        def stop(name: str) -> None:
            with self._part_lock(name):
                process = self._latest(name)
                if process is not None:
                    process.stop()

        # The gateway first, then the services together (each drains its own calls), then
        # what they used.
        stop("gateway")
        _all_at_once(stop, [*(s.name for s in reversed(SERVICES)), "mail-sink"])
        for name in ("triton", "redis", "postgres"):
            stop(name)

    def _latest(self, name: str) -> ManagedProcess | None:
        """The part's newest process, even one whose start failed before it was listed."""
        embedded = {"postgres": self.postgres, "redis": self.redis, "triton": self.triton}
        server = embedded.get(name)
        if server is not None:
            return server.process
        return self.processes.get(name)

    # ------------------------------------------------------------ supervision

    def supervise(self) -> None:
        """Restart every part that exits without being stopped (supervision.Supervisor: with
        backoff, on the part's ports, with its data and environment; a part counts as up once
        its readiness probe passes). Work in flight resumes as it would in a cluster:
        unacknowledged jobs are reclaimed from the Redis stream, stale ones requeued from
        PostgreSQL."""
        self.supervision.start()

    @property
    def restarts(self) -> dict[str, int]:
        """Restarts supervision did per part, for logs and tests."""
        return self.supervision.restarts

    def exited(self) -> list[str]:
        return [name for name, process in self.processes.items() if not process.running()]


@contextmanager
def stack_with_triton(
    data_dir: Path, *, extra_env: Mapping[str, str], triton_trace_url: str | None = None
) -> Iterator[tuple[Stack, LocalTriton]]:
    """A Triton serving `make model`'s graph and a Stack inferring on it, on free ports, both
    stopped on exit: the system of its own a screenshot tool starts."""
    model = served_model_path()
    triton = LocalTriton(data_dir / "triton", served_model=model, trace_url=triton_trace_url)
    stack = Stack(
        StackConfig(
            data_dir=data_dir / "stack",
            gateway_port=free_port(),
            triton_url=triton.grpc_url,
            served_model=model,
            extra_env=extra_env,
        )
    )
    try:
        print("starting Triton and the system (a minute or two) ...", flush=True)
        triton.start()
        stack.start()
        yield stack, triton
    finally:
        stack.stop()
        triton.stop()
