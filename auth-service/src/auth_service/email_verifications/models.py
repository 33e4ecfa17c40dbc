"""The verification-token row: never the token itself, only its SHA-256."""

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from auth_service.database import Base
from auth_service.opaque_tokens import EmailedLinkColumns


class EmailVerificationToken(EmailedLinkColumns, Base):
    """One emailed verification link, for one address of one account. It works only while
    the account still has `email` too: a verification sets `used_at`; a newer link (sign-up,
    email change, resend) or a verification with another link sets `revoked_at`."""

    __tablename__ = "email_verification_tokens"

    # The address the link confirms, as the account stored it when the link was made.
    email: Mapped[str] = mapped_column(String(320))
