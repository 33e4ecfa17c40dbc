"""The verification-token row: never the token itself, only its SHA-256."""

import uuid
from datetime import datetime

from sqlalchemy import DateTime, ForeignKey, String, func
from sqlalchemy.orm import Mapped, mapped_column

from auth_service.database import Base, utcnow


class EmailVerificationToken(Base):
    """One emailed verification link, for one address of one account. It works while
    `used_at` and `revoked_at` are unset, `expires_at` is ahead and the account still has
    `email`: a verification sets `used_at`; a newer link (sign-up, email change, resend) or
    a verification with another link sets `revoked_at`."""

    __tablename__ = "email_verification_tokens"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    # The address the link confirms, as the account stored it when the link was made.
    email: Mapped[str] = mapped_column(String(320))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, server_default=func.now()
    )
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
