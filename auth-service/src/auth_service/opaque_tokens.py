"""The opaque tokens auth-service hands out and stores only as hashes: refresh tokens
(ADR 0002), password reset links (ADR 0021) and email verification links (ADR 0029).

Each is 256 random bits, URL-safe, behind a prefix that names its kind (`ovr_`, `ovp_`,
`ove_`), so it goes into a link as it is and a leaked one says what it is. Only its SHA-256
is stored: with that much entropy there is nothing to brute-force, so a slow hash would buy
nothing, and a database leak still hands out no working token.
"""

import hashlib
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import DateTime, ForeignKey, String, func
from sqlalchemy.orm import Mapped, mapped_column

from auth_service.database import utcnow
from objectvision_common.sealing import SecretBox

# Real tokens are 47 characters; anything far longer is not one, and is not hashed.
MAX_TOKEN_LENGTH = 256


@dataclass(frozen=True)
class LinkTerms:
    """How one kind of emailed link is made: how long it works, and the box its token is
    sealed in for the event that carries it to the email (ADR 0021 amendment)."""

    lifetime: timedelta
    sealer: SecretBox


def new_token(prefix: str) -> str:
    return prefix + secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def plausible(token: str) -> bool:
    """Worth hashing and looking up: not empty, not far longer than any real token."""
    return 0 < len(token) <= MAX_TOKEN_LENGTH


class StoredTokenColumns:
    """The columns of every stored token, refresh tokens and emailed links alike: the account
    it is for, the hash it is found by, when it was made, when it stops working, and when it
    was revoked (unset while it was not)."""

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, server_default=func.now()
    )
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class EmailedLinkColumns(StoredTokenColumns):
    """The columns of a single-use link sent by email (a reset, a verification): it works
    while `used_at` and `revoked_at` are unset and `expires_at` is ahead."""

    used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
