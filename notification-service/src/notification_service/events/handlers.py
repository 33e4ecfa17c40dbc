"""What each event means for this service: which emails and webhooks it creates, for a
deleted account what it erases, and for a revoked API key which webhooks go with it.

Handling is idempotent by event id: the `processed_events` row and the deliveries it
creates commit together, so a redelivered event finds its row and creates nothing. An
account's erasure runs before that commit, in idempotent chunks of its own: an event whose
erasure died half-way has no row yet, and its redelivery erases the rest.
"""

import functools
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from notification_service.accounts import service as accounts_service
from notification_service.deliveries import service as deliveries_service
from notification_service.deliveries.models import DEAD, EMAIL, PENDING, WEBHOOK
from notification_service.deliveries.service import NewDelivery
from notification_service.events.models import processed_events
from notification_service.links import ConsoleLinks
from notification_service.mail.headers import UnsafeHeaderError
from notification_service.mail.render import EmailRenderer, RenderedEmail
from notification_service.outbox import WEBHOOK_DISABLED
from notification_service.progress.hub import JOB_COMPLETED, JOB_FAILED, JOB_TYPES, ProgressHub
from notification_service.users import Contact, UserDirectory
from notification_service.webhooks import service as webhooks_service
from notification_service.webhooks.body import webhook_body
from notification_service.webhooks.sender import DISABLED
from objectvision.v1 import notification_pb2
from objectvision_common.account_events import (
    ACCOUNT_RESTORED,
    ACCOUNT_SUSPENDED,
    API_KEY_REVOKED,
    EMAIL_CHANGE_ATTEMPTED,
    EMAIL_CHANGED,
    EMAIL_VERIFICATION_REQUESTED,
    NEW_LOGIN,
    PASSWORD_CHANGED,
    PASSWORD_RESET_REQUESTED,
    RECOVERY_CODE_USED,
    SIGNUP_ATTEMPTED,
    TWO_FACTOR_DISABLED,
    TWO_FACTOR_ENABLED,
    USER_DELETED,
    USER_REGISTERED,
)
from objectvision_common.sealing import SecretBox

logger = logging.getLogger(__name__)

# Someone tried to use an account's address (sign-up, or another account's email change); the
# event names only the account, whose owner is told.
ADDRESS_NOTICES = (SIGNUP_ATTEMPTED, EMAIL_CHANGE_ATTEMPTED)
ACCOUNT_STATUS_NOTICES = (ACCOUNT_SUSPENDED, ACCOUNT_RESTORED)
# The account's second factor was turned on or off, or a recovery code logged in (ADR 0034).
SECOND_FACTOR_NOTICES = (TWO_FACTOR_ENABLED, TWO_FACTOR_DISABLED, RECOVERY_CODE_USED)
# The final job events that send the owner a report. Not job.cancelled: its owner has just
# stopped the job and would be told of a job they chose not to finish (ADR 0022).
REPORTED_JOB_EVENTS = frozenset({JOB_COMPLETED, JOB_FAILED})
# The two events that carry an emailed link's token.
SealedLink = notification_pb2.PasswordResetRequested | notification_pb2.EmailVerificationRequested

# The renderer's link emails (`password_reset`, `email_verification`): keyword arguments
# to_addr, name, token, requested_at and expires_at.
LinkRenderer = Callable[..., RenderedEmail]


def _email_delivery(
    render: Callable[[], RenderedEmail], to_addr: str, *, box: SecretBox
) -> NewDelivery:
    """An email delivery, its body sealed in `box`, or a dead one on the spot when its
    headers would be unsafe."""
    try:
        email = render()
    except UnsafeHeaderError as exc:
        logger.warning("refusing an email with an unsafe header", extra={"reason": str(exc)})
        return NewDelivery(
            channel=EMAIL,
            target=to_addr.replace("\r", " ").replace("\n", " ")[:320],
            payload={},
            state=DEAD,
            last_error=f"refused: {exc}",
        )
    return NewDelivery(channel=EMAIL, target=email.to_addr, payload=email.to_payload(box))


def _webhook_delivery(hook: webhooks_service.Webhook, body: str) -> NewDelivery:
    """An event's delivery to a webhook; to a disabled one, recorded dead-lettered unsent, so
    its owner sees what it missed and redelivers it once the webhook is enabled (ADR 0046)."""
    return NewDelivery(
        channel=WEBHOOK,
        target=hook.url,
        payload={"body": body},
        webhook_id=hook.id,
        state=PENDING if hook.enabled else DEAD,
        last_error=None if hook.enabled else DISABLED,
    )


@dataclass(frozen=True, kw_only=True, eq=False)
class EventHandler:
    session_factory: async_sessionmaker[AsyncSession]
    renderer: EmailRenderer
    # Seals the bodies of queued emails (WEBHOOK_SECRET_KEY), and opens the token of a
    # link event (the key shared with auth-service, objectvision_common.sealing).
    mail_box: SecretBox
    event_secrets: SecretBox
    links: ConsoleLinks
    users: UserDirectory
    progress: ProgressHub
    on_new_deliveries: Callable[[], None]
    # Deliveries a deleted account's erasure removes per transaction (ERASURE_CHUNK_SIZE).
    erasure_chunk_size: int

    def _email(self, render: Callable[[], RenderedEmail], to_addr: str) -> NewDelivery:
        return _email_delivery(render, to_addr, box=self.mail_box)

    def _link_token(self, requested: SealedLink, event: notification_pb2.Event) -> str | None:
        """The token of a link event, opened with the key shared with auth-service; an event
        staged before tokens were sealed has it as it is. None, with a warning, when this
        key did not seal it (SERVICE_TOKEN_SECRET differs between the two services): no
        link could be written, and retrying the event would not change that."""
        if not requested.sealed_token:
            return requested.token or None
        try:
            return self.event_secrets.open(requested.sealed_token)
        except ValueError:
            logger.warning(
                "a link event's token cannot be opened; no email sent",
                extra={"event_id": event.id, "event_type": event.type},
            )
            return None

    async def handle(self, event: notification_pb2.Event) -> None:
        """Handle once; raising leaves the stream message unacknowledged, to be retried."""
        # First, and for a redelivery too: live subscribers should not wait for auth-service
        # or the database, and repeating a progress event is harmless.
        await self.progress.publish(event)
        event_id = uuid.UUID(event.id)
        if await self._already_processed(event_id):
            return
        if event.type == USER_DELETED:
            await self._erase(event)
        planned = await self._plan_emails(event)
        if await self._commit(event, event_id, planned):
            self.on_new_deliveries()

    async def _already_processed(self, event_id: uuid.UUID) -> bool:
        async with self.session_factory() as session:
            found = await session.scalar(
                select(processed_events.c.event_id).where(processed_events.c.event_id == event_id)
            )
        return found is not None

    async def _erase(self, event: notification_pb2.Event) -> None:
        """Everything the deleted account kept here, before the commit that records the event
        (and adds the goodbye email): a redelivery after a crash erases the rest."""
        user_id = _user_uuid(event.user_id)
        if user_id is None:
            return
        await accounts_service.erase_account(
            session_factory=self.session_factory,
            user_id=user_id,
            deleted_at=event.occurred_at.ToDatetime(UTC),
            chunk_size=self.erasure_chunk_size,
        )

    async def _plan_emails(self, event: notification_pb2.Event) -> list[NewDelivery]:
        """Decided before the transaction: it may ask auth-service, which can take a while."""
        if event.type == USER_DELETED and event.HasField("user_deleted"):
            return self._goodbye(event)
        if event.type == USER_REGISTERED and event.HasField("user_registered"):
            registered = event.user_registered
            return [
                self._email(
                    lambda: self.renderer.welcome(to_addr=registered.email, name=registered.name),
                    registered.email,
                )
            ]
        if event.type in ADDRESS_NOTICES and event.user_id:
            return await self._address_notice(event)
        if (
            event.type == PASSWORD_RESET_REQUESTED
            and event.HasField("password_reset_requested")
            and event.user_id
        ):
            return await self._password_reset(event)
        if (
            event.type == EMAIL_VERIFICATION_REQUESTED
            and event.HasField("email_verification_requested")
            and event.user_id
        ):
            return await self._email_verification(event)
        if event.type in ACCOUNT_STATUS_NOTICES and event.HasField("account_status_changed"):
            return self._account_status(event)
        if event.type == PASSWORD_CHANGED and event.HasField("password_changed") and event.user_id:
            return await self._password_changed(event)
        if event.type == EMAIL_CHANGED and event.HasField("email_changed") and event.user_id:
            return await self._email_changed(event)
        if (
            event.type in SECOND_FACTOR_NOTICES
            and event.HasField("two_factor_changed")
            and event.user_id
        ):
            return await self._two_factor_changed(event)
        if event.type == NEW_LOGIN and event.HasField("new_login") and event.user_id:
            return await self._new_login(event)
        if event.type == WEBHOOK_DISABLED and event.HasField("webhook_disabled") and event.user_id:
            return await self._webhook_disabled(event)
        if event.type in REPORTED_JOB_EVENTS and event.HasField("job_finished") and event.user_id:
            contact = await self.users.contact(event.user_id)
            if contact is None or not contact.active or not contact.notifications_enabled:
                return []
            return [
                self._email(
                    lambda: self.renderer.job_report(
                        to_addr=contact.email, name=contact.name, finished=event.job_finished
                    ),
                    contact.email,
                )
            ]
        return []

    def _goodbye(self, event: notification_pb2.Event) -> list[NewDelivery]:
        """To the address in the event, the only place it still exists: sent although the
        account is gone (every other email skips deleted accounts), whatever its
        notifications switch said, once per event like every email."""
        address = event.user_deleted.email
        if not address:
            return []
        return [
            self._email(
                lambda: self.renderer.account_deleted(
                    to_addr=address, deleted_at=event.occurred_at.ToDatetime(UTC)
                ),
                address,
            )
        ]

    def _account_status(self, event: notification_pb2.Event) -> list[NewDelivery]:
        """To the address and name the event carries, whatever the notifications switch
        says: the suspension notice goes to an account that is disabled by then, which
        auth-service shows to nobody, so it cannot be looked up as the other notices are."""
        changed = event.account_status_changed
        if not changed.email:
            return []
        return [
            self._email(
                lambda: self.renderer.account_status(
                    to_addr=changed.email,
                    name=changed.name,
                    active=event.type == ACCOUNT_RESTORED,
                    at=event.occurred_at.ToDatetime(UTC),
                ),
                changed.email,
            )
        ]

    async def _address_notice(self, event: notification_pb2.Event) -> list[NewDelivery]:
        """The owner's own address and name, looked up by account as for job reports: the
        event carries nothing the person who tried chose. Sent whatever the notifications
        switch says (it is about batch-job emails); not to inactive or deleted accounts."""
        contact = await self.users.contact(event.user_id)
        if contact is None or not contact.active:
            return []
        render = (
            self.renderer.signup_attempted
            if event.type == SIGNUP_ATTEMPTED
            else self.renderer.email_change_attempted
        )
        return [
            self._email(lambda: render(to_addr=contact.email, name=contact.name), contact.email)
        ]

    async def _password_reset(self, event: notification_pb2.Event) -> list[NewDelivery]:
        """The reset link, to the address and name the account has now (looked up as for the
        address notices)."""
        requested = event.password_reset_requested
        return await self._link_email(event, requested, self.renderer.password_reset)

    async def _email_verification(self, event: notification_pb2.Event) -> list[NewDelivery]:
        """The verification link, to the address it confirms (from the event) and only while
        the account still has that address, or for a change of address (ADR 0033) still
        waits to move to it: otherwise the link could not work, and the mail would go to an
        address the account has left or given up."""
        requested = event.email_verification_requested
        change = requested.change_of_address
        return await self._link_email(
            event,
            requested,
            functools.partial(self.renderer.email_verification, change_of_address=change),
            recipient=lambda contact: (
                requested.email
                if requested.email == (contact.pending_email if change else contact.email)
                else None
            ),
        )

    async def _link_email(
        self,
        event: notification_pb2.Event,
        requested: SealedLink,
        render: LinkRenderer,
        *,
        recipient: Callable[[Contact], str | None] = lambda contact: contact.email,
    ) -> list[NewDelivery]:
        """An emailed link (reset or verification), to the address `recipient` picks from
        the account as it is now (by default its own), none when it picks none. Sent whatever
        the notifications switch says; not to inactive or deleted accounts, and not once the
        link has expired (after a long outage it could only fail). The token goes into the
        rendered email, sealed, and nowhere else: never into a log line."""
        expires_at = requested.expires_at.ToDatetime(UTC)
        if expires_at <= datetime.now(UTC):
            return []
        contact = await self.users.contact(event.user_id)
        if contact is None or not contact.active:
            return []
        address = recipient(contact)
        if address is None:
            return []
        token = self._link_token(requested, event)
        if token is None:
            return []
        return [
            self._email(
                lambda: render(
                    to_addr=address,
                    name=contact.name,
                    token=token,
                    requested_at=event.occurred_at.ToDatetime(UTC),
                    expires_at=expires_at,
                ),
                address,
            )
        ]

    async def _security_notice(
        self, event: notification_pb2.Event, render: Callable[[Contact], RenderedEmail]
    ) -> list[NewDelivery]:
        """A security notice, to the address and name the account has now, like the reset
        link, whatever the notifications switch says (a security notice is not a job email);
        not to inactive or deleted accounts, as for the reset email."""
        contact = await self.users.contact(event.user_id)
        if contact is None or not contact.active:
            return []
        return [self._email(lambda: render(contact), contact.email)]

    async def _password_changed(self, event: notification_pb2.Event) -> list[NewDelivery]:
        return await self._security_notice(
            event,
            lambda contact: self.renderer.password_changed(
                to_addr=contact.email,
                name=contact.name,
                method=event.password_changed.method,
                changed_at=event.occurred_at.ToDatetime(UTC),
            ),
        )

    async def _two_factor_changed(self, event: notification_pb2.Event) -> list[NewDelivery]:
        """Told to the owner as a changed password is: whoever turns the second factor off,
        or on to lock the owner out, or logs in with a recovery code, may be someone who
        learnt the password (ADR 0034)."""
        changed = event.two_factor_changed
        at = event.occurred_at.ToDatetime(UTC)

        def render(contact: Contact) -> RenderedEmail:
            if event.type == TWO_FACTOR_ENABLED:
                return self.renderer.two_factor_enabled(
                    to_addr=contact.email, name=contact.name, enabled_at=at
                )
            if event.type == TWO_FACTOR_DISABLED:
                return self.renderer.two_factor_disabled(
                    to_addr=contact.email, name=contact.name, method=changed.method, disabled_at=at
                )
            return self.renderer.recovery_code_used(
                to_addr=contact.email,
                name=contact.name,
                codes_left=changed.recovery_codes_left,
                used_at=at,
            )

        return await self._security_notice(event, render)

    async def _new_login(self, event: notification_pb2.Event) -> list[NewDelivery]:
        """Told to the owner as a changed password is: a login they did not make is someone
        who has their password (and, with a second factor, a code)."""
        login = event.new_login
        return await self._security_notice(
            event,
            lambda contact: self.renderer.new_login(
                to_addr=contact.email,
                name=contact.name,
                client_ip=login.client_ip,
                user_agent=login.user_agent,
                second_factor=login.second_factor,
                logged_in_at=event.occurred_at.ToDatetime(UTC),
            ),
        )

    async def _webhook_disabled(self, event: notification_pb2.Event) -> list[NewDelivery]:
        """Told to the owner as a security notice is, whatever the notifications switch says
        (it is about batch-job emails, and a broken integration is not one of those)."""
        return await self._security_notice(
            event,
            lambda contact: self.renderer.webhook_disabled(
                to_addr=contact.email, name=contact.name, disabled=event.webhook_disabled
            ),
        )

    async def _email_changed(self, event: notification_pb2.Event) -> list[NewDelivery]:
        """To the address the account had before, from the event: the account's address is
        now the new one, which may be a thief's. The name and whether the account is still
        active come from auth-service, as for the reset email."""
        changed = event.email_changed
        contact = await self.users.contact(event.user_id)
        if contact is None or not contact.active:
            return []
        return [
            self._email(
                lambda: self.renderer.email_changed(
                    to_addr=changed.old_email,
                    name=contact.name,
                    new_email_hint=changed.new_email_hint,
                    changed_at=event.occurred_at.ToDatetime(UTC),
                ),
                changed.old_email,
            )
        ]

    async def _commit(
        self, event: notification_pb2.Event, event_id: uuid.UUID, planned: list[NewDelivery]
    ) -> int:
        user_id = _user_uuid(event.user_id)
        async with self.session_factory() as session, session.begin():
            first_time = (
                await session.execute(
                    pg_insert(processed_events)
                    .values(event_id=event_id, event_type=event.type)
                    .on_conflict_do_nothing()
                    .returning(processed_events.c.event_id)
                )
            ).one_or_none()
            if first_time is None:
                return 0
            if event.type == API_KEY_REVOKED:
                await _forget_key(session, event, user_id)
            if event.type in JOB_TYPES and user_id is not None:
                body = webhook_body(event, links=self.links)
                hooks = await webhooks_service.subscribed_webhooks(
                    session=session, user_id=user_id, event_type=event.type
                )
                planned = planned + [_webhook_delivery(hook, body) for hook in hooks]
            return await deliveries_service.add_deliveries(
                session=session,
                event_id=event_id,
                event_type=event.type,
                # The goodbye belongs to no account: the one it was about is gone.
                user_id=None if event.type == USER_DELETED else user_id,
                planned=planned,
            )


async def _forget_key(
    session: AsyncSession, event: notification_pb2.Event, user_id: uuid.UUID | None
) -> None:
    """`api_key.revoked`: delete the webhooks that key registered, in the commit that records
    the event. Idempotent twice over: a redelivered event finds its row and stops before
    this, and a second run would find no webhook of the key left to delete."""
    key_id = _user_uuid(event.api_key_revoked.key_id)
    if user_id is None or key_id is None or not event.HasField("api_key_revoked"):
        return
    deleted = await webhooks_service.delete_key_webhooks(
        session=session, user_id=user_id, api_key_id=key_id
    )
    if deleted:
        logger.info(
            "deleted the webhooks of a revoked API key",
            extra={"api_key_id": str(key_id), "webhooks": deleted},
        )


def _user_uuid(user_id: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(user_id)
    except ValueError:
        return None
