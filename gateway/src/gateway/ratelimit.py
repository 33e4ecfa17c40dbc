"""Sliding-window rate limits kept in Redis, so every gateway replica counts together.

Each limited key is a sorted set of attempt times. One Lua script drops the attempts older
than the window, counts the rest and records the new attempt only if it is allowed, so
concurrent replicas cannot both take the last slot. Times come from Redis's clock, not the
replicas', so skew between gateway hosts does not matter. Refused attempts are not
recorded: a caller hammering the endpoint gets through again as soon as old attempts age out.

Some limits count only failures (wrong passwords for one account): those are checked with
`peek` before the attempt and fed with `record` after it failed, so the account's owner is
never slowed down by logging in successfully.

Callers are keyed by network, not address: an IPv6 host gets a whole /64 from its provider
and could otherwise rotate addresses to reset every limit.
"""

import hashlib
import ipaddress
import logging
import math
import uuid
from dataclasses import dataclass

from redis.asyncio import Redis
from redis.exceptions import RedisError

from gateway.config import RateLimitRule

logger = logging.getLogger(__name__)

KEY_PREFIX = "gateway:ratelimit:"

_NOW_MS = """
local now = redis.call('TIME')
local now_ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
"""

# ARGV: limit, window_ms, member, take ('1': record the attempt if it is allowed).
# When refused, the attempt is allowed again once the entry at index count - limit ages out.
_SLIDING_WINDOW = (
    _NOW_MS
    + """
local limit = tonumber(ARGV[1])
local window_ms = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now_ms - window_ms)
local count = redis.call('ZCARD', KEYS[1])
if count < limit then
  if ARGV[4] == '1' then
    redis.call('ZADD', KEYS[1], now_ms, ARGV[3])
    redis.call('PEXPIRE', KEYS[1], window_ms)
    return {1, limit - count - 1, 0}
  end
  return {1, limit - count, 0}
end
local oldest = redis.call('ZRANGE', KEYS[1], count - limit, count - limit, 'WITHSCORES')
local retry_ms = window_ms
if oldest[2] then
  retry_ms = tonumber(oldest[2]) + window_ms - now_ms
end
return {0, 0, retry_ms}
"""
)

# ARGV: window_ms, member.
_RECORD = (
    _NOW_MS
    + """
redis.call('ZADD', KEYS[1], now_ms, ARGV[2])
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[1]))
return 1
"""
)

IPV6_PREFIX_LENGTH = 64


@dataclass(frozen=True)
class RateLimitDecision:
    allowed: bool
    remaining: int
    # Whole seconds until an attempt would be allowed again; 0 when allowed.
    retry_after_seconds: int


def client_network(address: str) -> str:
    """The unit a per-IP limit counts: the address for IPv4, its /64 for IPv6 (an IPv4-mapped
    IPv6 address counts as its IPv4 address); anything unparsable as itself."""
    try:
        parsed = ipaddress.ip_address(address)
    except ValueError:
        return address
    if isinstance(parsed, ipaddress.IPv6Address):
        if parsed.ipv4_mapped is not None:
            return str(parsed.ipv4_mapped)
        return str(ipaddress.IPv6Network(f"{parsed}/{IPV6_PREFIX_LENGTH}", strict=False))
    return str(parsed)


def limit_key(scope: str, *parts: str) -> str:
    """A Redis key for one limited subject; the parts are hashed so no email sits in Redis."""
    digest = hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:32]
    return f"{KEY_PREFIX}{scope}:{digest}"


class RateLimiter:
    """Fails open when Redis is unreachable: losing the limit for the length of an outage is
    preferred over refusing every login and sign-up (Argon2 still slows guessing)."""

    def __init__(self, redis: Redis) -> None:
        self._redis = redis
        self._window = redis.register_script(_SLIDING_WINDOW)
        self._record = redis.register_script(_RECORD)

    async def hit(self, key: str, rule: RateLimitRule) -> RateLimitDecision:
        """Record one attempt on `key` if `rule` allows it."""
        return await self._decide(key, rule, take=True)

    async def peek(self, key: str, rule: RateLimitRule) -> RateLimitDecision:
        """Whether one more attempt on `key` would be within `rule`, recording nothing."""
        return await self._decide(key, rule, take=False)

    async def record(self, key: str, rule: RateLimitRule) -> None:
        """Count one event (a failed login) on `key` for the next `peek`."""
        try:
            await self._record(keys=[key], args=[rule.window_seconds * 1000, uuid.uuid4().hex])
        except RedisError:
            logger.warning("rate limiter unavailable; event not counted", exc_info=True)

    async def _decide(self, key: str, rule: RateLimitRule, *, take: bool) -> RateLimitDecision:
        args = [rule.limit, rule.window_seconds * 1000, uuid.uuid4().hex, "1" if take else "0"]
        try:
            allowed, remaining, retry_ms = await self._window(keys=[key], args=args)
        except RedisError:
            logger.warning("rate limiter unavailable; allowing the attempt", exc_info=True)
            return RateLimitDecision(allowed=True, remaining=rule.limit, retry_after_seconds=0)
        retry_after = 0 if allowed else max(1, math.ceil(int(retry_ms) / 1000))
        return RateLimitDecision(
            allowed=bool(allowed), remaining=int(remaining), retry_after_seconds=retry_after
        )
