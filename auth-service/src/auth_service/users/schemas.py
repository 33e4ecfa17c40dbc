"""What a valid email, password and name are, and the authenticated caller.

Validation runs before anything is hashed or written, so bad input changes nothing.
"""

import unicodedata
from dataclasses import dataclass

from email_validator import EmailNotValidError, validate_email

from auth_service.users.models import User
from objectvision_common.errors import InvalidArgument

MIN_PASSWORD_LENGTH = 8
# Long enough for any passphrase; short enough that hashing cannot be used to burn CPU.
MAX_PASSWORD_LENGTH = 128
MAX_NAME_LENGTH = 100
MAX_EMAIL_LENGTH = 320


def normalise_email(email: str) -> str:
    """The one form of an address we store and compare: validated, normalised, lowercase."""
    if not email.strip():
        raise InvalidArgument("email is required")
    if len(email) > MAX_EMAIL_LENGTH:
        raise InvalidArgument("email is not a valid email address")
    try:
        validated = validate_email(email.strip(), check_deliverability=False)
    except EmailNotValidError as exc:
        raise InvalidArgument(f"email is not a valid email address: {exc}") from exc
    return validated.normalized.lower()


def check_password(password: str) -> str:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise InvalidArgument(f"password must be at least {MIN_PASSWORD_LENGTH} characters")
    if len(password) > MAX_PASSWORD_LENGTH:
        raise InvalidArgument(f"password must be at most {MAX_PASSWORD_LENGTH} characters")
    return password


# Control characters and the Unicode line/paragraph separators: each breaks a mail header or
# a log line the way a newline does.
_NOT_DISPLAYABLE = frozenset({"Cc", "Zl", "Zp"})


def normalise_name(name: str) -> str:
    name = name.strip()
    if not name:
        raise InvalidArgument("name is required")
    if len(name) > MAX_NAME_LENGTH:
        raise InvalidArgument(f"name must be at most {MAX_NAME_LENGTH} characters")
    if any(unicodedata.category(char) in _NOT_DISPLAYABLE for char in name):
        raise InvalidArgument("name must not contain control characters or line separators")
    return name


@dataclass(frozen=True)
class Caller:
    """The account behind a call, as loaded from the database (not as the token claimed)."""

    user: User
    auth_method: str

    @property
    def is_admin(self) -> bool:
        return self.user.is_admin
