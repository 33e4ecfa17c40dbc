"""Refusing header injection: any value that lands in a mail header is checked here first."""

import unicodedata
from email.headerregistry import Address

import idna

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


def deliverable(addr_spec: str) -> str:
    """The address as mail servers route it: an internationalised domain (`bücher.example`,
    stored as the user typed it) in its ASCII form (`xn--bcher-kva.example`, IDNA 2008 with
    UTS 46 mapping). Left in Unicode, Python's mail library writes it as an RFC 2047 encoded
    word, which no server resolves. Raises UnsafeHeaderError for unsafe or malformed parts."""
    safe_header_value(addr_spec, field="address")
    if addr_spec.count("@") != 1 or any(char.isspace() for char in addr_spec):
        raise UnsafeHeaderError("address is not a single mailbox")
    local, domain = addr_spec.split("@")
    if domain.isascii():
        return addr_spec
    try:
        ascii_domain = idna.encode(domain, uts46=True).decode("ascii")
    except idna.IDNAError as exc:
        raise UnsafeHeaderError(f"address has a domain no server can route: {exc}") from exc
    return f"{local}@{ascii_domain}"


def mailbox(addr_spec: str, display_name: str = "") -> Address:
    """A checked address, its domain as servers route it (`deliverable`); raises
    UnsafeHeaderError for unsafe or malformed parts."""
    routed = deliverable(addr_spec)
    safe_header_value(display_name, field="name")
    try:
        return Address(display_name=display_name, addr_spec=routed)
    except (ValueError, IndexError) as exc:
        raise UnsafeHeaderError(f"address is not a single mailbox: {exc}") from exc
