"""The key cache's refetch policy: new keys are picked up, made-up key ids cost little, and a
key no longer published stops verifying once the key set has aged out."""

import asyncio
import base64
import contextlib

import grpc
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from gateway.auth.jwks import JwksCache
from gateway.auth.tokens import InvalidTokenError
from objectvision.v1 import auth_pb2


def _jwk(kid: str) -> auth_pb2.JsonWebKey:
    raw = (
        Ed25519PrivateKey.generate()
        .public_key()
        .public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    )
    x = base64.urlsafe_b64encode(raw).rstrip(b"=").decode()
    return auth_pb2.JsonWebKey(kty="OKP", crv="Ed25519", x=x, kid=kid, alg="EdDSA", use="sig")


class _Publisher:
    """Stands in for the key endpoint: what it publishes changes when keys rotate."""

    def __init__(self, *kids: str) -> None:
        self.kids = list(kids)
        self.calls = 0
        self.reachable = True

    async def __call__(self) -> auth_pb2.Jwks:
        self.calls += 1
        await asyncio.sleep(0.01)
        if not self.reachable:
            raise grpc.aio.AioRpcError(
                grpc.StatusCode.UNAVAILABLE, grpc.aio.Metadata(), grpc.aio.Metadata()
            )
        return auth_pb2.Jwks(keys=[_jwk(k) for k in self.kids], issuer="i", audience="a")


class _Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_a_rotated_key_is_fetched_on_first_sight() -> None:
    publisher, clock = _Publisher("old"), _Clock()
    cache = JwksCache(publisher, min_refresh_seconds=10, clock=clock)
    await cache.refresh()
    publisher.kids.append("new")
    clock.now += 11
    assert "new" in (await cache.key_set_for("new")).keys
    assert "old" in (await cache.key_set_for("old")).keys
    assert publisher.calls == 2


async def test_unknown_key_ids_refetch_at_most_once_per_interval() -> None:
    publisher, clock = _Publisher("k"), _Clock()
    cache = JwksCache(publisher, min_refresh_seconds=10, clock=clock)
    await cache.refresh()
    for kid in ("made-up-1", "made-up-2", "made-up-3"):
        with contextlib.suppress(InvalidTokenError):
            await cache.key_set_for(kid)
    assert publisher.calls == 1
    clock.now += 11
    with contextlib.suppress(InvalidTokenError):
        await cache.key_set_for("made-up-4")
    assert publisher.calls == 2


async def test_concurrent_lookups_share_one_fetch() -> None:
    publisher = _Publisher("k")
    cache = JwksCache(publisher, min_refresh_seconds=10)
    key_sets = await asyncio.gather(*(cache.key_set_for("k") for _ in range(20)))
    assert publisher.calls == 1
    assert all("k" in key_set.keys for key_set in key_sets)


async def test_a_key_no_longer_published_stops_verifying_once_the_key_set_ages_out() -> None:
    publisher, clock = _Publisher("previous", "current"), _Clock()
    cache = JwksCache(publisher, min_refresh_seconds=10, max_age_seconds=300, clock=clock)
    await cache.refresh()
    publisher.kids.remove("previous")

    clock.now += 299
    assert "previous" in (await cache.key_set_for("previous")).keys
    clock.now += 1
    with pytest.raises(InvalidTokenError):
        await cache.key_set_for("previous")
    assert "current" in (await cache.key_set_for("current")).keys
    assert publisher.calls == 2


async def test_an_aged_key_set_is_kept_while_the_auth_service_cannot_be_reached() -> None:
    publisher, clock = _Publisher("previous", "current"), _Clock()
    cache = JwksCache(publisher, min_refresh_seconds=10, max_age_seconds=300, clock=clock)
    await cache.refresh()
    publisher.kids.remove("previous")
    publisher.reachable = False

    clock.now += 300
    assert "previous" in (await cache.key_set_for("previous")).keys
    clock.now += 5
    assert "current" in (await cache.key_set_for("current")).keys
    assert publisher.calls == 2

    publisher.reachable = True
    clock.now += 5
    with pytest.raises(InvalidTokenError):
        await cache.key_set_for("previous")
    assert publisher.calls == 3


async def test_a_new_key_id_still_fails_while_the_auth_service_is_down() -> None:
    publisher, clock = _Publisher("current"), _Clock()
    cache = JwksCache(publisher, min_refresh_seconds=10, max_age_seconds=300, clock=clock)
    await cache.refresh()
    publisher.reachable = False
    clock.now += 11

    with pytest.raises(grpc.aio.AioRpcError):
        await cache.key_set_for("following")
