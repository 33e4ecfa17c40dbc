"""Verified email addresses: single-use confirmation links sent by email, stored as a hash
(ADR 0029)."""
