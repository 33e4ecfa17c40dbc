"""Settings base: each service subclasses it once, so every variable is named in one place."""

from pathlib import Path
from typing import Self

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

PRODUCTION_ENVIRONMENTS = frozenset({"production", "prod"})
# Shorter secrets are guessable offline from one signed value; the development defaults and
# the examples in .env.example and deploy/ all say "change-me" and are public.
MIN_PRODUCTION_SECRET_LENGTH = 32
_PUBLIC_SECRET_MARKER = "change-me"  # noqa: S105 - a marker, not a secret


def is_public_or_weak_secret(value: str) -> bool:
    """True for a secret that must not protect a production system."""
    return _PUBLIC_SECRET_MARKER in value.lower() or len(value) < MIN_PRODUCTION_SECRET_LENGTH


class CommonSettings(BaseSettings):
    """Variables every service reads. Values come from the environment or `.env`."""

    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")

    log_level: str = Field(default="INFO", validation_alias="LOG_LEVEL")
    log_json: bool = Field(default=True, validation_alias="LOG_JSON")
    data_dir: Path = Field(default=Path(".data"), validation_alias="OBJECTVISION_DATA_DIR")
    environment: str = Field(default="development", validation_alias="OBJECTVISION_ENV")
    redis_url: str = Field(default="redis://127.0.0.1:6379/0", validation_alias="REDIS_URL")
    events_stream: str = Field(
        default="objectvision:events", min_length=1, validation_alias="EVENTS_STREAM"
    )
    # Signs the identity the gateway forwards to internal services (see identity.py).
    service_token_secret: str = Field(
        default="dev-only-service-secret-change-me", validation_alias="SERVICE_TOKEN_SECRET"
    )
    grpc_shutdown_grace_seconds: float = Field(
        default=10.0, validation_alias="GRPC_SHUTDOWN_GRACE_SECONDS"
    )

    @property
    def is_production(self) -> bool:
        return self.environment.strip().lower() in PRODUCTION_ENVIRONMENTS

    def secrets_to_check(self) -> dict[str, str]:
        """Secret variables by name; a service with more secrets extends this."""
        return {"SERVICE_TOKEN_SECRET": self.service_token_secret}

    @model_validator(mode="after")
    def _no_public_secret_in_production(self) -> Self:
        """Every service refuses to start in production on a development or example secret,
        so a forgotten variable fails the rollout instead of opening the system."""
        if self.is_production:
            weak = sorted(
                name
                for name, value in self.secrets_to_check().items()
                if is_public_or_weak_secret(value)
            )
            if weak:
                raise ValueError(
                    f"set {', '.join(weak)} in production: the value is a public default or "
                    f"shorter than {MIN_PRODUCTION_SECRET_LENGTH} characters"
                )
        return self


class GrpcServiceSettings(CommonSettings):
    """Variables of a gRPC service with a database schema of its own.

    Each service adds its own port variables (AUTH_GRPC_PORT, ...) so that one `.env`
    can describe the whole system.
    """

    database_url: str = Field(
        default="postgresql+asyncpg://postgres@127.0.0.1:5432/objectvision",
        validation_alias="DATABASE_URL",
    )
    bind_host: str = Field(default="127.0.0.1", validation_alias="BIND_HOST")
    database_pool_size: int = Field(default=10, validation_alias="DATABASE_POOL_SIZE")
