"""Restarting the parts of a local system that crash, as a cluster would.

`make run`'s whole stack and the test run's shared Triton are both supervised by this: a part
that exits without being stopped comes back on its ports, so one crash costs the calls it had in
flight and not every call after it.
"""

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from objectvision_devstack.processes import ManagedProcess

logger = logging.getLogger(__name__)

# How soon a crashed part is restarted.
RESTART_BACKOFF_SECONDS = 1.0
RESTART_BACKOFF_MAX_SECONDS = 30.0
RESTART_STABLE_SECONDS = 60.0
WATCH_INTERVAL_SECONDS = 0.2
# How much of a crashed part's log an incident keeps, and how many incidents are kept (a part
# that crashes in a loop for days must not grow the supervisor without bound).
INCIDENT_LOG_LINES = 60
INCIDENTS_KEPT = 50


@dataclass(frozen=True)
class Incident:
    """One unexpected exit: what a person reading a failed test or an operator needs first."""

    part: str
    # When the supervisor saw the exit (seconds since the epoch).
    at: float
    ran_seconds: float
    exit: str
    log_path: str
    log_tail: str

    def describe(self) -> str:
        seen = datetime.fromtimestamp(self.at, UTC).strftime("%H:%M:%S UTC")
        return (
            f"{self.part} exited unexpectedly after {self.ran_seconds:.0f}s ({self.exit}), "
            f"seen at {seen}; the end of {self.log_path}:\n{self.log_tail}"
        )


class Supervisor:
    """Restart every part that exits without being stopped, as compose's `restart:
    unless-stopped` and Kubernetes' `restartPolicy: Always` do.

    A crash (kill -9, the OOM killer, an abort, an exit of its own) is restarted after a
    backoff that starts at RESTART_BACKOFF_SECONDS and doubles up to RESTART_BACKOFF_MAX_SECONDS,
    back to the start once the part has run RESTART_STABLE_SECONDS; what the dead process left
    in its process group is killed first. A failed start is retried on the same backoff,
    without end. Parts stopped on purpose (ManagedProcess.stop) stay stopped.

    The owner says what its parts are and how one starts: ``parts`` gives the current process
    of each, ``start_part`` starts one again (with the owner's own lock held, so that an
    operator's restart and the supervisor's never race), ``latest`` the newest process of a
    part even where its start failed before ``parts`` listed it.
    """

    def __init__(
        self,
        *,
        parts: Callable[[], dict[str, ManagedProcess]],
        start_part: Callable[[str], None],
        latest: Callable[[str], ManagedProcess | None],
        part_lock: Callable[[str], threading.RLock],
    ) -> None:
        self._parts = parts
        self._start_part = start_part
        self._latest = latest
        self._part_lock = part_lock
        # Restarts done per part, for logs and tests; the latest exits that caused them.
        self.restarts: dict[str, int] = {}
        self.incidents: deque[Incident] = deque(maxlen=INCIDENTS_KEPT)
        self._crashes: dict[str, int] = {}
        self._recovering: set[str] = set()
        self._closing = threading.Event()
        self._watchdog: threading.Thread | None = None

    @property
    def closing(self) -> bool:
        return self._closing.is_set()

    def start(self) -> None:
        if self._watchdog is not None:
            return
        self._watchdog = threading.Thread(target=self._watch, name="supervision", daemon=True)
        self._watchdog.start()

    def close(self) -> None:
        """No restart begins after this; one under way is let finish."""
        self._closing.set()
        if self._watchdog is not None:
            self._watchdog.join()

    def _watch(self) -> None:
        while not self._closing.wait(WATCH_INTERVAL_SECONDS):
            for name, process in list(self._parts().items()):
                if process.running() or process.stopped or name in self._recovering:
                    continue
                self._recovering.add(name)
                threading.Thread(
                    target=self._recover, args=(name, process), name=f"restart-{name}", daemon=True
                ).start()

    def _recover(self, name: str, crashed: ManagedProcess) -> None:
        try:
            with self._part_lock(name):
                # The watchdog's look may predate a recovery that has just finished.
                if self._parts().get(name) is not crashed or crashed.running() or crashed.stopped:
                    return
            ran = time.monotonic() - crashed.started_at
            if ran >= RESTART_STABLE_SECONDS:
                self._crashes[name] = 0
            incident = Incident(
                part=name,
                at=time.time(),
                ran_seconds=ran,
                exit=crashed.exit_description(),
                log_path=str(crashed.log_path),
                log_tail=crashed.log_tail(INCIDENT_LOG_LINES),
            )
            self.incidents.append(incident)
            logger.error(
                "%s exited unexpectedly after %.0fs (%s); restarting it (log: %s)",
                name,
                ran,
                incident.exit,
                crashed.log_path,
            )
            crashed.kill_leftovers()
            while not self._closing.is_set():
                crashes = self._crashes.get(name, 0)
                self._crashes[name] = crashes + 1
                delay = min(RESTART_BACKOFF_SECONDS * 2**crashes, RESTART_BACKOFF_MAX_SECONDS)
                if self._closing.wait(delay):
                    return
                with self._part_lock(name):
                    current = self._parts().get(name, crashed)
                    if self._closing.is_set() or current.running() or current.stopped:
                        return  # started or stopped by someone else meanwhile
                    try:
                        self._start_part(name)
                    except Exception as exc:  # any failed start is retried, without end
                        logger.error("restarting %s failed; retrying: %s", name, exc)
                        failed = self._latest(name) or crashed
                        failed.kill()  # not stop(): that would hold the part stopped
                        failed.kill_leftovers()
                        continue
                    self.restarts[name] = self.restarts.get(name, 0) + 1
                    logger.info("%s restarted and ready (restart %d)", name, self.restarts[name])
                    return
        finally:
            self._recovering.discard(name)
