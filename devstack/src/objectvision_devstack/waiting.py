"""Waiting on a running stack by what it does, not by how long it usually takes.

Much of what the stack does happens later than the request that caused it: outbox relays poll,
consumers read streams, the dispatcher sends email and webhooks. A test that slept a fixed time
would be slow on a fast machine and flaky on a busy one, so it polls the observable outcome
instead, with a deadline that bounds how long a failure takes to show (`eventually`), and
watches for a while for what must not happen, such as a second copy of a message (`stays`).
"""

import asyncio
import time
from collections.abc import Callable, Iterator
from typing import TypeVar

T = TypeVar("T")

# Often enough that a test waits little past the outcome, seldom enough to leave the (small,
# shared) machine to the stack being watched.
POLL_SECONDS = 0.1


async def eventually(
    check: Callable[[], T], *, within: float, what: str, interval: float = POLL_SECONDS
) -> T:
    """The first truthy result of `check`, polled every `interval` seconds; an AssertionError
    naming `what` once `within` seconds have passed without one."""
    for _ in _polls(within, what):
        if result := check():
            return result
        await asyncio.sleep(interval)
    raise AssertionError("unreachable: _polls ends by raising")


def until(check: Callable[[], T], *, within: float, what: str, interval: float = POLL_SECONDS) -> T:
    """`eventually` for code outside an event loop (a test of processes, a thread)."""
    for _ in _polls(within, what):
        if result := check():
            return result
        time.sleep(interval)
    raise AssertionError("unreachable: _polls ends by raising")


def _polls(within: float, what: str) -> Iterator[None]:
    """One step a poll until `within` seconds have passed, then the AssertionError naming
    `what`: the deadline `eventually` and `until` share."""
    deadline = time.monotonic() + within
    while True:
        yield
        if time.monotonic() >= deadline:
            raise AssertionError(f"{what}: not within {within:.0f}s")


async def stays(
    check: Callable[[], bool], *, for_seconds: float, what: str, interval: float = POLL_SECONDS
) -> None:
    """`check` holds at every poll for `for_seconds`: what must not happen (`what`) did not,
    as far as a bounded watch can tell."""
    deadline = time.monotonic() + for_seconds
    while True:
        assert check(), what
        if time.monotonic() >= deadline:
            return
        await asyncio.sleep(interval)
