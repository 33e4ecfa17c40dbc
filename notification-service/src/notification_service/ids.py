"""Identifiers arrive as strings (proto, principals); the tables use UUIDs."""

import uuid

from objectvision_common.errors import DomainError, InvalidArgument


def parse_uuid(value: str, *, what: str, error: type[DomainError] = InvalidArgument) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except (ValueError, AttributeError, TypeError) as exc:
        raise error(f"{what} is not a valid id") from exc
