"""Names of the access-token revocation entries in Redis, for their writer and their readers.

auth-service writes them; the gateway checks them on every request that carries an access
token, and auth-service's VerifyToken checks them too (docs/adr/0002-auth-tokens.md).

- `auth:revoked:<jti>`: one access token (the one presented at logout).
- `auth:revoked-session:<sid>`: every access token of one session. A session is one
  refresh-token family: the login's access token and every one refreshed from it carry the
  family's id as their `sid` claim, so ending the family (logout, refresh-token reuse, a new
  password) ends all of them at once, including tokens the client no longer remembers.

Each entry lives as long as a token it refuses could still be accepted, so the list never
outgrows the set of live tokens. A token is refused when either of its two entries exists,
which one `EXISTS` over both keys answers.
"""

REVOKED_TOKEN_PREFIX = "auth:revoked:"  # noqa: S105 - a key prefix, not a secret
REVOKED_SESSION_PREFIX = "auth:revoked-session:"


def revoked_token_key(jti: str) -> str:
    return f"{REVOKED_TOKEN_PREFIX}{jti}"


def revoked_session_key(sid: str) -> str:
    return f"{REVOKED_SESSION_PREFIX}{sid}"


def revocation_keys(*, jti: str, sid: str) -> tuple[str, str]:
    """Both entries that can refuse one access token; it is revoked if either exists."""
    return revoked_token_key(jti), revoked_session_key(sid)
