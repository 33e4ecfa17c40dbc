"""The account row."""

import uuid
from datetime import datetime

from sqlalchemy import DateTime, String, false, func, true
from sqlalchemy.orm import Mapped, mapped_column

from auth_service.database import Base, utcnow


class User(Base):
    """An account. `email` is stored normalised and lowercased, so uniqueness is exact."""

    __tablename__ = "users"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    email: Mapped[str] = mapped_column(String(320), unique=True)
    name: Mapped[str] = mapped_column(String(100))
    password_hash: Mapped[str] = mapped_column(String(255))
    # When the current address was confirmed with an emailed link; None until then, and
    # again after every change of address (ADR 0029).
    email_verified_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    is_admin: Mapped[bool] = mapped_column(default=False, server_default=false())
    is_active: Mapped[bool] = mapped_column(default=True, server_default=true())
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, server_default=func.now()
    )
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, server_default=func.now()
    )
