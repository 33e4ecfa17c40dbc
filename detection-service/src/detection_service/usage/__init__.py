"""Usage: the images each account had detected, per UTC day, and its monthly quota (ADR 0030)."""
