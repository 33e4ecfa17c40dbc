"""Local verification of access tokens against the auth service's public keys.

Mirrors auth_service.tokens.access (docs/adr/0002-auth-tokens.md): EdDSA only, the key id
must name a published key, every issued claim is required, `typ` must be "access", `sid`
(the session the token belongs to, checked against the revocation list) must be a UUID.
Pinning the algorithm list is what stops `alg: none` and HMAC-signed-with-the-public-key
forgeries; the library would otherwise pick the algorithm from the attacker's header.
"""

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from google.protobuf.timestamp_pb2 import Timestamp

from objectvision.v1 import auth_pb2, common_pb2

ALGORITHMS = ("EdDSA",)
REQUIRED_CLAIMS = ("exp", "iat", "nbf", "jti", "sub", "aud", "iss", "typ", "sid")
ACCESS_TOKEN_TYPE = "access"  # noqa: S105 - a claim value, not a secret
ADMIN_CLAIM = "admin"
# OpenID's standard claim: whether the address was verified when the token was minted.
EMAIL_VERIFIED_CLAIM = "email_verified"
# The auth service accepts the same skew, so both sides agree on when a token is live.
CLOCK_SKEW_SECONDS = 5
AUTH_METHOD_JWT = "jwt"
# Longer than any real token; refusing early keeps base64/JSON parsing of junk bounded.
MAX_TOKEN_LENGTH = 8192


class InvalidTokenError(Exception):
    """The token is not a live access token; the message is safe to show."""


@dataclass(frozen=True)
class KeySet:
    """The auth service's published verification keys, issuer and audience."""

    keys: Mapping[str, Ed25519PublicKey]
    issuer: str
    audience: str

    @classmethod
    def from_jwks(cls, jwks: auth_pb2.Jwks) -> "KeySet":
        """Usable keys only: Ed25519 signing keys for EdDSA, each with a key id."""
        keys: dict[str, Ed25519PublicKey] = {}
        for jwk in jwks.keys:
            if jwk.kty != "OKP" or jwk.crv != "Ed25519" or not jwk.kid:
                continue
            if jwk.alg not in ("", *ALGORITHMS) or jwk.use not in ("", "sig"):
                continue
            key = jwt.PyJWK({"kty": jwk.kty, "crv": jwk.crv, "x": jwk.x}, algorithm="EdDSA").key
            if isinstance(key, Ed25519PublicKey):
                keys[jwk.kid] = key
        return cls(keys=keys, issuer=jwks.issuer, audience=jwks.audience)


@dataclass(frozen=True)
class AccessClaims:
    user_id: str
    is_admin: bool
    email_verified: bool
    token_id: str
    session_id: str
    expires_at: int


def token_key_id(token: str) -> str:
    """The `kid` of a token whose header names an allowed algorithm; nothing is verified yet."""
    if len(token) > MAX_TOKEN_LENGTH:
        raise InvalidTokenError("the access token is invalid")
    try:
        header = jwt.get_unverified_header(token)
    except jwt.InvalidTokenError as exc:
        raise InvalidTokenError("the access token is invalid") from exc
    kid = header.get("kid")
    if header.get("alg") not in ALGORITHMS or not isinstance(kid, str) or not kid:
        raise InvalidTokenError("the access token is invalid")
    return kid


def decode_access_token(token: str, key_set: KeySet) -> AccessClaims:
    """The claims of a genuine, live access token; raises InvalidTokenError otherwise."""
    kid = token_key_id(token)
    key = key_set.keys.get(kid)
    if key is None or not key_set.issuer or not key_set.audience:
        raise InvalidTokenError("the access token is invalid")
    try:
        claims: dict[str, Any] = jwt.decode(
            token,
            key,
            algorithms=list(ALGORITHMS),
            audience=key_set.audience,
            issuer=key_set.issuer,
            leeway=CLOCK_SKEW_SECONDS,
            options={"require": list(REQUIRED_CLAIMS), "strict_aud": True},
        )
    except jwt.ExpiredSignatureError as exc:
        raise InvalidTokenError("the access token has expired") from exc
    except jwt.InvalidTokenError as exc:
        raise InvalidTokenError("the access token is invalid") from exc
    return _checked_claims(claims)


def _checked_claims(claims: Mapping[str, Any]) -> AccessClaims:
    """The claims the signature covers but whose types the library does not check."""
    subject, token_id, is_admin = claims["sub"], claims["jti"], claims.get(ADMIN_CLAIM, False)
    email_verified = claims.get(EMAIL_VERIFIED_CLAIM, False)
    if claims["typ"] != ACCESS_TOKEN_TYPE or not isinstance(is_admin, bool):
        raise InvalidTokenError("the access token is invalid")
    if not isinstance(email_verified, bool):
        raise InvalidTokenError("the access token is invalid")
    if not isinstance(token_id, str) or not token_id:
        raise InvalidTokenError("the access token is invalid")
    try:
        user_id = str(uuid.UUID(subject))
        # Canonical form: the revocation entry is keyed on the id as the auth service wrote it.
        session_id = str(uuid.UUID(claims["sid"]))
    except (TypeError, ValueError, AttributeError) as exc:
        raise InvalidTokenError("the access token is invalid") from exc
    return AccessClaims(
        user_id=user_id,
        is_admin=is_admin,
        email_verified=email_verified,
        token_id=token_id,
        session_id=session_id,
        expires_at=int(claims["exp"]),
    )


def principal_from_claims(claims: AccessClaims) -> common_pb2.Principal:
    return common_pb2.Principal(
        user_id=claims.user_id,
        is_admin=claims.is_admin,
        email_verified=claims.email_verified,
        auth_method=AUTH_METHOD_JWT,
        credential_id=claims.token_id,
        credential_expires_at=Timestamp(seconds=claims.expires_at),
        session_id=claims.session_id,
    )
