"""Local access-token verification, with keys made here: every forgery must be refused."""

import base64
import hashlib
import hmac
import json
import time
import uuid
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from gateway.auth.tokens import (
    REQUIRED_CLAIMS,
    InvalidTokenError,
    KeySet,
    decode_access_token,
    principal_from_claims,
    token_key_id,
)
from objectvision.v1 import auth_pb2

ISSUER = "objectvision-auth"
AUDIENCE = "objectvision"
KID = "key-1"


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _public_raw(key: Ed25519PrivateKey) -> bytes:
    return key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def _jwks(key: Ed25519PrivateKey, kid: str = KID) -> auth_pb2.Jwks:
    return auth_pb2.Jwks(
        keys=[
            auth_pb2.JsonWebKey(
                kty="OKP",
                crv="Ed25519",
                x=_b64url(_public_raw(key)),
                kid=kid,
                alg="EdDSA",
                use="sig",
            )
        ],
        issuer=ISSUER,
        audience=AUDIENCE,
    )


@pytest.fixture(scope="module")
def signing_key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


@pytest.fixture(scope="module")
def key_set(signing_key: Ed25519PrivateKey) -> KeySet:
    return KeySet.from_jwks(_jwks(signing_key))


def _claims(**overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    claims: dict[str, Any] = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": str(uuid.uuid4()),
        "iat": now,
        "nbf": now,
        "exp": now + 600,
        "jti": uuid.uuid4().hex,
        "typ": "access",
        "admin": False,
        "sid": str(uuid.uuid4()),
    }
    claims.update(overrides)
    return {name: value for name, value in claims.items() if value is not None}


def _sign(claims: dict[str, Any], key: Ed25519PrivateKey, kid: str = KID) -> str:
    return jwt.encode(claims, key, algorithm="EdDSA", headers={"kid": kid})


def _unsigned(header: dict[str, Any], claims: dict[str, Any], signature: bytes = b"") -> str:
    head = _b64url(json.dumps(header).encode())
    body = _b64url(json.dumps(claims).encode())
    return f"{head}.{body}.{_b64url(signature)}"


def test_a_genuine_token_yields_its_principal(
    signing_key: Ed25519PrivateKey, key_set: KeySet
) -> None:
    claims = _claims(admin=True)
    verified = decode_access_token(_sign(claims, signing_key), key_set)
    principal = principal_from_claims(verified)
    assert principal.user_id == claims["sub"]
    assert principal.is_admin is True
    assert principal.auth_method == "jwt"
    assert principal.credential_id == claims["jti"]
    assert principal.credential_expires_at.seconds == claims["exp"]
    assert verified.session_id == claims["sid"]


def test_an_expired_token_is_refused(signing_key: Ed25519PrivateKey, key_set: KeySet) -> None:
    now = int(time.time())
    token = _sign(_claims(iat=now - 900, nbf=now - 900, exp=now - 60), signing_key)
    with pytest.raises(InvalidTokenError, match="expired"):
        decode_access_token(token, key_set)


def test_alg_none_is_refused(key_set: KeySet) -> None:
    token = _unsigned({"alg": "none", "typ": "JWT", "kid": KID}, _claims())
    with pytest.raises(InvalidTokenError):
        token_key_id(token)
    with pytest.raises(InvalidTokenError):
        decode_access_token(token, key_set)


@pytest.mark.parametrize("secret_form", ["raw", "pem", "jwk_x"])
def test_hs256_signed_with_the_public_key_is_refused(
    signing_key: Ed25519PrivateKey, key_set: KeySet, secret_form: str
) -> None:
    """The classic algorithm-confusion forgery: HMAC keyed with the published public key."""
    public = signing_key.public_key()
    secret = {
        "raw": _public_raw(signing_key),
        "pem": public.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ),
        "jwk_x": _b64url(_public_raw(signing_key)).encode(),
    }[secret_form]
    header = {"alg": "HS256", "typ": "JWT", "kid": KID}
    head = _b64url(json.dumps(header).encode())
    body = _b64url(json.dumps(_claims()).encode())
    signature = hmac.new(secret, f"{head}.{body}".encode(), hashlib.sha256).digest()
    with pytest.raises(InvalidTokenError):
        decode_access_token(f"{head}.{body}.{_b64url(signature)}", key_set)


@pytest.mark.parametrize(
    "overrides",
    [
        {"aud": "someone-else"},
        {"aud": [AUDIENCE, "someone-else"]},
        {"iss": "https://evil.example"},
        {"typ": "refresh"},
        {"admin": "yes"},
        {"sub": "not-a-uuid"},
        {"jti": ""},
        {"sid": ""},
        {"sid": "not-a-uuid"},
        {"sid": 7},
        {"nbf": int(time.time()) + 3600},
    ],
)
def test_wrong_claims_are_refused(
    signing_key: Ed25519PrivateKey, key_set: KeySet, overrides: dict[str, Any]
) -> None:
    with pytest.raises(InvalidTokenError):
        decode_access_token(_sign(_claims(**overrides), signing_key), key_set)


@pytest.mark.parametrize("missing", REQUIRED_CLAIMS)
def test_each_required_claim_is_required(
    signing_key: Ed25519PrivateKey, key_set: KeySet, missing: str
) -> None:
    claims = _claims()
    del claims[missing]
    with pytest.raises(InvalidTokenError):
        decode_access_token(_sign(claims, signing_key), key_set)


def test_a_tampered_payload_is_refused(signing_key: Ed25519PrivateKey, key_set: KeySet) -> None:
    head, _, signature = _sign(_claims(), signing_key).split(".")
    forged = _b64url(json.dumps(_claims(admin=True)).encode())
    with pytest.raises(InvalidTokenError):
        decode_access_token(f"{head}.{forged}.{signature}", key_set)


def test_a_token_from_another_key_with_the_same_kid_is_refused(key_set: KeySet) -> None:
    with pytest.raises(InvalidTokenError):
        decode_access_token(_sign(_claims(), Ed25519PrivateKey.generate()), key_set)


def test_an_unknown_kid_is_refused(signing_key: Ed25519PrivateKey, key_set: KeySet) -> None:
    with pytest.raises(InvalidTokenError):
        decode_access_token(_sign(_claims(), signing_key, kid="other"), key_set)


@pytest.mark.parametrize("token", ["", "abc", "a.b.c", "x" * 10_000])
def test_junk_is_refused(key_set: KeySet, token: str) -> None:
    with pytest.raises(InvalidTokenError):
        decode_access_token(token, key_set)


def test_the_key_set_keeps_only_usable_signing_keys(signing_key: Ed25519PrivateKey) -> None:
    x = _b64url(_public_raw(signing_key))
    jwks = auth_pb2.Jwks(
        keys=[
            auth_pb2.JsonWebKey(kty="OKP", crv="Ed25519", x=x, kid="good", alg="EdDSA"),
            auth_pb2.JsonWebKey(kty="OKP", crv="Ed25519", x=x, kid=""),
            auth_pb2.JsonWebKey(kty="OKP", crv="Ed25519", x=x, kid="enc", use="enc"),
            auth_pb2.JsonWebKey(kty="OKP", crv="Ed25519", x=x, kid="hs", alg="HS256"),
            auth_pb2.JsonWebKey(kty="RSA", kid="rsa"),
        ],
        issuer=ISSUER,
        audience=AUDIENCE,
    )
    assert list(KeySet.from_jwks(jwks).keys) == ["good"]


def test_a_key_set_without_issuer_or_audience_accepts_nothing(
    signing_key: Ed25519PrivateKey,
) -> None:
    jwks = _jwks(signing_key)
    jwks.audience = ""
    with pytest.raises(InvalidTokenError):
        decode_access_token(_sign(_claims(), signing_key), KeySet.from_jwks(jwks))
