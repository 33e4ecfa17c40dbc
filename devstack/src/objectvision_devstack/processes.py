"""Child processes that stop in order and never outlive the supervisor."""

import contextlib
import logging
import os
import pwd
import random
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

logger = logging.getLogger(__name__)


# How far below the kernel's ephemeral range listening ports are chosen.
_LISTEN_SPAN = 10_000
_handed_out: set[int] = set()


def _ephemeral_low() -> int:
    """The first port the kernel gives outgoing connections (ip_local_port_range)."""
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def _ports_in_environment() -> set[int]:
    """Ports this process's environment already gives a server (`GATEWAY_METRICS_PORT=...`):
    a parent that chose them (a test running `make run`) has not started those servers yet,
    so nothing listens there and only the environment says they are taken."""
    return {
        int(value)
        for name, value in os.environ.items()
        if name.endswith("_PORT") and value.strip().isdigit()
    }


def free_port(host: str = "127.0.0.1") -> int:
    """A port nothing listens on, for a server started next, chosen below the kernel's
    ephemeral range.

    Why not bind(0): the kernel answers from the range it also gives outgoing connections,
    and between this pick and the server's own bind any client socket of the test run can take
    the port (seen: a service of the stack failing "Address already in use" at start-up).
    Below that range only another listener can, this process never hands a port out twice,
    and it never hands out a port its environment already names (seen: `make run` under test
    gave the gateway's metrics port, chosen by the test, to another service too).
    """
    low = _ephemeral_low()
    first = max(1024, low - _LISTEN_SPAN)
    rng = random.SystemRandom()
    taken = _ports_in_environment()
    for _ in range(200):
        port = rng.randrange(first, low)
        if port in _handed_out or port in taken:
            continue
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind((host, port))
            except OSError:
                continue
        _handed_out.add(port)
        return port
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def port_open(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.2)
        return sock.connect_ex((host, port)) == 0


def launch_prefix(user: str | None, *, die_with_parent: bool = True) -> list[str]:
    """`setpriv` drops to `user` (its own group, no root groups) and asks the kernel to
    SIGTERM the child if the supervisor dies, before exec.

    Doing this with subprocess's preexec_fn forks the whole Python process, which can
    deadlock once gRPC threads exist (the health probes start them); setpriv keeps the spawn
    a plain vfork/exec.
    """
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        if user is not None:
            raise RuntimeError("running a server as another user needs setpriv (util-linux)")
        return []
    prefix = [setpriv]
    if user is not None:
        entry = pwd.getpwnam(user)
        prefix += [f"--reuid={entry.pw_uid}", f"--regid={entry.pw_gid}", "--clear-groups"]
    if die_with_parent:
        prefix += ["--pdeathsig", "TERM"]
    return [*prefix, "--"]


# PR_SET_PDEATHSIG (setpriv --pdeathsig) fires when the *thread* that forked the child ends, not
# the process: a child forked from a short-lived thread (a restart, asyncio.to_thread) would be
# sent SIGTERM as soon as that thread finished. Every child is forked from this one thread,
# which lives as long as the supervisor.
_SPAWNER = ThreadPoolExecutor(max_workers=1, thread_name_prefix="spawner")


class ManagedProcess:
    """One child with its own log file, a readiness probe and a graceful stop."""

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        *,
        log_path: Path,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
        user: str | None = None,
        stop_signal: int = signal.SIGTERM,
    ) -> None:
        self.name = name
        self.argv = list(argv)
        self.log_path = log_path
        self.env = dict(env) if env is not None else dict(os.environ)
        self.cwd = cwd
        self.user = user
        self.stop_signal = stop_signal
        self.process: subprocess.Popen[bytes] | None = None
        # Set by stop(): an exit that was asked for, which the stack's supervision leaves be.
        # An exit without it (a crash, kill -9, the OOM killer, kill()) is restarted.
        self.stopped = False
        self.started_at = 0.0

    def start(self) -> None:
        self.stopped = False
        self.started_at = time.monotonic()
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("ab")
        logger.info("starting %s: %s", self.name, " ".join(self.argv))
        try:
            self.process = _SPAWNER.submit(
                subprocess.Popen,
                [*launch_prefix(self.user), *self.argv],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=self.env,
                cwd=self.cwd,
                start_new_session=True,
            ).result()
        finally:
            log.close()

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    @property
    def returncode(self) -> int | None:
        """The exit status once the process has ended; None while it runs (or never ran)."""
        return None if self.process is None else self.process.poll()

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def wait_ready(self, probe: Callable[[], bool], *, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.running():
                raise RuntimeError(f"{self.name} exited during start-up:\n{self.log_tail()}")
            if probe():
                return
            time.sleep(0.1)
        raise TimeoutError(f"{self.name} not ready after {timeout:.0f}s:\n{self.log_tail()}")

    def stop(self, *, timeout: float = 20.0) -> None:
        self.stopped = True
        if not self.running():
            return
        assert self.process is not None
        self.process.send_signal(self.stop_signal)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            logger.warning("%s did not stop in %.0fs; killing it", self.name, timeout)
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()

    def kill(self) -> None:
        """SIGKILL to the whole process group, as a crash would: for fault-injection tests.
        Not a stop: a supervised stack restarts the part."""
        if self.running():
            assert self.process is not None
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()

    def kill_leftovers(self) -> None:
        """Once the process has exited, SIGKILL what it left behind in its process group
        (PostgreSQL backends, Triton's Python stubs), as a container runtime does when a
        container's main process dies: they would hold its ports and shared memory."""
        if self.process is None or self.process.poll() is None:
            return
        # The group keeps the leader's id while any member lives, so the id is not reused.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, signal.SIGKILL)

    def exit_description(self) -> str:
        code = self.returncode
        if code is None:
            return "running"
        if code < 0:
            return f"killed by {signal.Signals(-code).name}"
        return f"exit status {code}"

    def log_tail(self, lines: int = 40) -> str:
        if not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
