"""One way to run a gRPC service: `objectvision-<service> [serve|migrate]`.

Why one runner: each service used to parse its own arguments, set up logging and tracing,
start its own server and stop its own background tasks, and each did it slightly
differently (one waited for its workers, another cancelled them, a third never did). Here a
service names its settings class, its migrations and a build function; everything about
running it - the command line, logging and tracing, the gRPC server with health,
reflection and metrics, background workers, the order of shutdown, several serving
processes behind one port - is decided once.

The order a service starts and stops in, the same for all:

1. ``build(settings)`` constructs every part (clients, servicers, workers) and connects nothing
   that needs the server; it returns a :class:`ServiceParts`.
2. ``on_start`` hooks run (e.g. starting an inference batcher), then the gRPC server starts,
   then the background workers: a worker never runs in a process that could not serve.
3. On SIGTERM/SIGINT the server reports NOT_SERVING and drains its calls; then every worker
   is asked to ``stop()``, is given the grace period to return, and is cancelled after it;
   then ``on_close`` hooks release the clients in the order given.

Example (a service's ``server.py``)::

    async def build(settings: AuthSettings) -> ServiceParts:
        stores = Stores.from_settings(settings)  # objectvision_common.stores
        ...
        return ServiceParts(registrations=[...], workers=[relay], on_close=[stores.close])

    def runner() -> ServiceRunner[AuthSettings]:
        return ServiceRunner(
            name="auth-service", prog="objectvision-auth", settings=AuthSettings,
            build=build, migrations=Migrations(MIGRATIONS_DIR, schema=SCHEMA),
        )

    def main(argv: Sequence[str] | None = None) -> None:
        runner().main(argv)
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import logging
import signal
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Generic, Protocol, TypeVar

from objectvision_common.grpc_server import GrpcApp, ServiceRegistration
from objectvision_common.logging import configure_logging
from objectvision_common.peer_policy import PeerPolicy
from objectvision_common.process_group import run_process_group
from objectvision_common.tls import TlsFiles
from objectvision_common.tracing import configure_tracing

logger = logging.getLogger(__name__)

COMMANDS = ("serve", "migrate")


class BackgroundWorker(Protocol):
    """A loop that runs beside the server (outbox relay, job consumers) until stopped.

    ``stop()`` asks the loop to return; one that has not returned within the grace period is
    cancelled, so a loop may finish the item in hand but must tolerate cancellation.
    """

    async def run(self) -> None: ...

    def stop(self) -> None: ...


class ServedSettings(Protocol):
    """What the runner reads from a service's settings (a `GrpcServiceSettings` subclass
    with its own port variables)."""

    @property
    def log_level(self) -> str: ...
    @property
    def log_json(self) -> bool: ...
    @property
    def database_url(self) -> str: ...
    @property
    def bind_host(self) -> str: ...
    @property
    def grpc_port(self) -> int: ...
    @property
    def metrics_port(self) -> int: ...
    @property
    def grpc_health_port(self) -> int: ...
    @property
    def grpc_shutdown_grace_seconds(self) -> float: ...
    @property
    def grpc_max_connection_age_seconds(self) -> float: ...
    @property
    def grpc_tls(self) -> TlsFiles | None: ...
    @property
    def grpc_allowed_peers(self) -> PeerPolicy: ...


S = TypeVar("S", bound=ServedSettings)
Hook = Callable[[], Awaitable[None]]


@dataclass(frozen=True)
class ServiceParts:
    """What a service's build function hands the runner.

    ``on_start`` runs before the server accepts calls; ``on_close`` after the server drained
    and the workers stopped, in the order given (release what was built last first).
    """

    registrations: Sequence[ServiceRegistration]
    workers: Sequence[BackgroundWorker] = ()
    on_start: Sequence[Hook] = ()
    on_close: Sequence[Hook] = ()


@dataclass(frozen=True)
class Migrations:
    """A service's Alembic folder and the database schema it owns."""

    directory: Path
    schema: str

    def upgrade(self, database_url: str) -> None:
        # Imported here, not with the runner: a service with no database (detection's realtime
        # role, ADR 0019) is run by this module in an environment without SQLAlchemy or Alembic.
        from objectvision_common.db import upgrade_to_head

        upgrade_to_head(
            migrations_dir=self.directory, database_url=database_url, schema=self.schema
        )

    def require_migrated(self, database_url: str, *, migrate_command: str) -> None:
        """Refuse to serve on a schema this version's migrations have not reached: the process
        exits saying what to run, instead of answering every call with an error about a
        missing table or column. A schema a newer version migrated (a rollback) is served with
        a warning; a database that cannot be reached now is left to the outage handling that
        every call has, so a database outage does not become a crash loop."""
        from sqlalchemy.exc import DBAPIError

        from objectvision_common.db import schema_revisions

        try:
            state = schema_revisions(
                migrations_dir=self.directory, database_url=database_url, schema=self.schema
            )
        except DBAPIError as exc:  # unreachable, refused, not allowed to read the table
            logger.warning(
                "could not check the database schema's revision; serving",
                extra={"schema": self.schema, "error": str(exc).splitlines()[0]},
            )
            return
        if state.ahead:
            logger.warning(
                "the database schema was migrated by a newer version; serving",
                extra={"schema": self.schema, "applied": sorted(state.applied)},
            )
        elif state.behind:
            applied = ", ".join(sorted(state.applied)) or "no revision (never migrated)"
            raise SystemExit(
                f"the database schema {self.schema!r} is at {applied}; this version needs "
                f"{', '.join(sorted(state.heads))}. Run `{migrate_command}` first (in Kubernetes "
                "the objectvision-migrate Job, in docker compose the migrate service)."
            )


@dataclass
class ServiceApp:
    """One process's server and workers: `run()` serves until SIGTERM/SIGINT; tests
    `start()` and `stop()` it."""

    parts: ServiceParts
    server: GrpcApp
    run_workers: bool = True
    stop_grace_seconds: float = 10.0
    tasks: list[asyncio.Task[None]] = field(default_factory=list)

    async def start(self) -> int:
        """Start hooks, then the server, then the workers; the bound port."""
        for hook in self.parts.on_start:
            await hook()
        port = await self.server.start()
        if self.run_workers:
            for worker in self.parts.workers:
                task = asyncio.create_task(worker.run(), name=type(worker).__name__)
                task.add_done_callback(_log_worker_exit)
                self.tasks.append(task)
        return port

    async def stop(self) -> None:
        """Drain the calls, stop the workers within the grace period, then release."""
        await self.server.stop()
        await self._stop_workers()
        for hook in self.parts.on_close:
            await hook()
        logger.info("service stopped")

    async def _stop_workers(self) -> None:
        """The one place background work ends: ask, wait up to the grace period, cancel."""
        if not self.tasks:
            return
        for worker in self.parts.workers:
            worker.stop()
        _, pending = await asyncio.wait(self.tasks, timeout=self.stop_grace_seconds)
        for task in pending:
            logger.warning(
                "worker did not stop in time; cancelling", extra={"task": task.get_name()}
            )
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        self.tasks.clear()

    async def run(self) -> None:
        # Handlers first: a probe can see SERVING before start() returns, and a SIGTERM that
        # came in that gap would otherwise kill the process without draining.
        stopping = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stopping.set)
        await self.start()
        assert self.server.server is not None
        waiter = asyncio.ensure_future(self.server.server.wait_for_termination())
        stopper = asyncio.ensure_future(stopping.wait())
        await asyncio.wait({waiter, stopper}, return_when=asyncio.FIRST_COMPLETED)
        # Stop before cancelling the waiter: grpc's shutdown shares the future it waits on.
        if stopping.is_set():
            await self.stop()
        waiter.cancel()
        stopper.cancel()


def _log_worker_exit(task: asyncio.Task[None]) -> None:
    """A worker that dies on its own is logged at once, not found at shutdown."""
    if not task.cancelled() and task.exception() is not None:
        logger.error("worker stopped", exc_info=task.exception(), extra={"task": task.get_name()})


def service_app(
    settings: ServedSettings, parts: ServiceParts, *, serving_index: int | None = None
) -> ServiceApp:
    """The server of this process from the settings.

    ``serving_index`` when the process is one of several serving processes: all share the
    port (SO_REUSEPORT), only the first runs the background workers and the health port,
    none serves metrics (the parent serves them, merged).
    """
    first = serving_index in (None, 0)
    server = GrpcApp(
        registrations=parts.registrations,
        host=settings.bind_host,
        port=settings.grpc_port,
        metrics_port=settings.metrics_port if serving_index is None else 0,
        shutdown_grace_seconds=settings.grpc_shutdown_grace_seconds,
        tls=settings.grpc_tls,
        health_port=(settings.grpc_health_port or None) if first else None,
        max_connection_age_seconds=settings.grpc_max_connection_age_seconds,
        reuse_port=serving_index is not None,
        allowed_peers=settings.grpc_allowed_peers,
    )
    return ServiceApp(
        parts, server, run_workers=first, stop_grace_seconds=settings.grpc_shutdown_grace_seconds
    )


@dataclass(frozen=True)
class ServiceRunner(Generic[S]):
    """How one service is run; its `main()` is the service's console script.

    ``settings``, ``build`` and ``serving_processes`` must be importable by name (classes or
    module-level functions, no lambdas): with several serving processes the runner itself
    is handed to each spawned process.
    """

    name: str
    prog: str
    settings: Callable[[], S]
    build: Callable[[S], Awaitable[ServiceParts]]
    # None: the service keeps no database (`migrate` has nothing to do).
    migrations: Migrations | None
    # How many serving processes the settings ask for; None: always one.
    serving_processes: Callable[[S], int] | None = None

    def main(self, argv: Sequence[str] | None = None) -> None:
        parser = argparse.ArgumentParser(prog=self.prog, description=f"ObjectVision {self.name}.")
        parser.add_argument(
            "command",
            nargs="?",
            default="serve",
            choices=COMMANDS,
            help="serve: the gRPC server and its background workers (the default); "
            "migrate: bring the database schema to the latest revision",
        )
        arguments = parser.parse_args(argv)
        settings = self.settings()
        self.configure_logging(settings)
        if arguments.command == "migrate":
            self.migrate(settings)
            return
        if self.migrations is not None:
            self.migrations.require_migrated(
                settings.database_url, migrate_command=f"{self.prog} migrate"
            )
        processes = self.serving_processes(settings) if self.serving_processes else 1
        if processes > 1:
            raise SystemExit(
                run_process_group(
                    functools.partial(_serve_one_of_several, self),
                    count=processes,
                    metrics_host=settings.bind_host,
                    metrics_port=settings.metrics_port,
                )
            )
        self.serve_with_tracing(settings)

    def configure_logging(self, settings: S) -> None:
        configure_logging(self.name, level=settings.log_level, json_output=settings.log_json)

    def migrate(self, settings: S) -> None:
        if self.migrations is None:
            logger.info("this service keeps no database: nothing to migrate")
            return
        self.migrations.upgrade(settings.database_url)
        logger.info("schema is at head", extra={"schema": self.migrations.schema})

    async def app(self, settings: S, *, serving_index: int | None = None) -> ServiceApp:
        return service_app(settings, await self.build(settings), serving_index=serving_index)

    async def serve(self, settings: S, *, serving_index: int | None = None) -> None:
        await (await self.app(settings, serving_index=serving_index)).run()

    def serve_with_tracing(self, settings: S, *, serving_index: int | None = None) -> None:
        """Tracing is installed before anything connects (see tracing.py), flushed at exit."""
        flush_traces = configure_tracing(self.name)
        try:
            asyncio.run(self.serve(settings, serving_index=serving_index))
        finally:
            flush_traces()


def _serve_one_of_several(runner: ServiceRunner[S], index: int) -> None:
    """A spawned serving process (process_group): settings from the same environment."""
    settings = runner.settings()
    runner.configure_logging(settings)
    runner.serve_with_tracing(settings, serving_index=index)
