"""Accounts as detection-service sees them: erasing everything a deleted account stored."""
