"""The runner's order of start and stop, and the background loops' two ways of stopping."""

import asyncio
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from objectvision_common.background import BackgroundLoop
from objectvision_common.grpc_server import ServiceRegistration
from objectvision_common.peer_policy import PeerPolicy
from objectvision_common.runner import Migrations, ServiceParts, ServiceRunner, service_app


@dataclass
class Settings:
    log_level: str = "INFO"
    log_json: bool = False
    database_url: str = "postgresql+asyncpg://unused/unused"
    bind_host: str = "127.0.0.1"
    grpc_port: int = 0
    metrics_port: int = 0
    grpc_health_port: int = 0
    grpc_shutdown_grace_seconds: float = 0.5
    grpc_max_connection_age_seconds: float = 0.0
    grpc_tls: None = None
    grpc_allowed_peers: PeerPolicy = field(default_factory=PeerPolicy)


def _add(_servicer: object, _server: object) -> None:
    return None


@dataclass
class Events:
    seen: list[str] = field(default_factory=list)


class Polite(BackgroundLoop):
    """Finishes the item in hand, then returns."""

    def __init__(self, events: Events) -> None:
        self.events = events

    async def _loop(self) -> None:
        self.events.seen.append("polite runs")
        while not self.stopping:
            await self.pause(10)
        self.events.seen.append("polite returned")


class Deaf(BackgroundLoop):
    """Ignores stop(): the runner must cancel it after the grace period."""

    def __init__(self, events: Events) -> None:
        self.events = events

    async def _loop(self) -> None:
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            self.events.seen.append("deaf cancelled")
            raise


class Abrupt(BackgroundLoop):
    cancel_on_stop = True

    async def _loop(self) -> None:
        await asyncio.sleep(3600)


def _parts(events: Events, *workers: BackgroundLoop) -> ServiceParts:
    async def opened() -> None:
        events.seen.append("on_start")

    async def closed() -> None:
        events.seen.append("on_close")

    return ServiceParts(
        registrations=[ServiceRegistration("test.Nothing", object(), _add)],
        workers=workers,
        on_start=[opened],
        on_close=[closed],
    )


async def test_workers_start_after_the_server_and_stop_before_the_close_hooks() -> None:
    events = Events()
    app = service_app(Settings(), _parts(events, Polite(events), Deaf(events)))
    port = await app.start()
    assert port > 0
    await asyncio.sleep(0.05)
    assert events.seen[:2] == ["on_start", "polite runs"]
    started = asyncio.get_running_loop().time()
    await app.stop()
    elapsed = asyncio.get_running_loop().time() - started
    assert events.seen[-3:] == ["polite returned", "deaf cancelled", "on_close"]
    assert elapsed < 5, "the deaf worker was cancelled at the grace period"


async def test_only_the_first_of_several_serving_processes_runs_the_workers() -> None:
    events = Events()
    app = service_app(Settings(), _parts(events, Polite(events)), serving_index=1)
    await app.start()
    await asyncio.sleep(0.05)
    await app.stop()
    assert "polite runs" not in events.seen
    assert app.server.metrics_port == 0 and app.server.reuse_port


async def test_a_policy_for_methods_the_server_does_not_have_stops_the_start() -> None:
    """The settings' peer policy reaches the server, which refuses a list meant for another
    service before it binds a port (the runner's stand-in names only test.Nothing)."""
    policy = PeerPolicy.parse("gateway=/objectvision.v1.AuthService/GetUser")
    app = service_app(Settings(grpc_allowed_peers=policy), _parts(Events()))
    assert app.server.allowed_peers is policy
    with pytest.raises(
        ValueError, match=r"GRPC_ALLOWED_PEERS names methods of objectvision\.v1\.AuthService,"
    ):
        await app.start()
    assert app.server.server is None


async def test_a_loop_stopped_before_it_ran_returns_at_once() -> None:
    loop = Polite(Events())
    loop.stop()
    await asyncio.wait_for(loop.run(), timeout=1)


async def test_cancel_on_stop_ends_the_loop_where_it_waits() -> None:
    loop = Abrupt()
    task = asyncio.create_task(loop.run())
    await asyncio.sleep(0.01)
    loop.stop()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(task, timeout=1)


def test_the_command_line_offers_serve_and_migrate(capsys: pytest.CaptureFixture[str]) -> None:
    async def build(_settings: Settings) -> ServiceParts:
        raise AssertionError("not reached")

    runner = ServiceRunner(
        name="test-service",
        prog="objectvision-test",
        settings=Settings,
        build=build,
        migrations=Migrations(Path("unused"), schema="unused"),
    )
    with pytest.raises(SystemExit):
        runner.main(["--help"])
    assert "{serve,migrate}" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        runner.main(["bogus"])
