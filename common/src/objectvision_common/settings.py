"""Settings base: each service subclasses it once, so every variable is named in one place."""

from pathlib import Path
from typing import Annotated, Self

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from objectvision_common.peer_policy import PeerPolicy
from objectvision_common.tls import TlsFiles

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
    # Mutual TLS on internal gRPC (servers and clients): all three or none. None: plaintext,
    # as in local runs, where the signed principal alone authenticates callers.
    grpc_tls_cert_file: Path | None = Field(default=None, validation_alias="GRPC_TLS_CERT_FILE")
    grpc_tls_key_file: Path | None = Field(default=None, validation_alias="GRPC_TLS_KEY_FILE")
    grpc_tls_ca_file: Path | None = Field(default=None, validation_alias="GRPC_TLS_CA_FILE")

    @field_validator("grpc_tls_cert_file", "grpc_tls_key_file", "grpc_tls_ca_file", mode="before")
    @classmethod
    def _empty_path_is_unset(cls, value: object) -> object:
        """`GRPC_TLS_CERT_FILE=` (as in .env.example) means unset, not the current directory."""
        return None if isinstance(value, str) and not value.strip() else value

    @model_validator(mode="after")
    def _tls_all_or_nothing(self) -> Self:
        """A partial set would silently fall back to plaintext or fail at the first call."""
        files = {
            "GRPC_TLS_CERT_FILE": self.grpc_tls_cert_file,
            "GRPC_TLS_KEY_FILE": self.grpc_tls_key_file,
            "GRPC_TLS_CA_FILE": self.grpc_tls_ca_file,
        }
        missing = sorted(name for name, value in files.items() if value is None)
        if missing and len(missing) < len(files):
            raise ValueError(
                f"mutual TLS needs GRPC_TLS_CERT_FILE, GRPC_TLS_KEY_FILE and GRPC_TLS_CA_FILE "
                f"together (or none of them for plaintext); missing: {', '.join(missing)}"
            )
        return self

    @property
    def grpc_tls(self) -> TlsFiles | None:
        """The mTLS files for servers and clients, or None for plaintext."""
        if (
            self.grpc_tls_cert_file is None
            or self.grpc_tls_key_file is None
            or self.grpc_tls_ca_file is None
        ):
            return None
        return TlsFiles(self.grpc_tls_cert_file, self.grpc_tls_key_file, self.grpc_tls_ca_file)

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


class EventsConsumerSettings(CommonSettings):
    """How a service reads the events stream (objectvision_common.events), for every service
    that consumes it; each names its own consumer group.

    One set of variables for all of them: a `.env` describes the whole system, and a claim
    timeout or a dead-letter threshold means the same thing in every consumer group.
    """

    # Empty: hostname-pid, unique per replica.
    events_consumer_name: str = Field(default="", validation_alias="EVENTS_CONSUMER_NAME")
    events_block_ms: int = Field(default=2000, ge=10, le=4000, validation_alias="EVENTS_BLOCK_MS")
    # A message unacknowledged this long (its consumer died or failed) is claimed again.
    events_claim_idle_seconds: float = Field(
        default=60.0, gt=0, validation_alias="EVENTS_CLAIM_IDLE_SECONDS"
    )
    # After this many deliveries of one message it moves to "<stream>:dead".
    events_max_deliveries: int = Field(default=10, ge=1, validation_alias="EVENTS_MAX_DELIVERIES")
    # Events handled at once; those of one job (or user) still go one after the other.
    events_concurrency: int = Field(default=16, ge=1, validation_alias="EVENTS_CONCURRENCY")
    # Rows a deleted account's erasure removes per transaction (ADR 0025): every consumer
    # acts on `user.deleted`, detection on its jobs, detections and images, notification on
    # its deliveries.
    erasure_chunk_size: int = Field(default=500, ge=1, validation_alias="ERASURE_CHUNK_SIZE")


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
    # grpc.health.v1 alone, in plaintext, for probes that cannot present a client certificate
    # (Kubernetes). 0: off. Each process needs its own port, so local runs leave it off.
    grpc_health_port: int = Field(default=0, ge=0, le=65535, validation_alias="GRPC_HEALTH_PORT")
    database_pool_size: int = Field(default=10, validation_alias="DATABASE_POOL_SIZE")
    # Clients are asked to reconnect after this long, so long-lived channels spread over
    # replicas the autoscaler added; calls in flight finish first. 0: never.
    grpc_max_connection_age_seconds: float = Field(
        default=300.0, ge=0, validation_alias="GRPC_MAX_CONNECTION_AGE_SECONDS"
    )
    # How often the service measures the outbox and stream backlogs it exports as gauges
    # (objectvision_common.backlog); each measurement is one indexed query or a few Redis calls.
    backlog_metrics_interval_seconds: float = Field(
        default=15.0, gt=0, validation_alias="BACKLOG_METRICS_INTERVAL_SECONDS"
    )
    # With mutual TLS: the client certificates' common names this service serves, and which
    # methods each may call (objectvision_common.peer_policy has the syntax), e.g.
    # `gateway,notification-service=/objectvision.v1.AuthService/GetUser`; any other
    # certificate from the CA, or a listed one on a method not in its list, gets
    # PERMISSION_DENIED (health and reflection excepted). Empty: every certificate the CA
    # signed, on every method.
    grpc_allowed_peers: Annotated[PeerPolicy, NoDecode] = Field(
        default_factory=PeerPolicy, validation_alias="GRPC_ALLOWED_PEERS"
    )

    @field_validator("grpc_allowed_peers", mode="before")
    @classmethod
    def _peer_policy(cls, value: object) -> object:
        """Parsed once here, so a malformed entry stops the start instead of refusing calls."""
        return PeerPolicy.parse(value) if isinstance(value, str) else value

    @model_validator(mode="after")
    def _peers_need_tls(self) -> Self:
        """Without TLS no caller has a certificate name: an allowlist would refuse everyone."""
        if not self.grpc_allowed_peers.serves_every_peer and self.grpc_tls is None:
            raise ValueError(
                "GRPC_ALLOWED_PEERS names client certificates: it needs mutual TLS "
                "(GRPC_TLS_CERT_FILE, GRPC_TLS_KEY_FILE, GRPC_TLS_CA_FILE)"
            )
        return self
