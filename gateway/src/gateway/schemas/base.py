"""The one base model of every request and response body, and the string types they use."""

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any, Generic, Protocol, Self, TypeVar, get_args

from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp
from pydantic import AfterValidator, BaseModel, ConfigDict, GetJsonSchemaHandler, field_validator
from pydantic.fields import FieldInfo
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema


class ApiModel(BaseModel):
    """Unknown fields are refused, so a misspelt field fails loudly instead of being dropped;
    strict, so a value is taken only in the type the OpenAPI document gives (no 0 for false,
    no "5" for 5)."""

    model_config = ConfigDict(extra="forbid", strict=True)


Created = TypeVar("Created", bound=ApiModel)


def with_secret(created: type[Created], resource: ApiModel, secret: str) -> Created:
    """A creation response: the resource exactly as every other response shows it, plus the
    secret (an API key, a webhook's signing key) that only this one response carries. Fields
    computed from others (a webhook's `enabled`) are computed again, not passed in."""
    fields = resource.model_dump(exclude=set(type(resource).model_computed_fields))
    return created.model_validate({**fields, "secret": secret})


class PatchModel(ApiModel):
    """A partial update: a field that is absent stays as it is.

    Fields are typed `X | None = None` so that "absent" has a Python value, but `null` is
    refused rather than read as "absent", and the schema gives each field its one type.
    """

    @field_validator("*", mode="before")
    @classmethod
    def _not_null(cls, value: Any) -> Any:
        if value is None:
            raise ValueError("leave the field out to keep its value; null is not allowed")
        return value

    @classmethod
    def __get_pydantic_json_schema__(
        cls, core_schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        schema = handler.resolve_ref_schema(handler(core_schema))
        for field in schema.get("properties", {}).values():
            variants = [v for v in field.get("anyOf", ()) if v != {"type": "null"}]
            if "anyOf" in field and len(variants) == 1:
                del field["anyOf"]
                field.pop("default", None)
                field.update(variants[0])
        return schema

    def changes(self) -> dict[str, Any]:
        return self.model_dump(exclude_unset=True)


def _encodable(value: str) -> str:
    """Lone surrogates (legal in JSON escapes) cannot cross gRPC: proto strings are UTF-8."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ValueError("must be valid Unicode text (no lone surrogates)") from exc
    return value


# Every request string goes on to a service: `Annotated[str, Field(...), UNICODE_TEXT]`.
UNICODE_TEXT = AfterValidator(_encodable)
# Text a person reads back (names of users and keys): no control characters (Unicode Cc), no
# line or paragraph separators (U+2028, U+2029: they break mail headers and log lines like a
# newline), no bidirectional embeddings, overrides or isolates (U+202A..U+202E,
# U+2066..U+2069: they reorder whatever is shown after the name) and not blank. A pattern
# rather than a validator, so the OpenAPI document says so.
_NOT_DISPLAYABLE = r"\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069"
DISPLAY_TEXT_PATTERN = rf"^[^{_NOT_DISPLAYABLE}]*[^\s{_NOT_DISPLAYABLE}][^{_NOT_DISPLAYABLE}]*$"


def request_body_schema(model: type[BaseModel]) -> dict[str, Any]:
    """`model`'s JSON schema for a request body a route declares by hand (`openapi_extra`,
    for a route that takes a second content type): the models it nests are written in place,
    since its `$defs` would not resolve inside the OpenAPI document, and `"default": null`
    is left out, as FastAPI leaves it out of its own schemas (null is refused: an optional
    field is absent, not null)."""
    schema = model.model_json_schema()
    definitions: dict[str, Any] = schema.pop("$defs", {})

    def inline(node: Any) -> Any:
        if isinstance(node, list):
            return [inline(item) for item in node]
        if not isinstance(node, dict):
            return node
        written = {
            key: inline(value)
            for key, value in node.items()
            if key != "$ref" and not (key == "default" and value is None)
        }
        reference = node.get("$ref")
        if isinstance(reference, str) and reference.startswith("#/$defs/"):
            return {**inline(definitions[reference.removeprefix("#/$defs/")]), **written}
        return written

    inlined: dict[str, Any] = inline(schema)
    return inlined


Item = TypeVar("Item", bound=ApiModel)


class PageCounts(Protocol):
    """What a service's answer to a paged List call says about the page, beside its items."""

    @property
    def total(self) -> int: ...

    @property
    def limit(self) -> int: ...

    @property
    def offset(self) -> int: ...


class PageOut(ApiModel, Generic[Item]):
    """One page of a paged list (history, jobs, webhook deliveries): its items, how many
    match in all, and the `limit` and `offset` it was asked with. The lists share this one
    shape, and `of` copies the counts from the service's answer for each of them. A list is
    a subclass naming its item type, which redeclares `total` to say what it counts (the
    field keeps its place in the schema and in the JSON)."""

    items: list[Item]
    total: int
    limit: int
    offset: int

    @classmethod
    def of(cls, items: Iterable[Item], listed: PageCounts) -> Self:
        """The page of `items`, converted from `listed`, with the counts `listed` gives."""
        return cls(items=list(items), total=listed.total, limit=listed.limit, offset=listed.offset)


def to_datetime(timestamp: Timestamp) -> datetime:
    return timestamp.ToDatetime(tzinfo=UTC)


def optional_datetime(message: Message, field: str) -> datetime | None:
    """A timestamp field that proto3 leaves unset when the event has not happened."""
    if not message.HasField(field):
        return None
    return to_datetime(getattr(message, field))


class ProtoMirror(ApiModel):
    """A response body that mirrors one proto message field for field, under the same names.

    `from_proto` copies the fields, so each such body lists them once, as its own fields,
    rather than again in a constructor call. Proto3 has no null: a field typed `X | None`
    here is None where the message leaves it unset (a timestamp, an `optional` scalar) or
    empty (a string).
    Timestamps become UTC datetimes and repeated fields lists. Bodies that rename, round or
    nest fields write their own `from_proto`.
    """

    @classmethod
    def from_proto(cls, message: Message) -> Self:
        return cls(
            **{name: _mirrored(message, name, field) for name, field in cls.model_fields.items()}
        )


def _mirrored(message: Message, name: str, field: FieldInfo) -> Any:
    """One field of `message` as the body field `field` of the same name takes it."""
    value = getattr(message, name)
    nullable = type(None) in get_args(field.annotation)
    if isinstance(value, Timestamp):
        return optional_datetime(message, name) if nullable else to_datetime(value)
    if isinstance(value, str):
        return (value or None) if nullable else value
    if isinstance(value, Sequence):
        return list(value)
    if nullable and message.DESCRIPTOR.fields_by_name[name].has_presence:
        # A proto3 `optional` scalar: unset is "none", not its zero value.
        return value if message.HasField(name) else None
    return value
