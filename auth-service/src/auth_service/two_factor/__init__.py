"""Second factors (ADR 0034): a TOTP authenticator app per account, and its recovery codes."""
