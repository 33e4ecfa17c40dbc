"""Naming a file from its first bytes, for uploads this service refuses.

Images (pipeline/header.py) and videos (video/probe.py) each keep a table of formats they
recognise but do not take, so that the error names what was sent; the lookup in such a table
is the same for both and lives here.
"""

from collections.abc import Iterable
from typing import NamedTuple


class Signature(NamedTuple):
    """The bytes a format has at ``offset`` from the start, and its name in an error."""

    offset: int
    magic: bytes
    name: str


def recognise(head: bytes, signatures: Iterable[Signature]) -> str | None:
    """The name of the first signature that ``head`` carries; None when none matches."""
    for signature in signatures:
        end = signature.offset + len(signature.magic)
        if head[signature.offset : end] == signature.magic:
            return signature.name
    return None
