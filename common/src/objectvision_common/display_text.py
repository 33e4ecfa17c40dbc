"""Text a person reads back (an account's name, a counting line's label): what it may hold.

Services check it themselves, since internal callers reach them without the gateway (whose
request schemas state the same rule as a pattern, for the OpenAPI document).
"""

import unicodedata

# Control characters and the Unicode line/paragraph separators: each breaks a mail header or
# a log line the way a newline does (and PostgreSQL's JSONB refuses NUL).
_NOT_DISPLAYABLE = frozenset({"Cc", "Zl", "Zp"})
# Bidirectional embeddings, overrides and isolates (U+202A..U+202E, U+2066..U+2069): a name
# shown in a mail, a list or a log would reorder the text after it, so "Eve<RLO>moc.elgoog"
# reads as a different name or address than the one stored.
BIDI_CONTROLS = frozenset(chr(code) for code in (*range(0x202A, 0x202F), *range(0x2066, 0x206A)))


def undisplayable(text: str) -> str | None:
    """What makes `text` unfit to show ("control characters or line separators",
    "bidirectional text controls"), or None when it is fit."""
    if any(unicodedata.category(char) in _NOT_DISPLAYABLE for char in text):
        return "control characters or line separators"
    if not BIDI_CONTROLS.isdisjoint(text):
        return "bidirectional text controls"
    return None
