"""Refusing header injection: any value that lands in a mail header is checked here first."""

import unicodedata
from email.headerregistry import Address

MAX_HEADER_VALUE = 998


class UnsafeHeaderError(ValueError):
    """A value meant for a header carries line breaks or control characters."""


def safe_header_value(value: str, *, field: str) -> str:
    """`value` unchanged when it is safe in a header; UnsafeHeaderError otherwise.

    CR and LF would start a new header (`Bcc:` injection); other control characters have
    no business in a name or subject either. Refusing beats stripping: stripping would
    still send a message whose header the attacker partly chose.
    """
    if len(value) > MAX_HEADER_VALUE:
        raise UnsafeHeaderError(f"{field} is too long for a mail header")
    if any(unicodedata.category(char) in ("Cc", "Zl", "Zp") for char in value):
        raise UnsafeHeaderError(f"{field} contains line breaks or control characters")
    return value


def mailbox(addr_spec: str, display_name: str = "") -> Address:
    """A checked address; raises UnsafeHeaderError for unsafe or malformed parts."""
    safe_header_value(addr_spec, field="address")
    safe_header_value(display_name, field="name")
    if addr_spec.count("@") != 1 or any(char.isspace() for char in addr_spec):
        raise UnsafeHeaderError("address is not a single mailbox")
    try:
        return Address(display_name=display_name, addr_spec=addr_spec)
    except (ValueError, IndexError) as exc:
        raise UnsafeHeaderError(f"address is not a single mailbox: {exc}") from exc
