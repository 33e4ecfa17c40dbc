"""Accounts: sign-up, credentials check, profile updates and who may see whom."""
