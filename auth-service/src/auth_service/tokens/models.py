"""Refresh tokens, stored only as SHA-256 hashes and grouped into families (one per login)."""

import uuid
from datetime import datetime

from sqlalchemy import DateTime
from sqlalchemy.orm import Mapped, mapped_column

from auth_service.database import Base
from auth_service.opaque_tokens import StoredTokenColumns


class RefreshToken(StoredTokenColumns, Base):
    """One refresh token. Each use rotates it: `rotated_at` is set and a successor is issued
    in the same family; presenting a rotated token again revokes the whole family."""

    __tablename__ = "refresh_tokens"

    family_id: Mapped[uuid.UUID] = mapped_column(index=True)
    rotated_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
