"""Wires the service together: `objectvision-notification [serve|migrate]`.

How it is run (arguments, logging, tracing, server, workers, shutdown) is
objectvision_common.runner's; this module only builds the parts.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import grpc
import httpx
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from notification_service.config import NotificationSettings
from notification_service.database import SCHEMA
from notification_service.deliveries.dispatcher import Dispatcher
from notification_service.deliveries.models import EMAIL, WEBHOOK
from notification_service.events.handlers import EventHandler
from notification_service.grpc_api import NotificationServicer
from notification_service.links import ConsoleLinks
from notification_service.mail.render import EmailRenderer
from notification_service.mail.sender import EmailSender
from notification_service.mail.transports import (
    BrevoTransport,
    EmailTransport,
    NullTransport,
    SmtpTransport,
)
from notification_service.outbox import OUTBOX
from notification_service.progress.hub import ProgressHub
from notification_service.progress.jobs import JobLookup
from notification_service.users import UserDirectory
from notification_service.webhooks.health import FailurePolicy
from notification_service.webhooks.secrets import webhook_box
from notification_service.webhooks.sender import WebhookSender
from objectvision.v1 import notification_pb2_grpc
from objectvision_common.backlog import (
    BacklogMonitor,
    outbox_probe,
    stream_length_probe,
    stream_probe,
)
from objectvision_common.events import EventConsumer
from objectvision_common.grpc_client import service_channel
from objectvision_common.grpc_server import ServiceRegistration
from objectvision_common.outbox import OutboxRelay
from objectvision_common.public_urls import pinned_http_client
from objectvision_common.runner import Migrations, ServiceParts, ServiceRunner
from objectvision_common.sealing import event_secrets
from objectvision_common.stores import Stores

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
SERVICE_NAME = "objectvision.v1.NotificationService"


def email_transport(settings: NotificationSettings) -> EmailTransport:
    if settings.email_transport == "brevo":
        return BrevoTransport(
            api_key=settings.brevo_api_key.get_secret_value(),
            url=settings.brevo_api_url,
            timeout=settings.smtp_timeout_seconds,
        )
    if settings.email_transport == "smtp":
        return SmtpTransport(
            host=settings.smtp_host,
            port=settings.smtp_port,
            user=settings.smtp_user,
            password=settings.smtp_password.get_secret_value(),
            starttls=settings.smtp_starttls,
            timeout=settings.smtp_timeout_seconds,
        )
    return NullTransport()


@dataclass
class Runtime:
    """Everything one process holds: clients, the gRPC servicer and the workers (kept whole
    so tests can reach the sessions and Redis the running service uses)."""

    settings: NotificationSettings
    stores: Stores
    http: httpx.AsyncClient
    channels: list[grpc.aio.Channel]
    servicer: NotificationServicer
    consumer: EventConsumer
    dispatcher: Dispatcher
    # Publishes the events this service stages itself (`webhook.disabled`).
    relay: OutboxRelay
    backlog: BacklogMonitor

    @classmethod
    def build(cls, settings: NotificationSettings) -> "Runtime":
        stores = Stores.from_settings(settings, decode_responses=True)
        sessions, redis = stores.sessions, stores.redis
        http = pinned_http_client()
        auth_channel = service_channel(settings.auth_service_addr, settings.grpc_tls)
        detection_channel = service_channel(settings.detection_service_addr, settings.grpc_tls)
        secret = settings.service_token_secret
        box = webhook_box(settings.webhook_secret_key.get_secret_value())
        progress = ProgressHub(
            redis=redis,
            jobs=JobLookup(detection_channel, service_secret=secret),
            poll_seconds=settings.job_progress_poll_seconds,
        )
        dispatcher = Dispatcher(
            session_factory=sessions,
            senders={
                EMAIL: EmailSender(
                    transport=email_transport(settings),
                    sender_addr=settings.email_sender,
                    sender_name=settings.email_sender_name,
                    box=box,
                ),
                WEBHOOK: WebhookSender(
                    session_factory=sessions,
                    box=box,
                    client=http,
                    allow_private=settings.webhook_allow_private,
                    timeout_seconds=settings.webhook_timeout_seconds,
                ),
            },
            max_attempts=settings.delivery_max_attempts,
            backoff_base_seconds=settings.delivery_backoff_base_seconds,
            backoff_max_seconds=settings.delivery_backoff_max_seconds,
            lease_seconds=settings.delivery_lease_seconds,
            poll_seconds=settings.delivery_poll_seconds,
            concurrency=settings.delivery_concurrency,
            per_account=settings.delivery_concurrency_per_account,
            webhook_failures=FailurePolicy(
                failures=settings.webhook_disable_after_failures,
                lasting=timedelta(seconds=settings.webhook_disable_after_seconds),
            ),
        )
        links = ConsoleLinks(settings.public_base_url)
        handler = EventHandler(
            session_factory=sessions,
            renderer=EmailRenderer(links=links),
            mail_box=box,
            event_secrets=event_secrets(secret),
            links=links,
            users=UserDirectory(auth_channel, service_secret=secret),
            progress=progress,
            on_new_deliveries=dispatcher.wake,
            erasure_chunk_size=settings.erasure_chunk_size,
        )
        consumer = EventConsumer.from_settings(
            settings, redis=redis, group=settings.events_consumer_group, handle=handler.handle
        )
        servicer = NotificationServicer(
            session_factory=sessions,
            box=box,
            progress=progress,
            service_secret=secret,
            webhook_allow_private=settings.webhook_allow_private,
            webhook_max_per_user=settings.webhook_max_per_user,
            on_new_deliveries=dispatcher.wake,
            links=links,
        )
        return cls(
            settings=settings,
            stores=stores,
            http=http,
            channels=[auth_channel, detection_channel],
            servicer=servicer,
            consumer=consumer,
            dispatcher=dispatcher,
            relay=OutboxRelay(sessions, OUTBOX, redis, stream=settings.events_stream),
            backlog=BacklogMonitor(
                [
                    outbox_probe(sessions, OUTBOX),
                    stream_probe(
                        redis, stream=settings.events_stream, group=settings.events_consumer_group
                    ),
                    stream_length_probe(redis, stream=consumer.dead_letter_stream),
                ],
                interval_s=settings.backlog_metrics_interval_seconds,
            ),
        )

    @property
    def sessions(self) -> async_sessionmaker[AsyncSession]:
        return self.stores.sessions

    @property
    def redis(self) -> Redis:
        return self.stores.redis

    def parts(self) -> ServiceParts:
        return ServiceParts(
            registrations=[
                ServiceRegistration(
                    SERVICE_NAME,
                    self.servicer,
                    notification_pb2_grpc.add_NotificationServiceServicer_to_server,
                )
            ],
            workers=[self.consumer, self.dispatcher, self.relay, self.backlog],
            on_close=[
                *(channel.close for channel in self.channels),
                self.http.aclose,
                self.stores.close,
            ],
        )


async def build(settings: NotificationSettings) -> ServiceParts:
    return Runtime.build(settings).parts()


def runner() -> ServiceRunner[NotificationSettings]:
    return ServiceRunner(
        name="notification-service",
        prog="objectvision-notification",
        settings=NotificationSettings,
        build=build,
        migrations=Migrations(MIGRATIONS_DIR, schema=SCHEMA),
    )


def main(argv: Sequence[str] | None = None) -> None:
    runner().main(argv)
