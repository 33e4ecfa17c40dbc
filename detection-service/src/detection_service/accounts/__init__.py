"""Accounts as detection-service sees them: the values an admin set for one account in place
of a default, and erasing everything a deleted account stored."""
