"""The reset-token row: never the token itself, only its SHA-256."""

from auth_service.database import Base
from auth_service.opaque_tokens import EmailedLinkColumns


class PasswordResetToken(EmailedLinkColumns, Base):
    """One emailed reset link. A reset sets `used_at`; a newer request, or a reset with
    another link, sets `revoked_at`."""

    __tablename__ = "password_reset_tokens"
