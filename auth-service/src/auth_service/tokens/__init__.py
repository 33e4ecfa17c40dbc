"""Access tokens (EdDSA JWTs), rotating refresh tokens and the revocation list."""
