"""Bodies of sign-up, login, refresh, logout and password resets."""

from typing import Annotated, Literal

from pydantic import AfterValidator, ConfigDict, Field

from gateway.schemas.base import DISPLAY_TEXT_PATTERN, UNICODE_TEXT, ApiModel
from objectvision_common.emails import MAX_EMAIL_LENGTH, InvalidEmail, new_account_address

# The auth service's limits (auth_service.users.schemas); checked here too so the OpenAPI
# document tells clients, and junk never reaches the password hasher.
MIN_PASSWORD_LENGTH = 8
MAX_PASSWORD_LENGTH = 128
MAX_NAME_LENGTH = 100
MAX_TOKEN_LENGTH = 4096


def _email_address(value: str) -> str:
    """The address as the auth service will store it: the same function decides, so the
    gateway never accepts an address the service would refuse, nor refuses one it takes."""
    try:
        return new_account_address(value)
    except InvalidEmail as exc:
        raise ValueError(str(exc)) from exc


Email = Annotated[
    str,
    Field(
        max_length=MAX_EMAIL_LENGTH,
        json_schema_extra={"format": "email"},
        description="Addresses at special-use domains (RFC 6761: .test, .local, .invalid, "
        ".localhost, ...) are refused, and so are non-ASCII characters or more than 64 "
        "characters before the @ (mail could not be sent to them).",
    ),
    UNICODE_TEXT,
    AfterValidator(_email_address),
]
NewPassword = Annotated[
    str, Field(min_length=MIN_PASSWORD_LENGTH, max_length=MAX_PASSWORD_LENGTH), UNICODE_TEXT
]
Password = Annotated[str, Field(min_length=1, max_length=MAX_PASSWORD_LENGTH), UNICODE_TEXT]
PersonName = Annotated[
    str,
    Field(min_length=1, max_length=MAX_NAME_LENGTH, pattern=DISPLAY_TEXT_PATTERN),
    UNICODE_TEXT,
]
Token = Annotated[str, Field(min_length=1, max_length=MAX_TOKEN_LENGTH), UNICODE_TEXT]
LoginEmail = Annotated[
    str,
    Field(min_length=1, max_length=MAX_EMAIL_LENGTH, description="The account's email."),
    UNICODE_TEXT,
]


class SignUpIn(ApiModel):
    email: Email
    password: NewPassword
    name: PersonName


class SignUpAcceptedOut(ApiModel):
    """The answer to every well-formed sign-up, whether or not the address had an account."""

    email: str = Field(description="The address, as the account is known: log in with it.")
    message: str = Field(
        default=(
            "Sign-up accepted: log in with this email and password. If the address already "
            "had an account, that account is unchanged and its owner has been told by email."
        )
    )


SecondFactorCode = Annotated[
    str,
    Field(
        min_length=1,
        max_length=64,
        description="For an account with two-factor authentication: the code its "
        "authenticator app shows now, or an unused recovery code (ADR 0034).",
    ),
    UNICODE_TEXT,
]


class LoginJson(ApiModel):
    """Login credentials as JSON."""

    email: LoginEmail
    password: Password
    second_factor_code: SecondFactorCode | None = None


class LoginForm(ApiModel):
    """The OAuth2 password grant form (RFC 6749 4.3), as Swagger UI and OAuth2 clients send it.

    Other form fields (scope, client_id, ...) are accepted and ignored, as the grant allows.
    """

    model_config = ConfigDict(extra="ignore")

    username: LoginEmail
    password: Password
    grant_type: Literal["password"] = "password"
    second_factor_code: SecondFactorCode | None = None


class LoginCredentials(ApiModel):
    """Either form of login, once parsed."""

    email: str
    password: str
    second_factor_code: str | None = None


class TokenPairOut(ApiModel):
    access_token: str
    refresh_token: str
    token_type: Literal["bearer"] = "bearer"  # noqa: S105 - the OAuth2 token type
    expires_in: int = Field(description="Seconds until the access token expires.")


class RefreshIn(ApiModel):
    refresh_token: Token


class LogoutIn(ApiModel):
    refresh_token: Token


class ForgotPasswordIn(ApiModel):
    email: LoginEmail


class ForgotPasswordAcceptedOut(ApiModel):
    """The answer to every well-formed request, whether or not the address has an account."""

    message: str = Field(
        default=(
            "If an account has this email address, a link to choose a new password has been "
            "sent to it. The link works once, for a limited time."
        )
    )


class VerifyEmailIn(ApiModel):
    token: Token = Field(description="The `token` of the verification link the email carried.")


class EmailVerifiedOut(ApiModel):
    """The address the link confirmed."""

    email: str = Field(description="The account's address, now verified.")
    email_verified: Literal[True] = True
    address_changed: bool = Field(
        default=False,
        description="True when the link confirmed a change of address: `email` is now the "
        "address to sign in with.",
    )


class VerificationResentOut(ApiModel):
    message: str = Field(
        default=(
            "A new link to confirm your email address has been sent to it; earlier links no "
            "longer work."
        )
    )


class ResetPasswordIn(ApiModel):
    token: Token = Field(description="The `token` of the reset link the email carried.")
    new_password: NewPassword
