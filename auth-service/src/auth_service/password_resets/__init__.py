"""Forgotten passwords: single-use reset links sent by email, stored as a hash (ADR 0021)."""
