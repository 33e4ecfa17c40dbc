"""Every variable the auth service reads, named once (see .env.example)."""

from pathlib import Path
from typing import Annotated

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import NoDecode

from objectvision_common.emails import account_key
from objectvision_common.settings import GrpcServiceSettings

# OWASP Password Storage Cheat Sheet: Argon2id with at least 19 MiB, 2 iterations, 1 lane.
# Settings below this floor are refused at start-up rather than silently accepted.
ARGON2_MIN_MEMORY_COST_KIB = 19_456
ARGON2_MIN_TIME_COST = 2
ARGON2_MIN_PARALLELISM = 1


class AuthSettings(GrpcServiceSettings):
    """Auth service settings; values come from the environment or `.env`."""

    grpc_port: int = Field(default=50051, ge=0, le=65535, validation_alias="AUTH_GRPC_PORT")
    metrics_port: int = Field(default=9101, ge=0, le=65535, validation_alias="AUTH_METRICS_PORT")

    jwt_private_key: SecretStr | None = Field(default=None, validation_alias="JWT_PRIVATE_KEY")
    jwt_private_key_file: Path | None = Field(default=None, validation_alias="JWT_PRIVATE_KEY_FILE")
    # Ed25519 public keys (PEM blocks, one after another) published and accepted beside the
    # signing key but never used to sign: during a rotation, the previous key until its last
    # token has expired, or the next key before it signs (docs/runbooks.md). Public halves
    # only, so not secrets.
    jwt_verify_only_public_keys: str | None = Field(
        default=None, validation_alias="JWT_VERIFY_ONLY_PUBLIC_KEYS"
    )
    jwt_verify_only_public_keys_file: Path | None = Field(
        default=None, validation_alias="JWT_VERIFY_ONLY_PUBLIC_KEYS_FILE"
    )
    jwt_issuer: str = Field(
        default="objectvision-auth", min_length=1, validation_alias="JWT_ISSUER"
    )
    jwt_audience: str = Field(default="objectvision", min_length=1, validation_alias="JWT_AUDIENCE")
    access_token_expire_minutes: int = Field(
        default=30, ge=1, le=24 * 60, validation_alias="ACCESS_TOKEN_EXPIRE_MINUTES"
    )
    refresh_token_expire_days: int = Field(
        default=7, ge=1, le=365, validation_alias="REFRESH_TOKEN_EXPIRE_DAYS"
    )
    # How long the link of a forgotten-password email works: short, because the token
    # travels through the outbox, the events stream and the mail (ADR 0021). A day at most.
    password_reset_ttl_seconds: int = Field(
        default=1800, ge=1, le=24 * 3600, validation_alias="PASSWORD_RESET_TTL_SECONDS"
    )
    # How long the link of an email verification mail works (ADR 0029): longer than a reset
    # link's, since a new account's owner may read the welcome mail days later; a week at most.
    email_verification_ttl_seconds: int = Field(
        default=48 * 3600, ge=1, le=7 * 24 * 3600, validation_alias="EMAIL_VERIFICATION_TTL_SECONDS"
    )
    # Admin rights only for admin accounts with two-factor authentication on (ADR 0034
    # amendment); an admin without it acts as an ordinary account until it turns it on.
    require_two_factor_for_admins: bool = Field(
        default=False, validation_alias="REQUIRE_TWO_FACTOR_FOR_ADMINS"
    )
    # The name authenticator apps show beside the account's address (ADR 0034).
    totp_issuer: str = Field(
        default="ObjectVision", min_length=1, max_length=64, validation_alias="TOTP_ISSUER"
    )

    # RFC 9106's second recommended option (argon2-cffi's default profile): well above the
    # OWASP floor and ~50 ms per hash on a current server core.
    argon2_time_cost: int = Field(
        default=3, ge=ARGON2_MIN_TIME_COST, validation_alias="ARGON2_TIME_COST"
    )
    argon2_memory_cost_kib: int = Field(
        default=65_536, ge=ARGON2_MIN_MEMORY_COST_KIB, validation_alias="ARGON2_MEMORY_COST_KIB"
    )
    argon2_parallelism: int = Field(
        default=4, ge=ARGON2_MIN_PARALLELISM, le=64, validation_alias="ARGON2_PARALLELISM"
    )
    # Each hash holds ARGON2_MEMORY_COST_KIB while it runs; this caps the peak memory.
    argon2_max_concurrency: int = Field(default=4, ge=1, validation_alias="ARGON2_MAX_CONCURRENCY")

    # Accounts made admin once they verify one of these addresses (ADR 0029), not at sign-up.
    admin_emails: Annotated[frozenset[str], NoDecode] = Field(
        default=frozenset(), validation_alias="ADMIN_EMAILS"
    )

    @field_validator("admin_emails", mode="before")
    @classmethod
    def _split_admin_emails(cls, value: object) -> object:
        """A comma-separated list in the environment, each entry as its account key, so an
        admin address written in another spelling still names the account that verifies it
        (and a typo that is no address at all stops the service instead of going unnoticed)."""
        if isinstance(value, str):
            value = value.split(",")
        if isinstance(value, list | tuple | set | frozenset):
            return frozenset(account_key(str(item)) for item in value if str(item).strip())
        return value

    @field_validator(
        "jwt_verify_only_public_keys", "jwt_verify_only_public_keys_file", mode="before"
    )
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        """`JWT_VERIFY_ONLY_PUBLIC_KEYS=` (as in .env.example, and between rotations) means
        no such keys, not an empty list to parse nor the current directory."""
        return None if isinstance(value, str) and not value.strip() else value

    @model_validator(mode="after")
    def _one_key_source(self) -> "AuthSettings":
        if self.jwt_private_key is not None and self.jwt_private_key_file is not None:
            raise ValueError("set JWT_PRIVATE_KEY or JWT_PRIVATE_KEY_FILE, not both")
        if (
            self.jwt_verify_only_public_keys is not None
            and self.jwt_verify_only_public_keys_file is not None
        ):
            raise ValueError(
                "set JWT_VERIFY_ONLY_PUBLIC_KEYS or JWT_VERIFY_ONLY_PUBLIC_KEYS_FILE, not both"
            )
        return self

    @property
    def generated_key_path(self) -> Path:
        """Where a development signing key is kept when none is configured."""
        return self.data_dir / "keys" / "auth-jwt-ed25519.pem"
