"""Bodies of the API key routes. A key's secret appears once, in the creation response."""

from datetime import datetime
from typing import Annotated, Self

from pydantic import Field, Strict

from gateway.schemas.base import (
    DISPLAY_TEXT_PATTERN,
    UNICODE_TEXT,
    ApiModel,
    ProtoMirror,
    with_secret,
)
from objectvision.v1 import auth_pb2
from objectvision_common.api_keys import ALL_SCOPES, MAX_LIFETIME_DAYS, Scope

MAX_KEY_NAME_LENGTH = 100
# A scope by its name, as JSON and the proto messages carry it (strict mode would take only
# the enum member itself).
ScopeName = Annotated[Scope, Strict(False)]


class ApiKeyCreateIn(ApiModel):
    name: Annotated[
        str,
        Field(min_length=1, max_length=MAX_KEY_NAME_LENGTH, pattern=DISPLAY_TEXT_PATTERN),
        UNICODE_TEXT,
    ]
    scopes: list[ScopeName] | None = Field(
        default=None,
        min_length=1,
        max_length=len(ALL_SCOPES),
        description="What the key may do; left out, every scope. Account routes (API keys, "
        "profile and settings changes, deleting the account) need a signed-in session "
        "whatever the scopes.",
    )
    expires_in_days: int | None = Field(
        default=None,
        ge=1,
        le=MAX_LIFETIME_DAYS,
        description="Days until the key stops working; left out, it works until revoked.",
    )

    def to_proto(self) -> auth_pb2.CreateApiKeyRequest:
        return auth_pb2.CreateApiKeyRequest(
            name=self.name,
            scopes=[scope.value for scope in self.scopes or ()],
            expires_in_days=self.expires_in_days,
        )


class ApiKeyOut(ProtoMirror):
    id: str
    name: str
    prefix: str = Field(description="The key's first characters, to recognise it in a list.")
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None
    scopes: list[ScopeName]
    expires_at: datetime | None = Field(
        description="When the key stops working; null: when it is revoked."
    )


class CreatedApiKeyOut(ApiKeyOut):
    secret: str = Field(description="The whole key, for the X-API-Key header. Shown only once.")

    @classmethod
    def from_created(cls, created: auth_pb2.CreatedApiKey) -> Self:
        return with_secret(cls, ApiKeyOut.from_proto(created.key), created.secret)


class ApiKeyListOut(ApiModel):
    items: list[ApiKeyOut]
