"""The one shape of every background loop (outbox relay, backlog gauges, event consumer,
delivery dispatcher, job workers, sweeps): `run()` until `stop()`.

Why a base class: each loop used to keep its own stop event, its own interruptible sleep and
its own guard against a stop that comes before the task ran; they differed in small ways
(one restarted after a stop, one could not be stopped before it began). The runner
(objectvision_common.runner) starts the loops after the server and stops them in one place;
this class is the other half of that contract.
"""

import asyncio
import contextlib
from typing import ClassVar


class BackgroundLoop:
    """A background loop: subclasses write `_loop()`, test `self.stopping` between items
    and wait with `await self.pause(seconds)`, which returns early on `stop()`, or, for work
    that others announce, `await self.idle(seconds)`, which `wake()` ends too.

    How a loop ends is the subclass's choice:

    * cooperative (the default): `stop()` wakes `pause()`; the loop finishes the item in
      hand (a batch of events, a delivery attempt) and returns;
    * ``cancel_on_stop = True``: `stop()` cancels the loop wherever it waits, mid-item
      included, for loops whose unfinished items are redone elsewhere (a job's message
      stays unacknowledged and another consumer reclaims it).

    Either way the runner cancels a loop that has not returned within the grace period.
    A loop stopped before its task began returns at once.
    """

    cancel_on_stop: ClassVar[bool] = False
    _task: asyncio.Task[None] | None = None
    _stop_event: asyncio.Event | None = None
    _wake_event: asyncio.Event | None = None

    @property
    def _stopped(self) -> asyncio.Event:
        # Created on first use, so subclasses need not call a base __init__.
        if self._stop_event is None:
            self._stop_event = asyncio.Event()
        return self._stop_event

    @property
    def _woken(self) -> asyncio.Event:
        if self._wake_event is None:
            self._wake_event = asyncio.Event()
        return self._wake_event

    @property
    def stopping(self) -> bool:
        return self._stopped.is_set()

    async def run(self) -> None:
        if self.stopping:
            return
        self._task = asyncio.current_task()
        await self._loop()

    def stop(self) -> None:
        self._stopped.set()
        self._woken.set()
        if self.cancel_on_stop and self._task is not None:
            self._task.cancel()

    async def pause(self, seconds: float) -> None:
        """Sleep up to ``seconds``; return at once when stopped."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopped.wait(), timeout=seconds)

    def wake(self) -> None:
        """There is work now (new deliveries, a committed event): `idle()` returns at once,
        the one under way or, while the loop is busy, its next one."""
        self._woken.set()

    async def idle(self, seconds: float) -> None:
        """Wait for work: up to ``seconds``, or until `wake()` or `stop()`; a wake is spent
        by the idle it ends, so one that came during a pass starts the next pass at once."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._woken.wait(), timeout=seconds)
        self._woken.clear()

    async def _loop(self) -> None:
        raise NotImplementedError
