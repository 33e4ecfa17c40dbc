"""When to retry a refused request and how long to wait: pure functions, no I/O.

429 (rate limited) and 503 (a service briefly down) are retried a bounded number of times.
The server's Retry-After wins when it sends one; a wait longer than the policy allows is not
worth sitting through, so the error is raised at once instead. Without Retry-After the wait
doubles from `backoff_base`, capped at `max_delay`.
"""

from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

RETRY_STATUSES = frozenset({429, 503})


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (delay-seconds or an HTTP-date, RFC 9110
    10.2.3); None when absent or unreadable. A date in the past means no wait."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    if text.isdigit():
        return float(text)
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


@dataclass(frozen=True)
class RetryPolicy:
    """At most `max_attempts` sends of one request (the first included)."""

    max_attempts: int = 4
    backoff_base: float = 0.5
    max_delay: float = 30.0
    statuses: frozenset[int] = field(default=RETRY_STATUSES)

    def delay(
        self,
        attempt: int,
        status: int,
        retry_after: str | None = None,
        *,
        now: datetime | None = None,
    ) -> float | None:
        """Seconds to wait before sending again after `attempt` (1-based) got `status`;
        None to stop and report the response."""
        if status not in self.statuses or attempt >= self.max_attempts:
            return None
        asked = parse_retry_after(retry_after, now=now)
        if asked is not None:
            return asked if asked <= self.max_delay else None
        return min(self.max_delay, self.backoff_base * 2.0 ** (attempt - 1))


NO_RETRIES = RetryPolicy(max_attempts=1)
