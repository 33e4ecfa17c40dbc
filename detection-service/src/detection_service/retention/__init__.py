"""Retention: what users stored is deleted on its own once older than RETENTION_DAYS (ADR 0031)."""
