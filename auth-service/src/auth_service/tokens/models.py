"""Refresh tokens, stored only as SHA-256 hashes and grouped into families (one per login), and
what each login was."""

import uuid
from datetime import datetime

from sqlalchemy import DateTime, ForeignKey, String, false, func
from sqlalchemy.orm import Mapped, mapped_column

from auth_service.database import Base, utcnow
from auth_service.opaque_tokens import StoredTokenColumns


class RefreshToken(StoredTokenColumns, Base):
    """One refresh token. Each use rotates it: `rotated_at` is set and a successor is issued
    in the same family; presenting a rotated token again revokes the whole family."""

    __tablename__ = "refresh_tokens"

    family_id: Mapped[uuid.UUID] = mapped_column(index=True)
    rotated_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class LoginSession(Base):
    """What a login was (ADR 0035), kept for the account's list of its sessions: when, from
    where as the gateway saw it, and whether it gave a second factor. Whether the session is
    still live is its refresh tokens' business; this row only describes it."""

    __tablename__ = "login_sessions"

    # The refresh-token family (the access tokens' `sid`).
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, server_default=func.now()
    )
    client_ip: Mapped[str] = mapped_column(String(64), default="", server_default="")
    user_agent: Mapped[str] = mapped_column(String(256), default="", server_default="")
    second_factor: Mapped[bool] = mapped_column(default=False, server_default=false())
