"""Sliding-window rate limits kept in Redis, so every gateway replica counts together.

Each limited key is a sorted set of attempt times. One Lua script drops the attempts older
than the window, counts the rest and records the new attempt only if it is allowed, so
concurrent replicas cannot both take the last slot. Times come from Redis's clock, not the
replicas', so skew between gateway hosts does not matter. Refused attempts are not
recorded: a caller hammering the endpoint gets through again as soon as old attempts age out.

Some limits count only failures (wrong passwords for one account): those are checked with
`peek` before the attempt and fed with `record` after it failed, so the account's owner is
never slowed down by logging in successfully.

Every answer of a limited route tells the caller where it stands, in the `RateLimit-Policy`
and `RateLimit` fields of draft-ietf-httpapi-ratelimit-headers (revisions 08 to 11, the
current one; the older RateLimit-Limit/-Remaining/-Reset trio was dropped from the draft):
`RateLimit-Policy: "login";q=10;w=60, "login-ip";q=60;w=60` names each limit that applies
(quota, window in seconds) and `RateLimit: "login";r=9;t=60` the one closest to refusing
(remaining attempts, seconds until one more slot frees up), as the draft asks.

Callers are keyed by network, not address: an IPv6 host gets a whole /64 from its provider
and could otherwise rotate addresses to reset every limit.
"""

import hashlib
import ipaddress
import logging
import math
import uuid
from collections.abc import Sequence
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

# ARGV: limit, window_ms, member, take (attempts to record if they all fit; 0 only asks
# whether one more would). When refused, they would fit once the entry at index
# count + needed - limit ages out (for one attempt: count - limit).
_SLIDING_WINDOW = (
    _NOW_MS
    + """
local limit = tonumber(ARGV[1])
local window_ms = tonumber(ARGV[2])
local take = tonumber(ARGV[4])
local needed = math.max(take, 1)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now_ms - window_ms)
local count = redis.call('ZCARD', KEYS[1])
if count + needed <= limit then
  for i = 1, take do
    redis.call('ZADD', KEYS[1], now_ms, ARGV[3] .. ':' .. i)
  end
  if take > 0 then
    redis.call('PEXPIRE', KEYS[1], window_ms)
  end
  -- Allowed: the time until the oldest attempt in the window ages out and frees a slot.
  local first = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
  local reset_ms = 0
  if first[2] then
    reset_ms = tonumber(first[2]) + window_ms - now_ms
  end
  return {1, limit - count - take, reset_ms}
end
local retry_ms = window_ms
local index = count + needed - limit - 1
if index < count then
  local oldest = redis.call('ZRANGE', KEYS[1], index, index, 'WITHSCORES')
  if oldest[2] then
    retry_ms = tonumber(oldest[2]) + window_ms - now_ms
  end
end
return {0, math.max(limit - count, 0), retry_ms}
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

# The fields as the OpenAPI document describes them, on every answer of a limited route.
OPENAPI_HEADERS: dict[str, dict[str, object]] = {
    "RateLimit-Policy": {
        "description": 'Each limit that applies: `"name";q=attempts;w=seconds`, comma-separated '
        "(draft-ietf-httpapi-ratelimit-headers).",
        "schema": {"type": "string"},
    },
    "RateLimit": {
        "description": 'The limit closest to refusing: `"name";r=remaining;t=seconds` until '
        "a slot frees up.",
        "schema": {"type": "string"},
    },
}


@dataclass(frozen=True)
class RateLimitDecision:
    allowed: bool
    remaining: int
    # Whole seconds until an attempt would be allowed again; 0 when allowed.
    retry_after_seconds: int
    # Whole seconds until a slot frees up: the Retry-After when refused, otherwise until the
    # oldest attempt in the window ages out (0 when the window is empty).
    reset_seconds: int = 0


@dataclass(frozen=True)
class PolicyState:
    """One named limit and where this caller stands against it, for the response fields."""

    name: str
    rule: RateLimitRule
    decision: RateLimitDecision


def rate_limit_fields(states: Sequence[PolicyState]) -> dict[str, str]:
    """`RateLimit-Policy` with every limit that applied, `RateLimit` with the one that has
    the fewest attempts left (draft-ietf-httpapi-ratelimit-headers: with several windows the
    server reports the lowest remaining). Empty when no limit applied."""
    if not states:
        return {}
    policies = ", ".join(
        f'"{state.name}";q={state.rule.limit};w={state.rule.window_seconds}' for state in states
    )
    tightest = min(
        states, key=lambda state: (state.decision.remaining, -state.decision.reset_seconds)
    )
    remaining = max(0, tightest.decision.remaining)
    return {
        "RateLimit-Policy": policies,
        "RateLimit": f'"{tightest.name}";r={remaining};t={tightest.decision.reset_seconds}',
    }


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

    async def hit(self, key: str, rule: RateLimitRule, *, cost: int = 1) -> RateLimitDecision:
        """Record `cost` attempts on `key` if `rule` allows them all, else none: one
        atomic step, so a request of many attempts (a batch's image URLs) is counted whole
        or refused whole, with its `remaining` the attempts that would still fit."""
        return await self._decide(key, rule, take=cost)

    async def peek(self, key: str, rule: RateLimitRule) -> RateLimitDecision:
        """Whether one more attempt on `key` would be within `rule`, recording nothing."""
        return await self._decide(key, rule, take=0)

    async def record(self, key: str, rule: RateLimitRule) -> None:
        """Count one event (a failed login) on `key` for the next `peek`."""
        try:
            await self._record(keys=[key], args=[rule.window_seconds * 1000, uuid.uuid4().hex])
        except RedisError:
            logger.warning("rate limiter unavailable; event not counted", exc_info=True)

    async def _decide(self, key: str, rule: RateLimitRule, *, take: int) -> RateLimitDecision:
        args: list[int | str] = [rule.limit, rule.window_seconds * 1000, uuid.uuid4().hex, take]
        try:
            allowed, remaining, retry_ms = await self._window(keys=[key], args=args)
        except RedisError:
            logger.warning("rate limiter unavailable; allowing the attempt", exc_info=True)
            return RateLimitDecision(allowed=True, remaining=rule.limit, retry_after_seconds=0)
        if allowed:
            return RateLimitDecision(
                allowed=True,
                remaining=int(remaining),
                retry_after_seconds=0,
                reset_seconds=max(0, math.ceil(int(retry_ms) / 1000)),
            )
        retry_after = max(1, math.ceil(int(retry_ms) / 1000))
        return RateLimitDecision(
            allowed=False,
            remaining=int(remaining),
            retry_after_seconds=retry_after,
            reset_seconds=retry_after,
        )
