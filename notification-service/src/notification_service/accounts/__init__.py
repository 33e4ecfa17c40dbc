"""Accounts as notification-service sees them: erasing what a deleted account kept here."""
