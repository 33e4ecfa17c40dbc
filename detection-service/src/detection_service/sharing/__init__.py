"""Share links: a stored detection shown to whoever holds a link's token (ADR 0048)."""
