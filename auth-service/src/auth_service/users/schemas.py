"""What a valid email, password and name are, and the authenticated caller.

Validation runs before anything is hashed or written, so bad input changes nothing.
"""

from dataclasses import dataclass

from auth_service.users.models import User
from objectvision_common import emails
from objectvision_common.display_text import undisplayable
from objectvision_common.errors import InvalidArgument, PermissionDenied

MIN_PASSWORD_LENGTH = 8
# Long enough for any passphrase; short enough that hashing cannot be used to burn CPU.
MAX_PASSWORD_LENGTH = 128
MAX_NAME_LENGTH = 100


def account_email(email: str) -> str:
    """The key an existing account is looked up by: the gateway limits on the same key."""
    try:
        return emails.account_key(email)
    except emails.InvalidEmail as exc:
        raise InvalidArgument(str(exc)) from exc


def new_account_email(email: str) -> str:
    """The key a new or changed address is stored under; it must be one we can mail."""
    try:
        return emails.new_account_address(email)
    except emails.InvalidEmail as exc:
        raise InvalidArgument(str(exc)) from exc


def check_password(password: str) -> str:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise InvalidArgument(f"password must be at least {MIN_PASSWORD_LENGTH} characters")
    if len(password) > MAX_PASSWORD_LENGTH:
        raise InvalidArgument(f"password must be at most {MAX_PASSWORD_LENGTH} characters")
    return password


def normalise_name(name: str) -> str:
    name = name.strip()
    if not name:
        raise InvalidArgument("name is required")
    if len(name) > MAX_NAME_LENGTH:
        raise InvalidArgument(f"name must be at most {MAX_NAME_LENGTH} characters")
    problem = undisplayable(name)
    if problem is not None:
        raise InvalidArgument(f"name must not contain {problem}")
    return name


@dataclass(frozen=True)
class AdminPolicy:
    """When an admin account's rights are in force. With `require_two_factor`
    (REQUIRE_TWO_FACTOR_FOR_ADMINS, ADR 0034 amendment) an admin whose account has no second
    factor acts as an ordinary account, in its tokens, its API keys and here, until it turns
    one on: a stolen admin password alone then opens no admin door."""

    require_two_factor: bool = False

    def grants(self, user: User) -> bool:
        return user.is_admin and (
            not self.require_two_factor or user.two_factor_enabled_at is not None
        )


@dataclass(frozen=True)
class Caller:
    """The account behind a call, as loaded from the database (not as the token claimed),
    with whether its admin rights are in force (AdminPolicy)."""

    user: User
    auth_method: str
    is_admin: bool
    # The signed-in session the call was made with (the access token's `sid`); empty for an
    # API key (ADR 0035).
    session_id: str = ""

    def require_admin(self, action: str) -> None:
        """PermissionDenied unless the caller's admin rights are in force; an admin account
        held back by AdminPolicy is told why, and what to do."""
        if self.is_admin:
            return
        if self.user.is_admin:
            raise PermissionDenied(
                f"only an admin can {action}, and this deployment requires admin accounts to "
                "use two-factor authentication: turn it on in the account's settings",
                code="admin_two_factor_required",
            )
        raise PermissionDenied(f"only an admin can {action}")
