"""Entry point and wiring: settings -> database, Redis, keys -> services -> gRPC server.

`objectvision-auth migrate` brings the `auth` schema to the latest revision;
`objectvision-auth serve` (the default) serves AuthService until SIGTERM. How it is run
(arguments, logging, tracing, server, workers, shutdown) is objectvision_common.runner's.
"""

from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path

from auth_service.config import AuthSettings
from auth_service.database import SCHEMA
from auth_service.grpc_api import AuthServicer
from auth_service.opaque_tokens import LinkTerms
from auth_service.outbox import OUTBOX
from auth_service.passwords import PasswordHasher
from auth_service.tokens.access import AccessTokenCodec
from auth_service.tokens.keys import load_signing_key, load_verify_only_keys
from auth_service.tokens.revocation import RevokedAccessTokens
from auth_service.tokens.service import SessionTokens
from auth_service.two_factor.service import TwoFactorTerms
from auth_service.users.notices import SignUpNotices
from auth_service.users.schemas import AdminPolicy
from objectvision.v1 import auth_pb2, auth_pb2_grpc
from objectvision_common.backlog import BacklogMonitor, outbox_probe
from objectvision_common.grpc_server import ServiceRegistration
from objectvision_common.outbox import OutboxRelay
from objectvision_common.runner import Migrations, ServiceParts, ServiceRunner
from objectvision_common.sealing import event_secrets
from objectvision_common.stores import Stores

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
SERVICE_NAME = auth_pb2.DESCRIPTOR.services_by_name["AuthService"].full_name


async def build(settings: AuthSettings) -> ServiceParts:
    """The whole service, wired from settings (the runner serves it; tests start it)."""
    signing_key = load_signing_key(settings)
    verify_only_keys = load_verify_only_keys(settings, signing_key)
    stores = Stores.from_settings(settings)
    access_lifetime = timedelta(minutes=settings.access_token_expire_minutes)
    access_tokens = AccessTokenCodec(
        signing_key=signing_key,
        issuer=settings.jwt_issuer,
        audience=settings.jwt_audience,
        lifetime=access_lifetime,
        verify_only_keys=verify_only_keys,
    )
    relay = OutboxRelay(stores.sessions, OUTBOX, stores.redis, stream=settings.events_stream)
    link_sealer = event_secrets(settings.service_token_secret)
    servicer = AuthServicer(
        sessions=stores.sessions,
        passwords=PasswordHasher.from_settings(settings),
        tokens=SessionTokens(
            access_tokens=access_tokens,
            revoked=RevokedAccessTokens(stores.redis, access_lifetime=access_lifetime),
            refresh_lifetime=timedelta(days=settings.refresh_token_expire_days),
            admins=AdminPolicy(require_two_factor=settings.require_two_factor_for_admins),
        ),
        signup_notices=SignUpNotices(stores.redis),
        admin_emails=settings.admin_emails,
        service_token_secret=settings.service_token_secret,
        password_reset_links=LinkTerms(
            lifetime=timedelta(seconds=settings.password_reset_ttl_seconds), sealer=link_sealer
        ),
        email_verification_links=LinkTerms(
            lifetime=timedelta(seconds=settings.email_verification_ttl_seconds),
            sealer=link_sealer,
        ),
        two_factor=TwoFactorTerms.from_secret(
            settings.service_token_secret, issuer=settings.totp_issuer
        ),
    )
    return ServiceParts(
        registrations=[
            ServiceRegistration(
                name=SERVICE_NAME,
                servicer=servicer,
                add_to_server=auth_pb2_grpc.add_AuthServiceServicer_to_server,
            )
        ],
        workers=[
            relay,
            BacklogMonitor(
                [outbox_probe(stores.sessions, OUTBOX)],
                interval_s=settings.backlog_metrics_interval_seconds,
            ),
        ],
        on_close=[stores.close],
    )


def runner() -> ServiceRunner[AuthSettings]:
    return ServiceRunner(
        name="auth-service",
        prog="objectvision-auth",
        settings=AuthSettings,
        build=build,
        migrations=Migrations(MIGRATIONS_DIR, schema=SCHEMA),
    )


def main(argv: Sequence[str] | None = None) -> None:
    runner().main(argv)
