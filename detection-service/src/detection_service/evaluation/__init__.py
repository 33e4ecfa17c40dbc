"""Scoring a finished batch job against the caller's ground-truth labels (ADR 0054)."""
