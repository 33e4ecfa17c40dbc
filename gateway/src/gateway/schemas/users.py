"""Bodies of the user profile and settings routes."""

from datetime import datetime
from typing import Literal, Self

from pydantic import ConfigDict, StrictBool, model_validator

from gateway.schemas.auth import Email, NewPassword, Password, PersonName
from gateway.schemas.base import ApiModel, PatchModel, to_datetime
from objectvision.v1 import auth_pb2

Theme = Literal["light", "dark", "system"]
_NEEDS_CURRENT_PASSWORD = ("email", "password")


class UserOut(ApiModel):
    id: str
    email: str
    name: str
    created_at: datetime
    updated_at: datetime

    @classmethod
    def from_proto(cls, user: auth_pb2.User) -> Self:
        return cls(
            id=user.id,
            email=user.email,
            name=user.name,
            created_at=to_datetime(user.created_at),
            updated_at=to_datetime(user.updated_at),
        )


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


class SettingsOut(ApiModel):
    user_id: str
    theme: str
    notifications_enabled: bool
    updated_at: datetime

    @classmethod
    def from_proto(cls, settings: auth_pb2.UserSettings) -> Self:
        return cls(
            user_id=settings.user_id,
            theme=settings.theme,
            notifications_enabled=settings.notifications_enabled,
            updated_at=to_datetime(settings.updated_at),
        )


class SettingsUpdateIn(PatchModel):
    """Settings to change; absent ones stay as they are."""

    theme: Theme | None = None
    notifications_enabled: StrictBool | None = None

    def to_proto(self, user_id: str) -> auth_pb2.UpdateSettingsRequest:
        return auth_pb2.UpdateSettingsRequest(user_id=user_id, **self.changes())
