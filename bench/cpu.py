"""CPU seconds spent by named process trees between two instants (psutil).

Why process trees: Triton runs its Python backend in a child process and PostgreSQL forks one
backend per connection, so a process's own counters miss most of the work. Why the system
total too: other work on a shared machine slows every stage, and the difference between the
machine's busy time and ours says how much of it there was.
"""

from collections.abc import Mapping
from dataclasses import dataclass

import psutil

# (pid, create_time) identifies a process even if its pid is reused during a run.
_Key = tuple[int, float]


@dataclass(frozen=True)
class CpuSnapshot:
    groups: dict[str, dict[_Key, float]]
    system_busy_s: float


def _tree_times(root: int, *, tree: bool) -> dict[_Key, float]:
    """User + system CPU seconds of a process (and its live descendants if `tree`), by process."""
    times: dict[_Key, float] = {}
    try:
        parent = psutil.Process(root)
        members = [parent, *(parent.children(recursive=True) if tree else [])]
    except psutil.Error:
        return times
    for process in members:
        try:
            with process.oneshot():
                cpu = process.cpu_times()
                times[(process.pid, process.create_time())] = cpu.user + cpu.system
        except psutil.Error:
            continue
    return times


def _system_busy_s() -> float:
    """Seconds all CPUs spent not idle since boot (idle and iowait excluded).

    Rounded to a microsecond: the kernel counts in clock ticks, and summing the fields as
    floats in a different order could otherwise make a later reading a few ulps smaller
    than an earlier one of the same tick count.
    """
    total = psutil.cpu_times()
    busy = sum(total) - total.idle - getattr(total, "iowait", 0.0)
    return round(float(busy), 6)


class CpuMeter:
    """Snapshots of the CPU time of named process trees; `delta` turns two into seconds."""

    def __init__(self, groups: Mapping[str, int] | None = None) -> None:
        self.groups: dict[str, tuple[int, bool]] = {
            name: (pid, True) for name, pid in (groups or {}).items()
        }

    def add(self, name: str, pid: int, *, tree: bool = True) -> None:
        """Measure `pid`; with `tree`, its descendants too (never for our own process, whose
        children are the servers under test)."""
        self.groups[name] = (pid, tree)

    def remove(self, name: str) -> None:
        self.groups.pop(name, None)

    def snapshot(self) -> CpuSnapshot:
        return CpuSnapshot(
            groups={name: _tree_times(pid, tree=tree) for name, (pid, tree) in self.groups.items()},
            system_busy_s=_system_busy_s(),
        )

    @staticmethod
    def delta(start: CpuSnapshot, end: CpuSnapshot) -> dict[str, float]:
        """CPU seconds per group between two snapshots.

        A process born in between counts from zero; one that died in between is lost (its time
        is no longer readable), which undercounts only short-lived helpers.
        """
        spent: dict[str, float] = {}
        for name, after in end.groups.items():
            before = start.groups.get(name, {})
            spent[name] = sum(max(0.0, secs - before.get(key, 0.0)) for key, secs in after.items())
        return spent
