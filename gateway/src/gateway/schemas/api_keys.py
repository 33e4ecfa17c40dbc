"""Bodies of the API key routes. A key's secret appears once, in the creation response."""

from datetime import datetime
from typing import Annotated, Self

from pydantic import Field

from gateway.schemas.base import (
    DISPLAY_TEXT_PATTERN,
    UNICODE_TEXT,
    ApiModel,
    ProtoMirror,
    with_secret,
)
from objectvision.v1 import auth_pb2

MAX_KEY_NAME_LENGTH = 100


class ApiKeyCreateIn(ApiModel):
    name: Annotated[
        str,
        Field(min_length=1, max_length=MAX_KEY_NAME_LENGTH, pattern=DISPLAY_TEXT_PATTERN),
        UNICODE_TEXT,
    ]


class ApiKeyOut(ProtoMirror):
    id: str
    name: str
    prefix: str = Field(description="The key's first characters, to recognise it in a list.")
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


class CreatedApiKeyOut(ApiKeyOut):
    secret: str = Field(description="The whole key, for the X-API-Key header. Shown only once.")

    @classmethod
    def from_created(cls, created: auth_pb2.CreatedApiKey) -> Self:
        return with_secret(cls, ApiKeyOut.from_proto(created.key), created.secret)


class ApiKeyListOut(ApiModel):
    items: list[ApiKeyOut]
