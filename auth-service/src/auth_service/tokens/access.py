"""Access tokens: short-lived EdDSA JWTs that the gateway can verify with the JWKS alone."""

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import jwt

from auth_service.tokens.keys import ALGORITHM, SigningKey, VerificationKey
from objectvision_common.errors import Unauthenticated

ACCESS_TYP = "access"
# `sid` names the session (refresh-token family) the token was minted for, so ending the
# session refuses the token even though nobody kept its `jti`.
REQUIRED_CLAIMS = ("exp", "iat", "nbf", "jti", "sub", "aud", "iss", "typ", "sid")
# Replicas' clocks may differ slightly; a token is never rejected for less than this.
CLOCK_SKEW = timedelta(seconds=5)

# Far longer than any token we issue; junk is refused before it is parsed.
MAX_TOKEN_LENGTH = 8192

INVALID_ACCESS = "the access token is invalid"
EXPIRED_ACCESS = "the access token has expired"


@dataclass(frozen=True)
class IssuedAccessToken:
    token: str
    jti: str
    expires_at: datetime
    expires_in: int


@dataclass(frozen=True)
class AccessClaims:
    """What a verified access token says."""

    user_id: uuid.UUID
    is_admin: bool
    # The standard OpenID claim: whether the account's address was verified when minted.
    email_verified: bool
    jti: str
    session_id: uuid.UUID
    expires_at: datetime


class AccessTokenCodec:
    """Signs access tokens with one key, and verifies them with that key or one of the
    verify-only keys (a rotation's previous or next key), for one issuer and audience.

    Verification pins the algorithm to EdDSA (no `none`, no HMAC-with-the-public-key
    confusion), requires every claim we issue, and takes the key by the token's key id.
    """

    def __init__(
        self,
        *,
        signing_key: SigningKey,
        issuer: str,
        audience: str,
        lifetime: timedelta,
        verify_only_keys: Sequence[VerificationKey] = (),
    ) -> None:
        self._key = signing_key
        # The signing key first: the JWKS lists them in this order.
        self._verification_keys = {
            key.kid: key for key in (signing_key.verification_key, *verify_only_keys)
        }
        self._issuer = issuer
        self._audience = audience
        self._lifetime = lifetime

    @property
    def issuer(self) -> str:
        return self._issuer

    @property
    def audience(self) -> str:
        return self._audience

    def jwks(self) -> list[dict[str, str]]:
        """Every key a token may be verified with: the signing key, then the verify-only."""
        return [key.public_jwk() for key in self._verification_keys.values()]

    def issue(
        self,
        *,
        user_id: uuid.UUID,
        is_admin: bool,
        email_verified: bool,
        session_id: uuid.UUID,
        now: datetime | None = None,
    ) -> IssuedAccessToken:
        """A token for `user_id` in session `session_id` (its refresh-token family)."""
        issued_at = (now or datetime.now(UTC)).replace(microsecond=0)
        expires_at = issued_at + self._lifetime
        jti = uuid.uuid4().hex
        claims = {
            "iss": self._issuer,
            "aud": self._audience,
            "sub": str(user_id),
            "iat": issued_at,
            "nbf": issued_at,
            "exp": expires_at,
            "jti": jti,
            "typ": ACCESS_TYP,
            "admin": is_admin,
            "email_verified": email_verified,
            "sid": str(session_id),
        }
        token = jwt.encode(
            claims, self._key.private_key, algorithm=ALGORITHM, headers={"kid": self._key.kid}
        )
        return IssuedAccessToken(
            token=token,
            jti=jti,
            expires_at=expires_at,
            expires_in=int(self._lifetime.total_seconds()),
        )

    def decode(self, token: str, *, verify_expiry: bool = True) -> AccessClaims:
        """The token's claims if it is genuine; raises Unauthenticated otherwise.

        `verify_expiry=False` is for logout, which may name an access token that has
        just expired.
        """
        if len(token) > MAX_TOKEN_LENGTH:
            raise Unauthenticated(INVALID_ACCESS)
        try:
            header = jwt.get_unverified_header(token)
        except jwt.InvalidTokenError as exc:
            raise Unauthenticated(INVALID_ACCESS) from exc
        kid = header.get("kid")
        key = self._verification_keys.get(kid) if isinstance(kid, str) else None
        if key is None:
            raise Unauthenticated(INVALID_ACCESS)
        try:
            claims = jwt.decode(
                token,
                key.public_key,
                algorithms=[ALGORITHM],
                audience=self._audience,
                issuer=self._issuer,
                leeway=CLOCK_SKEW,
                options={
                    "require": list(REQUIRED_CLAIMS),
                    "verify_exp": verify_expiry,
                    "strict_aud": True,
                },
            )
        except jwt.ExpiredSignatureError as exc:
            raise Unauthenticated(EXPIRED_ACCESS) from exc
        except jwt.InvalidTokenError as exc:
            raise Unauthenticated(INVALID_ACCESS) from exc
        flags = (claims.get("admin", False), claims.get("email_verified", False))
        if claims["typ"] != ACCESS_TYP or not all(isinstance(flag, bool) for flag in flags):
            raise Unauthenticated(INVALID_ACCESS)
        try:
            user_id = uuid.UUID(claims["sub"])
            session_id = uuid.UUID(claims["sid"])
            expires_at = datetime.fromtimestamp(int(claims["exp"]), UTC)
        except (TypeError, ValueError, AttributeError) as exc:
            raise Unauthenticated(INVALID_ACCESS) from exc
        if not isinstance(claims["jti"], str) or not claims["jti"]:
            raise Unauthenticated(INVALID_ACCESS)
        return AccessClaims(
            user_id=user_id,
            is_admin=claims.get("admin", False),
            email_verified=claims.get("email_verified", False),
            jti=claims["jti"],
            session_id=session_id,
            expires_at=expires_at,
        )
