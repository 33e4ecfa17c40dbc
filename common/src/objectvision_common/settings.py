"""Settings base: each service subclasses it once, so every variable is named in one place."""

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


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
