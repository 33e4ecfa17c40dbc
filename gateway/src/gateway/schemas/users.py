"""Bodies of the user profile and settings routes."""

from datetime import datetime
from typing import Literal, Self

from pydantic import ConfigDict, Field, StrictBool, model_validator

from gateway.schemas.auth import Email, NewPassword, Password, PersonName
from gateway.schemas.base import ApiModel, PageOut, PatchModel, ProtoMirror
from objectvision.v1 import auth_pb2

Theme = Literal["light", "dark", "system"]
_NEEDS_CURRENT_PASSWORD = ("email", "password")


class UserOut(ProtoMirror):
    id: str
    email: str = Field(
        description="The sign-in address. A change asked for does not show here until the "
        "link mailed to the new address is opened (see `pending_email`)."
    )
    email_verified: bool = Field(
        description="Whether the address was confirmed with the link mailed to it."
    )
    pending_email: str | None = Field(
        default=None,
        description="A new address asked for with PATCH, waiting for the link mailed to it "
        "(ADR 0033); null when none waits or the link has expired. Asking for the current "
        "address withdraws it.",
    )
    pending_email_expires_at: datetime | None = Field(
        default=None, description="When the waiting change's link stops working."
    )
    two_factor_enabled: bool = Field(
        default=False,
        description="Whether logging in takes a code from an authenticator app too (ADR 0034).",
    )
    name: str
    created_at: datetime
    updated_at: datetime


class UserUpdateIn(PatchModel):
    """Fields to change; changing email or password needs `current_password`."""

    model_config = ConfigDict(
        json_schema_extra={
            "dependentRequired": {field: ["current_password"] for field in _NEEDS_CURRENT_PASSWORD}
        }
    )

    name: PersonName | None = None
    email: Email | None = None
    password: NewPassword | None = None
    current_password: Password | None = None

    @model_validator(mode="after")
    def _current_password_for_credentials(self) -> Self:
        changing = self.model_fields_set & set(_NEEDS_CURRENT_PASSWORD)
        if changing and "current_password" not in self.model_fields_set:
            raise ValueError("current_password is required to change email or password")
        return self

    def to_proto(self, user_id: str) -> auth_pb2.UpdateUserRequest:
        return auth_pb2.UpdateUserRequest(user_id=user_id, **self.changes())


class SettingsOut(ProtoMirror):
    user_id: str
    theme: str
    notifications_enabled: bool
    updated_at: datetime


class SettingsUpdateIn(PatchModel):
    """Settings to change; absent ones stay as they are."""

    theme: Theme | None = None
    notifications_enabled: StrictBool | None = None

    def to_proto(self, user_id: str) -> auth_pb2.UpdateSettingsRequest:
        return auth_pb2.UpdateSettingsRequest(user_id=user_id, **self.changes())


class AccountStatusIn(PatchModel):
    """What an admin changes of an account: `active` (false suspends it, true restores it),
    `admin` (grants or withdraws admin rights), or both; absent ones stay as they are."""

    model_config = ConfigDict(json_schema_extra={"minProperties": 1})

    active: StrictBool | None = None
    admin: StrictBool | None = None

    @model_validator(mode="after")
    def _something_to_change(self) -> Self:
        if not self.model_fields_set:
            raise ValueError("give `active`, `admin` or both")
        return self

    def to_proto(self, user_id: str) -> auth_pb2.SetAccountStatusRequest:
        return auth_pb2.SetAccountStatusRequest(user_id=user_id, **self.changes())


class AccountStatusOut(UserOut):
    """An account as an admin sees it: its profile, whether it is suspended, whether it is
    an admin."""

    is_active: bool = Field(
        description="False while the account is suspended: it cannot log in, its sessions "
        "ended and its API keys do not work."
    )
    is_admin: bool


class DeleteAccountIn(ApiModel):
    """Deleting the account takes its password again: a session or an API key alone will
    not do."""

    current_password: Password


class AccountDeletionAcceptedOut(ApiModel):
    """The account is gone; what it stored is being erased in the background."""

    message: str = Field(
        default=(
            "The account was deleted: it can no longer log in, and its sessions and API keys "
            "no longer work. Its images, detections, jobs, videos, webhooks and settings are "
            "being erased, and a last email confirms the deletion to its address."
        )
    )


class AccountListOut(PageOut[AccountStatusOut]):
    """One page of the accounts an admin looked up, newest first."""

    total: int = Field(description="How many accounts match in all.")

    @classmethod
    def from_proto(cls, listed: auth_pb2.ListUsersResponse) -> Self:
        return cls.of(map(AccountStatusOut.from_proto, listed.users), listed)
