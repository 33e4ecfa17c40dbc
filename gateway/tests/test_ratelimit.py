"""The sliding window against the real Redis, including two "replicas" racing for slots, and
the RateLimit fields the limited routes answer with."""

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from gateway.config import RateLimitRule
from gateway.ratelimit import (
    KEY_PREFIX,
    PolicyState,
    RateLimitDecision,
    RateLimiter,
    client_network,
    limit_key,
    rate_limit_fields,
)
from objectvision_devstack.processes import free_port


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[Redis]:
    client = Redis.from_url(redis_url)
    yield client
    await client.aclose()


def _key() -> str:
    return limit_key("test", uuid.uuid4().hex)


async def test_allows_the_limit_then_refuses_with_a_retry_after(redis: Redis) -> None:
    limiter, key, rule = RateLimiter(redis), _key(), RateLimitRule(limit=3, window_seconds=60)
    decisions = [await limiter.hit(key, rule) for _ in range(4)]
    assert [d.allowed for d in decisions] == [True, True, True, False]
    assert [d.remaining for d in decisions[:3]] == [2, 1, 0]
    assert 59 <= decisions[3].retry_after_seconds <= 60


async def test_keys_are_independent(redis: Redis) -> None:
    limiter, rule = RateLimiter(redis), RateLimitRule(limit=1, window_seconds=60)
    first, second = _key(), _key()
    assert (await limiter.hit(first, rule)).allowed
    assert not (await limiter.hit(first, rule)).allowed
    assert (await limiter.hit(second, rule)).allowed


async def test_the_window_slides(redis: Redis) -> None:
    limiter, key, rule = RateLimiter(redis), _key(), RateLimitRule(limit=2, window_seconds=1)
    assert (await limiter.hit(key, rule)).allowed
    await asyncio.sleep(0.6)
    assert (await limiter.hit(key, rule)).allowed
    refused = await limiter.hit(key, rule)
    assert not refused.allowed
    assert refused.retry_after_seconds == 1
    await asyncio.sleep(0.5)
    # The first attempt has aged out; the second is still inside the window.
    assert (await limiter.hit(key, rule)).allowed
    assert not (await limiter.hit(key, rule)).allowed


async def test_refused_attempts_are_not_counted(redis: Redis) -> None:
    limiter, key, rule = RateLimiter(redis), _key(), RateLimitRule(limit=1, window_seconds=1)
    assert (await limiter.hit(key, rule)).allowed
    for _ in range(5):
        assert not (await limiter.hit(key, rule)).allowed
    await asyncio.sleep(1.1)
    assert (await limiter.hit(key, rule)).allowed


async def test_several_attempts_are_counted_whole_or_refused_whole(redis: Redis) -> None:
    limiter, key, rule = RateLimiter(redis), _key(), RateLimitRule(limit=5, window_seconds=60)
    taken = await limiter.hit(key, rule, cost=3)
    assert (taken.allowed, taken.remaining) == (True, 2)
    refused = await limiter.hit(key, rule, cost=3)
    assert (refused.allowed, refused.remaining) == (False, 2)
    assert 59 <= refused.retry_after_seconds <= 60
    assert not (await limiter.hit(key, rule, cost=6)).allowed
    assert (await limiter.hit(key, rule, cost=2)).remaining == 0


async def test_replicas_racing_never_exceed_the_limit(redis_url: str) -> None:
    """Two gateway replicas (separate connections) hammer one key at once."""
    replicas = [Redis.from_url(redis_url), Redis.from_url(redis_url)]
    limiters = [RateLimiter(client) for client in replicas]
    key, rule = _key(), RateLimitRule(limit=5, window_seconds=60)
    try:
        decisions = await asyncio.gather(*(limiters[i % 2].hit(key, rule) for i in range(40)))
    finally:
        for client in replicas:
            await client.aclose()
    assert sum(d.allowed for d in decisions) == 5


async def test_the_key_expires_with_its_window(redis: Redis) -> None:
    limiter, key = RateLimiter(redis), _key()
    await limiter.hit(key, RateLimitRule(limit=5, window_seconds=30))
    [stored] = await redis.keys(f"{KEY_PREFIX}:*{key}*")
    assert 0 < await redis.pttl(stored) <= 30_000


def _unreachable_redis() -> Redis:
    """A client of a port nobody listens on, that gives up at once: the limiter's answer is
    under test, not redis-py's own retries (the services' client has its policy:
    objectvision_common.redis_client)."""
    return Redis(port=free_port(), socket_connect_timeout=0.5, retry=Retry(NoBackoff(), 0))


async def test_an_unreachable_redis_fails_open() -> None:
    dead = _unreachable_redis()
    try:
        decision = await RateLimiter(dead).hit(_key(), RateLimitRule(limit=1, window_seconds=60))
    finally:
        await dead.aclose()
    assert decision.allowed


async def test_an_unreachable_redis_fails_open_for_peek_and_record() -> None:
    dead = _unreachable_redis()
    limiter, key, rule = RateLimiter(dead), _key(), RateLimitRule(limit=1, window_seconds=60)
    try:
        await limiter.record(key, rule)
        decision = await limiter.peek(key, rule)
    finally:
        await dead.aclose()
    assert decision.allowed


def test_keys_do_not_contain_the_subject() -> None:
    key = limit_key("login", "203.0.113.9", "alice@example.com")
    assert key.startswith("login:")
    assert "alice" not in key and "203.0.113.9" not in key
    assert key != limit_key("login", "203.0.113.9", "bob@example.com")


async def test_peek_counts_recorded_events_without_recording_itself(redis: Redis) -> None:
    limiter, key, rule = RateLimiter(redis), _key(), RateLimitRule(limit=2, window_seconds=60)
    for _ in range(5):
        assert (await limiter.peek(key, rule)).allowed
    await limiter.record(key, rule)
    assert (await limiter.peek(key, rule)).remaining == 1
    await limiter.record(key, rule)
    refused = await limiter.peek(key, rule)
    assert not refused.allowed
    assert 1 <= refused.retry_after_seconds <= 60


async def test_peek_frees_a_slot_when_the_oldest_needed_event_ages_out(redis: Redis) -> None:
    limiter, key, rule = RateLimiter(redis), _key(), RateLimitRule(limit=1, window_seconds=1)
    await limiter.record(key, rule)
    assert not (await limiter.peek(key, rule)).allowed
    await asyncio.sleep(1.1)
    assert (await limiter.peek(key, rule)).allowed


@pytest.mark.parametrize(
    ("address", "network"),
    [
        ("203.0.113.9", "203.0.113.9"),
        ("2001:db8:1:2:aaaa:bbbb:cccc:dddd", "2001:db8:1:2::/64"),
        ("2001:db8:1:2::1", "2001:db8:1:2::/64"),
        ("::ffff:203.0.113.9", "203.0.113.9"),
        ("unknown", "unknown"),
    ],
)
def test_callers_are_counted_by_ipv4_address_or_ipv6_slash_64(address: str, network: str) -> None:
    assert client_network(address) == network


async def test_an_allowed_attempt_says_when_its_oldest_slot_frees_up(redis: Redis) -> None:
    limiter, key, rule = RateLimiter(redis), _key(), RateLimitRule(limit=3, window_seconds=60)
    first = await limiter.hit(key, rule)
    assert (first.remaining, first.retry_after_seconds) == (2, 0)
    assert 59 <= first.reset_seconds <= 60
    refused = [await limiter.hit(key, rule) for _ in range(3)][-1]
    assert not refused.allowed
    assert refused.reset_seconds == refused.retry_after_seconds


def test_the_fields_name_every_policy_and_report_the_one_closest_to_refusing() -> None:
    """draft-ietf-httpapi-ratelimit-headers: RateLimit-Policy lists the quota policies, and
    with several windows RateLimit reports the one with the lowest remaining quota."""
    login = RateLimitRule(limit=10, window_seconds=60)
    per_ip = RateLimitRule(limit=60, window_seconds=60)
    fields = rate_limit_fields(
        [
            PolicyState("login", login, RateLimitDecision(True, 9, 0, reset_seconds=60)),
            PolicyState("login-ip", per_ip, RateLimitDecision(True, 3, 0, reset_seconds=12)),
        ]
    )
    assert fields == {
        "RateLimit-Policy": '"login";q=10;w=60, "login-ip";q=60;w=60',
        "RateLimit": '"login-ip";r=3;t=12',
    }
    assert rate_limit_fields([]) == {}


def _field(value: str) -> tuple[str, dict[str, int]]:
    """A RateLimit item, `"name";r=1;t=2`, as (name, {param: value})."""
    name, *params = value.split(";")
    return name.strip('"'), {k: int(v) for k, v in (param.split("=") for param in params)}


async def test_login_answers_tell_the_caller_its_remaining_attempts(
    app_client: Callable[..., Any],
) -> None:
    """Every answer of the login route carries the fields, the failed ones too (the services
    are down here, so each attempt is a 503), and the refusal agrees with its Retry-After."""
    _, client = await app_client(RATE_LIMIT_LOGIN="3/60", TRUST_PROXY_HEADERS=True)
    headers = {"X-Forwarded-For": f"2001:db8:{uuid.uuid4().hex[:4]}::1"}
    body = {"email": f"{uuid.uuid4().hex}@example.com", "password": "pw"}
    remaining = []
    for _ in range(3):
        answer = await client.post("/api/v1/auth/login", json=body, headers=headers)
        assert answer.status_code == 503
        assert '"login";q=3;w=60' in answer.headers["ratelimit-policy"]
        assert '"login-ip";q=1000;w=60' in answer.headers["ratelimit-policy"]
        name, params = _field(answer.headers["ratelimit"])
        assert name == "login" and 59 <= params["t"] <= 60
        remaining.append(params["r"])
    assert remaining == [2, 1, 0]

    refused = await client.post("/api/v1/auth/login", json=body, headers=headers)
    assert refused.status_code == 429
    name, params = _field(refused.headers["ratelimit"])
    assert (name, params["r"]) == ("login", 0)
    assert params["t"] == int(refused.headers["retry-after"])


async def test_signup_answers_carry_the_signup_policy(app_client: Callable[..., Any]) -> None:
    _, client = await app_client(RATE_LIMIT_SIGNUP="2/hour", TRUST_PROXY_HEADERS=True)
    headers = {"X-Forwarded-For": f"2001:db8:{uuid.uuid4().hex[:4]}::1"}
    body = {"email": f"{uuid.uuid4().hex}@example.com", "password": "long enough pw", "name": "A"}
    first = await client.post("/api/v1/auth/signup", json=body, headers=headers)
    assert first.headers["ratelimit-policy"] == '"signup";q=2;w=3600'
    assert _field(first.headers["ratelimit"])[1]["r"] == 1
    await client.post("/api/v1/auth/signup", json=body, headers=headers)
    refused = await client.post("/api/v1/auth/signup", json=body, headers=headers)
    assert refused.status_code == 429
    assert _field(refused.headers["ratelimit"])[1] == {
        "r": 0,
        "t": int(refused.headers["retry-after"]),
    }


async def test_routes_without_a_limit_carry_no_ratelimit_fields(client: httpx.AsyncClient) -> None:
    answer = await client.get("/health")
    assert answer.status_code == 200
    assert "ratelimit" not in answer.headers and "ratelimit-policy" not in answer.headers
