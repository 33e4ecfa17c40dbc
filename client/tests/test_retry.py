"""How long the client waits before resending a refused request (pure computation)."""

from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from objectvision_client.retry import NO_RETRIES, RetryPolicy, parse_retry_after

NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


@pytest.mark.parametrize(
    ("header", "seconds"),
    [("0", 0.0), ("7", 7.0), (" 12 ", 12.0), (None, None), ("", None), ("soon", None)],
)
def test_retry_after_seconds(header: str | None, seconds: float | None) -> None:
    assert parse_retry_after(header, now=NOW) == seconds


def test_retry_after_http_date() -> None:
    header = format_datetime(NOW + timedelta(seconds=30), usegmt=True)
    assert parse_retry_after(header, now=NOW) == 30.0


def test_retry_after_date_in_the_past_means_now() -> None:
    header = format_datetime(NOW - timedelta(minutes=5), usegmt=True)
    assert parse_retry_after(header, now=NOW) == 0.0


def test_server_retry_after_wins_over_backoff() -> None:
    assert RetryPolicy().delay(1, 429, "3") == 3.0
    assert RetryPolicy().delay(2, 503, "0") == 0.0


def test_backoff_doubles_and_is_capped_without_retry_after() -> None:
    policy = RetryPolicy(max_attempts=10, backoff_base=0.5, max_delay=3.0)
    assert [policy.delay(attempt, 503) for attempt in range(1, 6)] == [0.5, 1.0, 2.0, 3.0, 3.0]


def test_attempts_are_bounded() -> None:
    policy = RetryPolicy(max_attempts=3)
    assert policy.delay(2, 429, "1") == 1.0
    assert policy.delay(3, 429, "1") is None
    assert NO_RETRIES.delay(1, 503) is None


def test_a_wait_longer_than_allowed_is_not_sat_through() -> None:
    assert RetryPolicy(max_delay=30.0).delay(1, 429, "3600") is None


@pytest.mark.parametrize("status", [200, 400, 401, 404, 413, 422, 500, 502, 504])
def test_other_statuses_are_not_retried(status: int) -> None:
    assert RetryPolicy().delay(1, status, "1") is None
