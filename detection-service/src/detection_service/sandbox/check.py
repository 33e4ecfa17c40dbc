"""Does the confinement hold on this kernel? Found out once, at start (ADR 0041).

A child confines itself as every sandbox child does (sandbox/confinement.py) and then tries
what a decoder taken over would: open a socket, read the storage directory, create a file
beside it, start a program and a process, signal the service. What got through is logged and
exported per layer (`detection_sandbox_confined`), and with SANDBOX_REQUIRE_CONFINEMENT a
reason not to start: an operator learns what the kernel enforces before a user's file does.
"""

import asyncio
import json
import logging
import os
import socket
import sys
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from detection_service.sandbox import channel
from detection_service.sandbox.confinement import Confinement, Layer, confine
from detection_service.sandbox.limits import SandboxLimits

if TYPE_CHECKING:
    from prometheus_client import Gauge

logger = logging.getLogger(__name__)

_MODULE = "detection_service.sandbox.check"


@dataclass(frozen=True)
class ConfinementCheck:
    """What a child confined as every sandbox child is found it could still do: the layers
    the kernel applied, and the attempts (named as in `_ATTEMPTS`) that were not refused."""

    confinement: Confinement
    still_allowed: tuple[str, ...]

    def holds(self, layer: Layer) -> bool:
        """The layer was applied and refused every attempt it is there to refuse."""
        return self.confinement.applied(layer) and not any(
            _ATTEMPTS[name][0] is layer for name in self.still_allowed
        )

    @property
    def sound(self) -> bool:
        return all(self.holds(layer) for layer in Layer) and not self.still_allowed

    def describe(self) -> str:
        allowed = ", ".join(self.still_allowed) or "nothing it tried"
        return f"{self.confinement.describe()}; still allowed: {allowed}"


def check_confinement(limits: SandboxLimits, *, protected: Path) -> ConfinementCheck:
    """Start a child that confines itself as every sandbox child does, then tries what a
    decoder taken over would: open a socket, read `protected` (the storage directory), create a file
    beside it, start a program and a process, signal the service (blocking: call in a
    thread). Run once at start, so that an operator sees what this kernel enforces."""
    child = channel.start(_MODULE, "check", {"protected": str(protected)}, limits)
    assert child.stdout is not None
    with child.stdout:
        header = channel.read_header(child.stdout)
    ended = channel.how_it_ended(child)
    try:
        assert header is not None
        found = header["confinement"]
        return ConfinementCheck(
            confinement=Confinement(
                syscalls_filtered=bool(found["syscalls_filtered"]),
                landlock_abi=int(found["landlock_abi"]),
            ),
            still_allowed=tuple(
                name for name in map(str, header["still_allowed"]) if name in _ATTEMPTS
            ),
        )
    except (AssertionError, KeyError, TypeError, ValueError):
        raise RuntimeError(f"the sandbox check did not answer: {ended}") from None


async def check_sandbox(
    limits: SandboxLimits, *, protected: Path, confined: "Gauge"
) -> ConfinementCheck:
    """At start: find out what this kernel lets the sandbox children (videos, annotated
    images) give up, log it and export it per layer (1: applied and holding); with
    `limits.require_confinement`, RuntimeError where it does not hold, so that the service
    does not start."""
    check = await asyncio.to_thread(check_confinement, limits, protected=protected)
    for layer in Layer:
        confined.labels(layer=layer.value).set(int(check.holds(layer)))
    if check.sound:
        logger.info("decoder sandbox confined: %s", check.describe())
    elif limits.require_confinement:
        raise RuntimeError(
            "SANDBOX_REQUIRE_CONFINEMENT is on and this kernel does not confine the"
            f" decoder sandbox: {check.describe()}"
        )
    else:
        logger.warning(
            "decoder sandbox not fully confined; uploads are decoded with the rest of the"
            " sandbox (ADR 0040, 0041): %s",
            check.describe(),
        )
    return check


def _refused(attempt: Callable[[Path], object], protected: Path) -> bool:
    """Whether the kernel refused the attempt (EPERM or EACCES), as confinement does."""
    try:
        attempt(protected)
    except PermissionError:
        return True
    except OSError:
        return False  # got past the refusal (to a missing file, say): not refused
    return False


def _read(protected: Path) -> None:
    if protected.is_dir():
        os.listdir(protected)
    else:
        protected.read_bytes()


def _create_beside(protected: Path) -> None:
    directory = protected if protected.is_dir() else protected.parent
    created = directory / f".sandbox-check-{os.getpid()}"
    os.close(os.open(created, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
    created.unlink()


def _start_process(_protected: Path) -> None:
    if os.fork() == 0:
        os._exit(0)
    os.wait()


def _start_program(_protected: Path) -> None:
    # A program that does not exist: refused means the filter stopped the call before the
    # kernel looked for it (FileNotFoundError would mean it got that far).
    os.execv("/nonexistent/program", ["program"])  # noqa: S606 (no shell: the call is the test)


def _open_socket(_protected: Path) -> None:
    socket.socket(socket.AF_INET, socket.SOCK_STREAM).close()


def _signal_parent(_protected: Path) -> None:
    # Signal 0 only asks whether the parent may be signalled.
    os.kill(os.getppid(), 0)


# What a decoder taken over would try, each given the protected path, and the layer that is
# there to refuse it.
_ATTEMPTS: Mapping[str, tuple[Layer, Callable[[Path], object]]] = {
    "network": (Layer.SYSCALL_FILTER, _open_socket),
    "reading the storage": (Layer.FILE_RULES, _read),
    "creating a file": (Layer.FILE_RULES, _create_beside),
    "starting a program": (Layer.SYSCALL_FILTER, _start_program),
    "starting a process": (Layer.SYSCALL_FILTER, _start_process),
    "signalling the service": (Layer.SYSCALL_FILTER, _signal_parent),
}


def _child_check(request: Mapping[str, Any], confinement: Confinement, out: IO[bytes]) -> None:
    protected = Path(request["protected"])
    still_allowed = [
        name for name, (_layer, attempt) in _ATTEMPTS.items() if not _refused(attempt, protected)
    ]
    channel.send(out, {"confinement": asdict(confinement), "still_allowed": still_allowed})


def main() -> None:
    """`python -m detection_service.sandbox.check check`, the request on stdin."""
    request = json.loads(sys.stdin.buffer.read())
    channel.limit_self(request["limits"])
    _child_check(request, confine(None), sys.stdout.buffer)


if __name__ == "__main__":
    main()
