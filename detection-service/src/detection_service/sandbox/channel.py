"""How the service starts a sandbox child and how the two talk, for every kind of child.

A child is `python -m <module> <mode>`, started with an environment of only what an
interpreter needs (no secret of the service's is inherited) and its stderr shared with the
service, so a decoder's own complaints reach the service log. Messages either way are four
bytes of length, a JSON header, then the raw bytes the header announces. Neither side ever
unpickles or evaluates what the other says: the parent treats anything that is not a message
as a crashed child.
"""

import json
import os
import resource
import signal
import struct
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import asdict
from typing import IO, Any

from detection_service.sandbox.limits import SandboxLimits
from objectvision_common.errors import (
    DomainError,
    InvalidArgument,
    PayloadTooLarge,
    UnsupportedMediaType,
)

_LENGTH = struct.Struct(">I")
# A header is a few numbers and a message; anything longer is not one.
_MAX_HEADER_BYTES = 64 * 1024
# What a child may tell the parent went wrong with the file, by the error code it names.
_REFUSALS: Mapping[str, type[DomainError]] = {
    error.code: error for error in (InvalidArgument, PayloadTooLarge, UnsupportedMediaType)
}
# How long a child that stopped answering has to exit before it is killed.
_EXIT_WAIT_S = 5.0
# Only what a Python interpreter needs to start: no secret of the service's environment.
_PASSED_ENVIRONMENT = ("PATH", "PYTHONPATH", "LANG", "LC_ALL", "TZ")
# The child's exit status when SANDBOX_REQUIRE_CONFINEMENT is on and the kernel could
# not confine it: it has not read what it was started for.
UNCONFINED_EXIT = 78


def spawn(
    module: str, mode: str, *, environment: Mapping[str, str] | None = None
) -> "subprocess.Popen[bytes]":
    """The child, with pipes to its stdin and stdout and only `environment` beside the
    interpreter's own variables."""
    passed = {name: os.environ[name] for name in _PASSED_ENVIRONMENT if name in os.environ}
    return subprocess.Popen(
        [sys.executable, "-m", module, mode],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        env={**passed, **(environment or {})},
        close_fds=True,
    )


def start(
    module: str, mode: str, request: Mapping[str, Any], limits: SandboxLimits
) -> "subprocess.Popen[bytes]":
    """A one-request child: `request` and `limits` written as JSON, its stdin closed."""
    child = spawn(module, mode)
    assert child.stdin is not None
    try:
        child.stdin.write(json.dumps({**request, "limits": asdict(limits)}).encode())
        child.stdin.close()
    except BrokenPipeError:
        pass  # the child died at once; reading its answer says so
    return child


def read_exactly(stream: IO[bytes], size: int) -> bytes | None:
    data = stream.read(size)
    return data if len(data) == size else None


def read_header(stream: IO[bytes]) -> dict[str, Any] | None:
    """The next message's header; None at the end of the stream or for one that is not a
    header (the other side is then treated as crashed)."""
    prefix = read_exactly(stream, _LENGTH.size)
    if prefix is None:
        return None
    (length,) = _LENGTH.unpack(prefix)
    if length > _MAX_HEADER_BYTES:
        return None
    body = read_exactly(stream, length)
    if body is None:
        return None
    try:
        header = json.loads(body)
    except ValueError:
        return None
    return header if isinstance(header, dict) else None


def send(out: IO[bytes], header: Mapping[str, Any], *payloads: bytes) -> None:
    body = json.dumps(header).encode()
    out.write(_LENGTH.pack(len(body)) + body)
    for payload in payloads:
        out.write(payload)
    out.flush()


def how_it_ended(child: "subprocess.Popen[bytes]") -> str:
    """Why the child stopped answering, once it has exited; one that is still running (it
    said something that is not a message, or closed its output and hung) is stopped."""
    try:
        code = child.wait(timeout=_EXIT_WAIT_S)
    except subprocess.TimeoutExpired:
        child.kill()
        child.wait()
        return "the decoder stopped answering and was stopped"
    if code == -signal.SIGXCPU:
        return "the decoder used up its CPU time (VIDEO_SANDBOX_CPU_SECONDS)"
    if code == UNCONFINED_EXIT:
        return "the decoder could not be confined (SANDBOX_REQUIRE_CONFINEMENT)"
    if code < 0:
        return f"the decoder was stopped by {signal.Signals(-code).name}"
    return f"the decoder exited with status {code}"


def refusal(error: object) -> DomainError | None:
    """The domain error a child reported for its file (`{"code", "message"}`), if it is one
    a child may report."""
    if not isinstance(error, dict):
        return None
    kind, message = _REFUSALS.get(str(error.get("code"))), error.get("message")
    return kind(message) if kind is not None and isinstance(message, str) else None


def limit_self(limits: Mapping[str, Any]) -> None:
    """In the child, before it reads anything untrusted: at most this much memory and (where
    `cpu_seconds` is set: a child that serves one file) CPU, no core file, no file written (a
    child only reads and writes to its pipe)."""
    memory = int(limits["memory_bytes"])
    resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    if limits["cpu_seconds"] is not None:
        seconds = int(limits["cpu_seconds"])
        # SIGXCPU at the limit (reported as such), SIGKILL a little later if that is ignored.
        resource.setrlimit(resource.RLIMIT_CPU, (seconds, seconds + 5))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    resource.setrlimit(resource.RLIMIT_FSIZE, (0, 0))
