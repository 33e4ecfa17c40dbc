"""The account row, and the flush that keeps two accounts from sharing an address."""

import uuid
from datetime import datetime

from sqlalchemy import DateTime, String, false, func, true
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
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
    # A change of address waiting for the link mailed to the new one (ADR 0033): `email`
    # stays the sign-in address until that link is opened, before this moment. Set for a
    # taken address too (no link is sent then), so the account reads the same either way.
    pending_email: Mapped[str | None] = mapped_column(String(320))
    pending_email_expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # When a second factor was turned on (ADR 0034); None while logins need the password only.
    two_factor_enabled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    is_admin: Mapped[bool] = mapped_column(default=False, server_default=false())
    is_active: Mapped[bool] = mapped_column(default=True, server_default=true())
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, server_default=func.now()
    )
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, server_default=func.now()
    )


async def flush_unique_email(session: AsyncSession, taken: Exception) -> None:
    """Flush `session`; where another account's writer took the same address meanwhile (the
    unique `email` refuses the row), roll back and raise `taken`, the answer the caller
    gives a taken address. Only a race gets here: the address was free when looked up."""
    try:
        await session.flush()
    except IntegrityError as exc:
        await session.rollback()
        if "uq_users_email" in str(exc.orig):
            raise taken from exc
        raise
