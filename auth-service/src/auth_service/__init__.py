"""ObjectVision's auth service: accounts, passwords, tokens, API keys and user settings."""
