"""The opaque tokens auth-service hands out and stores only as hashes: refresh tokens
(ADR 0002), password reset links (ADR 0021) and email verification links (ADR 0029).

Each is 256 random bits, URL-safe, behind a prefix that names its kind (`ovr_`, `ovp_`,
`ove_`), so it goes into a link as it is and a leaked one says what it is. Only its SHA-256
is stored: with that much entropy there is nothing to brute-force, so a slow hash would buy
nothing, and a database leak still hands out no working token.
"""

import hashlib
import secrets

# Real tokens are 47 characters; anything far longer is not one, and is not hashed.
MAX_TOKEN_LENGTH = 256


def new_token(prefix: str) -> str:
    return prefix + secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def plausible(token: str) -> bool:
    """Worth hashing and looking up: not empty, not far longer than any real token."""
    return 0 < len(token) <= MAX_TOKEN_LENGTH
