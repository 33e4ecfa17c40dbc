"""One way for a service to open its Redis client, so every one survives a Redis restart.

A pooled connection that sat idle while Redis restarted is dead, and redis-py only learns so
when the next command on it fails ("Connection closed by server"). Left alone, that first
command after every restart fails: a job stored but not put on its stream, an event relayed
late. Two settings close the gap, the same in every service:

- `health_check_interval`: a connection idle for longer than this is PINGed before use, so a
  dead one is replaced instead of handed out;
- `retry` on connection errors and timeouts, with jittered backoff: a command that meets a
  connection dropped under it is sent again on a fresh one. Every command the services send
  is safe to repeat (stream appends are consumed idempotently, counters are windows).
"""

from typing import Any

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialWithJitterBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

HEALTH_CHECK_INTERVAL_SECONDS = 10
RETRIES = 3


def connect_redis(url: str, **options: Any) -> Redis:
    """A client for `url` that checks idle connections and retries dropped ones.

    `options` are redis-py's own (decode_responses, socket timeouts); they may override the
    health check interval, never the retry policy.
    """
    options.setdefault("health_check_interval", HEALTH_CHECK_INTERVAL_SECONDS)
    return Redis.from_url(
        url,
        retry=Retry(ExponentialWithJitterBackoff(), RETRIES),
        retry_on_error=[RedisConnectionError, RedisTimeoutError],
        **options,
    )
