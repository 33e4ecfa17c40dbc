"""Every variable the notification service reads, named once."""

from typing import Literal

from pydantic import Field, SecretStr, model_validator

from objectvision_common.settings import EventsConsumerSettings, GrpcServiceSettings


class NotificationSettings(GrpcServiceSettings, EventsConsumerSettings):
    """Notification service settings; values come from the environment or `.env`."""

    grpc_port: int = Field(default=50053, ge=0, le=65535, validation_alias="NOTIFICATION_GRPC_PORT")
    metrics_port: int = Field(
        default=9103, ge=0, le=65535, validation_alias="NOTIFICATION_METRICS_PORT"
    )

    events_consumer_group: str = Field(
        default="notification", min_length=1, validation_alias="EVENTS_CONSUMER_GROUP"
    )

    email_transport: Literal["smtp", "brevo", "none"] = Field(
        default="smtp", validation_alias="EMAIL_TRANSPORT"
    )
    smtp_host: str = Field(default="127.0.0.1", validation_alias="SMTP_HOST")
    smtp_port: int = Field(default=1025, ge=1, le=65535, validation_alias="SMTP_PORT")
    smtp_user: str = Field(default="", validation_alias="SMTP_USER")
    smtp_password: SecretStr = Field(default=SecretStr(""), validation_alias="SMTP_PASSWORD")
    smtp_starttls: bool = Field(default=False, validation_alias="SMTP_STARTTLS")
    smtp_timeout_seconds: float = Field(default=15.0, gt=0, validation_alias="SMTP_TIMEOUT_SECONDS")
    email_sender: str = Field(default="noreply@objectvision.local", validation_alias="EMAIL_SENDER")
    email_sender_name: str = Field(default="ObjectVision", validation_alias="EMAIL_SENDER_NAME")
    brevo_api_key: SecretStr = Field(default=SecretStr(""), validation_alias="BREVO_API_KEY")
    brevo_api_url: str = Field(
        default="https://api.brevo.com/v3/smtp/email", validation_alias="BREVO_API_URL"
    )
    public_base_url: str = Field(
        default="http://127.0.0.1:8000", validation_alias="PUBLIC_BASE_URL"
    )

    delivery_max_attempts: int = Field(default=8, ge=1, validation_alias="DELIVERY_MAX_ATTEMPTS")
    delivery_backoff_base_seconds: float = Field(
        default=30.0, gt=0, validation_alias="DELIVERY_BACKOFF_BASE_SECONDS"
    )
    delivery_backoff_max_seconds: float = Field(
        default=6 * 3600.0, gt=0, validation_alias="DELIVERY_BACKOFF_MAX_SECONDS"
    )
    delivery_poll_seconds: float = Field(
        default=1.0, gt=0, validation_alias="DELIVERY_POLL_SECONDS"
    )
    delivery_concurrency: int = Field(default=16, ge=1, validation_alias="DELIVERY_CONCURRENCY")
    # Deliveries of one account in flight at once: its slow receivers, or a burst of its
    # events, take this share of a dispatcher's DELIVERY_CONCURRENCY and leave the rest to
    # every other account's webhooks and emails.
    delivery_concurrency_per_account: int = Field(
        default=4, ge=1, validation_alias="DELIVERY_CONCURRENCY_PER_ACCOUNT"
    )

    webhook_timeout_seconds: float = Field(
        default=10.0, gt=0, le=60, validation_alias="WEBHOOK_TIMEOUT_SECONDS"
    )
    webhook_allow_private: bool = Field(default=False, validation_alias="WEBHOOK_ALLOW_PRIVATE")
    # Encrypts webhook signing secrets at rest; losing it invalidates every stored secret.
    webhook_secret_key: SecretStr = Field(
        default=SecretStr("dev-only-webhook-secret-key-change-me"),
        validation_alias="WEBHOOK_SECRET_KEY",
    )
    webhook_max_per_user: int = Field(default=20, ge=1, validation_alias="WEBHOOK_MAX_PER_USER")
    # A webhook is disabled (ADR 0046) once this many deliveries in a row were dead-lettered,
    # the first of them at least WEBHOOK_DISABLE_AFTER_SECONDS ago (with the default retries
    # a delivery is given up about an hour after its first attempt).
    webhook_disable_after_failures: int = Field(
        default=20, ge=1, validation_alias="WEBHOOK_DISABLE_AFTER_FAILURES"
    )
    webhook_disable_after_seconds: float = Field(
        default=3 * 86400.0, ge=0, validation_alias="WEBHOOK_DISABLE_AFTER_SECONDS"
    )

    auth_service_addr: str = Field(default="127.0.0.1:50051", validation_alias="AUTH_SERVICE_ADDR")
    detection_service_addr: str = Field(
        default="127.0.0.1:50052", validation_alias="DETECTION_SERVICE_ADDR"
    )
    # A live-progress stream that hears nothing this long asks detection for the job again.
    job_progress_poll_seconds: float = Field(
        default=15.0, gt=0, validation_alias="JOB_PROGRESS_POLL_SECONDS"
    )

    @model_validator(mode="after")
    def _transport_is_configured(self) -> "NotificationSettings":
        if self.email_transport == "brevo" and not self.brevo_api_key.get_secret_value():
            raise ValueError("EMAIL_TRANSPORT=brevo needs BREVO_API_KEY")
        return self

    def secrets_to_check(self) -> dict[str, str]:
        return {
            **super().secrets_to_check(),
            "WEBHOOK_SECRET_KEY": self.webhook_secret_key.get_secret_value(),
        }

    @property
    def delivery_lease_seconds(self) -> float:
        """How long a claimed delivery is reserved for the sender that claimed it."""
        return 2 * max(self.webhook_timeout_seconds, self.smtp_timeout_seconds) + 30
