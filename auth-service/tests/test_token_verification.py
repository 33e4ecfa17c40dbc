"""VerifyToken and GetJwks: only tokens this service signed, unexpired, unrevoked, for a live
account, for our audience, are accepted; the JWKS alone is enough to verify them."""

import base64
import hashlib
import hmac
import json
import time

import grpc
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from google.protobuf import empty_pb2

from auth_service.tokens.keys import SigningKey
from objectvision.v1 import auth_pb2


async def verify(auth, token: str):
    return await auth.VerifyToken(auth_pb2.VerifyTokenRequest(access_token=token))


async def test_a_valid_token_verifies_to_the_principal_of_its_user(auth, accounts):
    account = await accounts.create()
    pair = await accounts.login(account)

    principal = await verify(auth, pair.access_token)

    claims = jwt.decode(pair.access_token, options={"verify_signature": False})
    assert principal.user_id == account.id
    assert principal.is_admin is False
    assert principal.auth_method == "jwt"
    assert principal.credential_id == claims["jti"]
    assert principal.credential_expires_at.seconds == claims["exp"]


async def test_the_admin_flag_comes_from_the_account(auth, accounts):
    admin = await accounts.admin()

    principal = await verify(auth, (await accounts.login(admin)).access_token)

    assert principal.is_admin is True


async def test_access_tokens_carry_every_required_claim_and_the_key_id(accounts, settings, forge):
    pair = await accounts.login(await accounts.create())

    header = jwt.get_unverified_header(pair.access_token)
    claims = jwt.decode(pair.access_token, options={"verify_signature": False})

    assert header["alg"] == "EdDSA"
    assert header["kid"] == forge.key.kid
    assert {"exp", "iat", "nbf", "jti", "sub", "aud", "iss", "typ", "sid"} <= claims.keys()
    assert claims["iss"] == settings.jwt_issuer
    assert claims["aud"] == settings.jwt_audience
    assert claims["typ"] == "access"
    assert claims["exp"] - claims["iat"] == settings.access_token_expire_minutes * 60


async def test_jwks_publishes_the_ed25519_public_key_enough_to_verify_tokens(
    auth, accounts, settings
):
    account = await accounts.create()
    pair = await accounts.login(account)

    jwks = await auth.GetJwks(empty_pb2.Empty())

    assert jwks.issuer == settings.jwt_issuer
    assert jwks.audience == settings.jwt_audience
    [key] = jwks.keys
    assert (key.kty, key.crv, key.alg, key.use) == ("OKP", "Ed25519", "EdDSA", "sig")
    public_jwk = {"kty": key.kty, "crv": key.crv, "x": key.x, "kid": key.kid, "alg": key.alg}
    claims = jwt.decode(
        pair.access_token,
        jwt.PyJWK(public_jwk),
        algorithms=["EdDSA"],
        audience=jwks.audience,
        issuer=jwks.issuer,
    )
    assert claims["sub"] == account.id


async def test_jwks_never_contains_private_key_material(auth, signing_key):
    jwks = await auth.GetJwks(empty_pb2.Empty())

    private_raw = signing_key.private_key.private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )
    d = base64.urlsafe_b64encode(private_raw).rstrip(b"=").decode()
    assert d not in str(jwks)


async def test_an_expired_token_is_unauthenticated(auth, accounts, forge, rejected):
    account = await accounts.create()
    past = int(time.time()) - 3600
    token = forge.token(account.id, iat=past - 60, nbf=past - 60, exp=past)

    error = await rejected(grpc.StatusCode.UNAUTHENTICATED, verify(auth, token))

    assert "expired" in error.details()


async def test_a_token_that_is_not_yet_valid_is_unauthenticated(auth, accounts, forge, rejected):
    account = await accounts.create()
    token = forge.token(account.id, nbf=int(time.time()) + 600)

    await rejected(grpc.StatusCode.UNAUTHENTICATED, verify(auth, token))


async def test_a_correctly_forged_token_is_accepted_so_the_refusals_below_are_meaningful(
    auth, accounts, forge
):
    account = await accounts.create()

    principal = await verify(auth, forge.token(account.id))

    assert principal.user_id == account.id


async def test_an_alg_none_token_is_unauthenticated(auth, accounts, forge, unsigned, rejected):
    account = await accounts.create()
    header = {"alg": "none", "typ": "JWT", "kid": forge.key.kid}

    for token in (
        unsigned(header, forge.claims(account.id)) + ".",
        unsigned({**header, "alg": "None"}, forge.claims(account.id)) + ".",
    ):
        await rejected(grpc.StatusCode.UNAUTHENTICATED, verify(auth, token))


@pytest.mark.parametrize("public_form", ["pem", "raw", "jwk_x"])
async def test_an_hs256_token_signed_with_the_public_key_is_unauthenticated(
    auth, accounts, forge, unsigned, rejected, public_form
):
    """The classic algorithm confusion: a verifier that lets the token pick HMAC would use
    the (public) verification key as the shared secret."""
    account = await accounts.create()
    public = forge.key.public_key
    secrets = {
        "pem": public.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ),
        "raw": public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw),
        "jwk_x": forge.key.public_jwk()["x"].encode(),
    }
    signing_input = unsigned(
        {"alg": "HS256", "typ": "JWT", "kid": forge.key.kid}, forge.claims(account.id)
    )
    signature = hmac.new(secrets[public_form], signing_input.encode(), hashlib.sha256).digest()
    token = signing_input + "." + base64.urlsafe_b64encode(signature).rstrip(b"=").decode()

    await rejected(grpc.StatusCode.UNAUTHENTICATED, verify(auth, token))


@pytest.mark.parametrize(
    "overrides",
    [
        {"aud": "some-other-service"},
        {"aud": None},
        {"iss": "https://evil.example.com"},
        {"typ": "refresh"},
        {"jti": None},
        {"sub": "not-a-uuid"},
        {"admin": "yes"},
        {"email_verified": "yes"},
        {"sid": None},
        {"sid": "not-a-uuid"},
        {"jti": 7},
    ],
    ids=[
        "wrong audience",
        "no audience",
        "wrong issuer",
        "not an access token",
        "no jti",
        "subject not a user id",
        "admin not a boolean",
        "email_verified not a boolean",
        "no session",
        "session not a family id",
        "jti not a string",
    ],
)
async def test_a_signed_token_with_wrong_claims_is_unauthenticated(
    auth, accounts, forge, rejected, overrides
):
    account = await accounts.create()

    await rejected(
        grpc.StatusCode.UNAUTHENTICATED, verify(auth, forge.token(account.id, **overrides))
    )


async def test_a_tampered_payload_is_unauthenticated(auth, accounts, rejected):
    account = await accounts.create()
    header, payload, signature = (await accounts.login(account)).access_token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["admin"] = True
    tampered_payload = (
        base64.urlsafe_b64encode(json.dumps(claims, separators=(",", ":")).encode())
        .rstrip(b"=")
        .decode()
    )

    await rejected(
        grpc.StatusCode.UNAUTHENTICATED,
        verify(auth, f"{header}.{tampered_payload}.{signature}"),
    )


async def test_a_token_signed_by_another_key_is_unauthenticated(auth, accounts, forge, rejected):
    account = await accounts.create()
    stranger = SigningKey.from_private_key(Ed25519PrivateKey.generate())
    claims = forge.claims(account.id)

    await rejected(grpc.StatusCode.UNAUTHENTICATED, verify(auth, forge.sign(claims, key=stranger)))
    # Even when it claims our key id.
    impostor = SigningKey(private_key=stranger.private_key, kid=forge.key.kid)
    await rejected(grpc.StatusCode.UNAUTHENTICATED, verify(auth, forge.sign(claims, key=impostor)))


@pytest.mark.parametrize("garbage", ["", "not-a-jwt", "a.b.c", "ovr_refresh-token-shaped"])
async def test_garbage_is_unauthenticated(auth, rejected, garbage):
    await rejected(grpc.StatusCode.UNAUTHENTICATED, verify(auth, garbage))


async def test_a_token_of_a_disabled_or_deleted_account_is_unauthenticated(
    auth, accounts, database, rejected
):
    disabled = await accounts.create()
    deleted = await accounts.create()
    disabled_token = (await accounts.login(disabled)).access_token
    deleted_token = (await accounts.login(deleted)).access_token

    await database.execute("UPDATE auth.users SET is_active = false WHERE id = :id", id=disabled.id)
    await database.execute("DELETE FROM auth.users WHERE id = :id", id=deleted.id)

    await rejected(grpc.StatusCode.UNAUTHENTICATED, verify(auth, disabled_token))
    await rejected(grpc.StatusCode.UNAUTHENTICATED, verify(auth, deleted_token))
