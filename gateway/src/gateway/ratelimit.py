"""Moving-window rate limits kept in Redis, so every gateway replica counts together.

The counting is the `limits` package's moving window on Redis (ADR 0004): each limited key
is a list of attempt times, and one Lua script checks the window and records the attempts
only if they all fit, so concurrent replicas cannot both take the last slot and a request
of several attempts (a batch's image URLs) is counted whole or refused whole. Refused
attempts are not recorded: a caller hammering the endpoint gets through again as soon as
old attempts age out. What is ours is around it: the rules from settings, keys that hash
their subject, failing open, and the answer's RateLimit fields.

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
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from limits import RateLimitItem, RateLimitItemPerSecond
from limits.aio.storage import RedisStorage
from limits.aio.strategies import MovingWindowRateLimiter
from limits.errors import StorageError
from redis.asyncio import Redis

from gateway.config import RateLimitRule

logger = logging.getLogger(__name__)

# Every limit's Redis key starts with this (then `:LIMITER/<scope>:<digest>/...`).
KEY_PREFIX = "gateway:ratelimit"

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
    return f"{scope}:{digest}"


def _window(rule: RateLimitRule) -> RateLimitItem:
    return RateLimitItemPerSecond(rule.limit, rule.window_seconds)


class RateLimiter:
    """Fails open when Redis is unreachable: losing the limit for the length of an outage is
    preferred over refusing every login and sign-up (Argon2 still slows guessing)."""

    def __init__(self, redis: Redis) -> None:
        # The gateway's own pool, so the limiter opens no connections of its own; passed
        # through `options`, which `limits` types as scalars though redis-py takes a pool.
        shared_pool: dict[str, Any] = {"connection_pool": redis.connection_pool}
        storage = RedisStorage(
            "async+redis://",
            implementation="redispy",
            wrap_exceptions=True,
            key_prefix=KEY_PREFIX,
            **shared_pool,
        )
        self._windows = MovingWindowRateLimiter(storage)

    async def hit(self, key: str, rule: RateLimitRule, *, cost: int = 1) -> RateLimitDecision:
        """Record `cost` attempts on `key` if `rule` allows them all, else none: one
        atomic step, so a request of many attempts (a batch's image URLs) is counted whole
        or refused whole, with its `remaining` the attempts that would still fit."""
        window = _window(rule)
        try:
            allowed = await self._windows.hit(window, key, cost=cost)
        except StorageError:
            logger.warning("rate limiter unavailable; allowing the attempt", exc_info=True)
            return RateLimitDecision(allowed=True, remaining=rule.limit, retry_after_seconds=0)
        return await self._decision(key, window, allowed=allowed)

    async def peek(self, key: str, rule: RateLimitRule) -> RateLimitDecision:
        """Whether one more attempt on `key` would be within `rule`, recording nothing."""
        window = _window(rule)
        try:
            allowed = await self._windows.test(window, key)
        except StorageError:
            logger.warning("rate limiter unavailable; allowing the attempt", exc_info=True)
            return RateLimitDecision(allowed=True, remaining=rule.limit, retry_after_seconds=0)
        return await self._decision(key, window, allowed=allowed)

    async def record(self, key: str, rule: RateLimitRule) -> None:
        """Count one event (a failed login) on `key` for the next `peek`; past the limit it
        is not counted, which changes nothing: `peek` already refuses."""
        try:
            await self._windows.hit(_window(rule), key)
        except StorageError:
            logger.warning("rate limiter unavailable; event not counted", exc_info=True)

    async def _decision(
        self, key: str, window: RateLimitItem, *, allowed: bool
    ) -> RateLimitDecision:
        """Where `key` stands after the check: the attempts left and, from the oldest
        attempt in the window, when a slot frees up. Read after the check, in a second
        step, since it only informs the answer's fields and Retry-After."""
        try:
            stats = await self._windows.get_window_stats(window, key)
        except StorageError:
            logger.warning("rate limiter unavailable; window not read", exc_info=True)
            return RateLimitDecision(
                allowed=allowed,
                remaining=0,
                retry_after_seconds=0 if allowed else window.get_expiry(),
                reset_seconds=window.get_expiry(),
            )
        reset_seconds = max(0, math.ceil(stats.reset_time - time.time()))
        if allowed:
            return RateLimitDecision(
                allowed=True,
                remaining=stats.remaining,
                retry_after_seconds=0,
                reset_seconds=reset_seconds,
            )
        retry_after = max(1, reset_seconds)
        return RateLimitDecision(
            allowed=False,
            remaining=max(stats.remaining, 0),
            retry_after_seconds=retry_after,
            reset_seconds=retry_after,
        )
