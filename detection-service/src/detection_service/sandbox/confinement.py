"""The video child gives up, before it opens the upload, what a taken-over decoder could misuse
(ADR 0041).

ADR 0040 took the service's secrets out of FFmpeg's reach; a flaw exploited in a demuxer or
decoder would still run as the service's user, able to read the stored images of every
account, reach the network, start programs and signal the service. Two kernel features take
that away, both by the child on itself, so they need no privilege and no container setting:

- a seccomp filter refuses (EPERM) sockets, programs, new processes, signals to other
  processes, tracing, and the rarely needed kernel interfaces exploits reach for (namespaces,
  BPF, io_uring, keyrings, modules);
- Landlock lets the child open nothing but its one video for reading, and the code it runs
  from (Python's library, the installed packages, the system's shared libraries) for reading
  and executing: not the storage directory, not /proc of other processes, not /etc; it can
  create, write, rename or remove no file.

Both are applied by libraries (pyseccomp over libseccomp; landlock), after every import, so
nothing the child still loads is refused. A kernel without one of them (Landlock needs 5.13
and the LSM enabled; a container's own seccomp profile may refuse the calls) leaves that layer
off: `Confinement` says what was applied, the service logs and exports it at start, and
SANDBOX_REQUIRE_CONFINEMENT makes a missing layer refuse to start instead.

This module imports only the two libraries and the standard library: the child starts once
per upload and per video job.
"""

import errno
import importlib
import os
import sys
import sysconfig
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from types import ModuleType

import landlock


def _load_seccomp() -> ModuleType | None:
    """pyseccomp, or None on a machine without libseccomp (its import fails there). Loaded
    at import: finding the library runs ldconfig, a program the confined child may not run."""
    try:
        return importlib.import_module("pyseccomp")
    except (ImportError, OSError, RuntimeError):
        return None


_SECCOMP = _load_seccomp()

# Refused outright. Sockets: the child talks through its pipes only. Programs and processes:
# FFmpeg starts threads (allowed below), never processes. The rest: kernel interfaces with a
# history of privilege escalation that no decoder needs.
_REFUSED_SYSCALLS = (
    "socket",
    "socketpair",
    "connect",
    "bind",
    "listen",
    "accept",
    "accept4",
    "execve",
    "execveat",
    "fork",
    "vfork",
    "ptrace",
    "process_vm_readv",
    "process_vm_writev",
    "pidfd_open",
    "pidfd_getfd",
    "pidfd_send_signal",
    "tkill",
    "unshare",
    "setns",
    "mount",
    "umount2",
    "pivot_root",
    "chroot",
    "bpf",
    "perf_event_open",
    "userfaultfd",
    "io_uring_setup",
    "io_uring_enter",
    "io_uring_register",
    "keyctl",
    "add_key",
    "request_key",
    "init_module",
    "finit_module",
    "delete_module",
    "kexec_load",
    "kexec_file_load",
    "open_by_handle_at",
    "name_to_handle_at",
)
_CLONE_THREAD = 0x00010000
# Where shared libraries are found when glibc loads one late (libgcc_s when a thread ends).
_SYSTEM_LIBRARY_DIRECTORIES = ("/lib", "/lib64", "/usr/lib", "/usr/lib64", "/usr/local/lib")
_LIBRARY_CACHE = "/etc/ld.so.cache"


class Layer(StrEnum):
    """The two things the kernel enforces, named as the service's metric labels them."""

    SYSCALL_FILTER = "syscall_filter"
    FILE_RULES = "file_rules"


@dataclass(frozen=True)
class Confinement:
    """What the kernel took away from the child: the syscall filter, and the Landlock ABI
    version its file rules were applied under (0: none)."""

    syscalls_filtered: bool
    landlock_abi: int

    def applied(self, layer: Layer) -> bool:
        if layer is Layer.SYSCALL_FILTER:
            return self.syscalls_filtered
        return self.landlock_abi > 0

    @property
    def complete(self) -> bool:
        return all(self.applied(layer) for layer in Layer)

    def describe(self) -> str:
        syscalls = "seccomp filter on" if self.syscalls_filtered else "no seccomp filter"
        files = (
            f"Landlock ABI {self.landlock_abi} file rules on"
            if self.landlock_abi
            else "no Landlock file rules"
        )
        return f"{syscalls}, {files}"


def confine(readable: Path | None) -> Confinement:
    """Take away from this process (and the threads it starts later) everything but reading
    `readable` (a video; None: no file) and running its own code. Call after the last import
    and before reading anything untrusted. A layer the kernel does not offer is left off and
    reported, never raised."""
    landlock_abi = _restrict_files(readable)
    return Confinement(syscalls_filtered=_filter_syscalls(), landlock_abi=landlock_abi)


def _code_directories() -> set[Path]:
    """Where the code this process may still load lives: not secret, only ever read."""
    paths = sysconfig.get_paths()
    found = {Path(paths[name]) for name in ("stdlib", "platstdlib", "purelib", "platlib")}
    # Editable installs (the repository's own packages in development) live outside the venv.
    for module_name in ("detection_service", "objectvision_common"):
        module = sys.modules.get(module_name)
        for package_path in getattr(module, "__path__", ()):
            found.add(Path(package_path))
    found.update(Path(directory) for directory in _SYSTEM_LIBRARY_DIRECTORIES)
    return {directory for directory in found if directory.is_dir()}


def _restrict_files(readable: Path | None) -> int:
    try:
        abi = landlock.landlock_abi_version()
        ruleset = landlock.Ruleset()
        if readable is not None:
            ruleset.allow(readable, rules=landlock.FSAccess.READ_FILE)
        if os.path.isfile(_LIBRARY_CACHE):
            ruleset.allow(_LIBRARY_CACHE, rules=landlock.FSAccess.READ_FILE)
        run_code = (
            landlock.FSAccess.READ_FILE | landlock.FSAccess.READ_DIR | landlock.FSAccess.EXECUTE
        )
        ruleset.allow(*sorted(_code_directories()), rules=run_code)
        ruleset.apply()
    except (landlock.LandlockError, OSError):
        return 0
    return int(abi)


def _filter_syscalls() -> bool:
    seccomp = _SECCOMP
    if seccomp is None:
        return False
    refuse = seccomp.ERRNO(errno.EPERM)
    own_pid = os.getpid()
    try:
        syscall_filter = seccomp.SyscallFilter(seccomp.ALLOW)
        # Every thread, including any a library started at import (OpenBLAS does).
        syscall_filter.set_attr(seccomp.Attr.CTL_TSYNC, 1)
        for name in _REFUSED_SYSCALLS:
            syscall_filter.add_rule(refuse, name)
        # Threads only: a clone without CLONE_THREAD is a new process.
        syscall_filter.add_rule(
            refuse, "clone", seccomp.Arg(0, seccomp.MASKED_EQ, _CLONE_THREAD, 0)
        )
        # clone3 passes its flags in memory, out of a filter's sight: "not implemented" makes
        # glibc fall back to clone, which the rule above sees.
        syscall_filter.add_rule(seccomp.ERRNO(errno.ENOSYS), "clone3")
        # Signals to itself only (abort and raise use these).
        syscall_filter.add_rule(refuse, "kill", seccomp.Arg(0, seccomp.NE, own_pid))
        syscall_filter.add_rule(refuse, "tgkill", seccomp.Arg(0, seccomp.NE, own_pid))
        syscall_filter.load()
    except OSError:
        return False
    return True
