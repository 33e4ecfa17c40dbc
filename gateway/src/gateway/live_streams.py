"""How many WebSockets (job progress and live detection) one account may hold open on one
gateway replica.

Each open stream holds a socket, tasks and a gRPC stream (to notification-service for as
long as its job runs, a day at most; to detection-service for as long as frames come).
Without a cap, one account opening thousands of them would exhaust the replica for
everybody. Both kinds share one cap, each is counted in its own metrics. The count is per
replica, in memory, so a crashed connection can never leave it inflated: with N replicas an
account may hold up to N times the cap.
"""

from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager

from gateway.metrics import GatewayMetrics, StreamKind

__all__ = ["LiveStreams", "StreamKind", "TooManyStreams"]


class TooManyStreams(Exception):
    """The account already holds as many live streams on this replica as one may."""


class LiveStreams:
    def __init__(self, per_account: int, *, metrics: GatewayMetrics) -> None:
        self._per_account = per_account
        self._open: Counter[str] = Counter()
        self._metrics = metrics

    @property
    def per_account(self) -> int:
        return self._per_account

    @contextmanager
    def hold(self, account: str, *, kind: StreamKind) -> Iterator[None]:
        """One stream slot of `account` for the block; TooManyStreams when none is free."""
        opened, closed = self._metrics.streams(kind)
        if self._open[account] >= self._per_account:
            closed.labels("too_many").inc()
            raise TooManyStreams(account)
        self._open[account] += 1
        opened.inc()
        try:
            yield
        finally:
            opened.dec()
            self._open[account] -= 1
            if not self._open[account]:
                del self._open[account]

    def revoked(self, kind: StreamKind) -> None:
        """Count a stream closed because its credential was revoked."""
        self._metrics.streams(kind)[1].labels("revoked").inc()
