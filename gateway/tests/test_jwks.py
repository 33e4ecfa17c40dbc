"""The key cache's refetch policy: new keys are picked up, made-up key ids cost little."""

import asyncio
import base64
import contextlib

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

    async def __call__(self) -> auth_pb2.Jwks:
        self.calls += 1
        await asyncio.sleep(0.01)
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
