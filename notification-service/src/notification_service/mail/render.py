"""Email content from Jinja2 templates: an HTML part and a plain-text part per message."""

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from notification_service.links import ConsoleLinks
from notification_service.mail.headers import mailbox, safe_header_value
from objectvision.v1 import notification_pb2
from objectvision_common.sealing import SecretBox

# How a password was changed (PasswordChanged.method), as the notice says it.
PASSWORD_CHANGE_METHODS = {
    "settings": "in the account's settings",
    "administrator": "by an administrator of this service",
    "reset_link": "with a password reset link sent to the account's address",
}
# Who turned an account's second factor off (TwoFactorChanged.method), as the notice says it.
TWO_FACTOR_DISABLE_METHODS = {
    "settings": "by you in the account's settings",
    "administrator": "by an administrator of this service",
}
# With this many recovery codes left or fewer, the notice urges making new ones: one more
# lost phone could then lock the owner out until an administrator steps in.
FEW_RECOVERY_CODES = 2
# How much of a login's address and User-Agent a new-login notice shows (ADR 0035).
SHOWN_ADDRESS_LENGTH = 64
SHOWN_USER_AGENT_LENGTH = 120
# How much of a disabled webhook's URL and last error its notice shows (ADR 0046).
SHOWN_WEBHOOK_URL_LENGTH = 200
SHOWN_ERROR_LENGTH = 300


@dataclass(frozen=True)
class RenderedEmail:
    """What a delivery row stores, so every retry sends exactly the same message."""

    to_addr: str
    to_name: str
    subject: str
    text: str
    html: str

    def to_payload(self, box: SecretBox) -> dict[str, Any]:
        """The row's payload: the addressee and subject as they are, the text and HTML
        sealed in `box`, since a link email's body holds a working reset or verification
        token until it is used (ADR 0021 amendment)."""
        body = json.dumps({"text": self.text, "html": self.html})
        return {
            "to_addr": self.to_addr,
            "to_name": self.to_name,
            "subject": self.subject,
            "sealed_body": box.seal(body),
        }

    @classmethod
    def from_payload(cls, payload: dict[str, Any], box: SecretBox) -> "RenderedEmail":
        """The email a payload stores; one stored before bodies were sealed has them as
        they are. ValueError when `box` did not seal it; KeyError or TypeError when it is
        incomplete."""
        sealed = payload.get("sealed_body")
        body = json.loads(box.open(str(sealed))) if sealed is not None else payload
        return cls(
            to_addr=str(payload["to_addr"]),
            to_name=str(payload["to_name"]),
            subject=str(payload["subject"]),
            text=str(body["text"]),
            html=str(body["html"]),
        )


class EmailRenderer:
    """Renders each kind of email; refuses (UnsafeHeaderError) values unfit for headers."""

    def __init__(self, *, links: ConsoleLinks, product_name: str = "ObjectVision") -> None:
        self._links = links
        self._base_url = links.base_url
        self._product = product_name
        self._env = Environment(
            loader=PackageLoader("notification_service.mail", "templates"),
            autoescape=select_autoescape(enabled_extensions=("html.j2",), default=False),
            undefined=StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
        )

    def _render(
        self, template: str, *, to_addr: str, to_name: str, subject: str, **context: Any
    ) -> RenderedEmail:
        """Both parts of the mail `template` makes. Every template may use `name` and `email`,
        the name and address the mail goes to: a mail that shows an address in full shows
        the one it was sent to, which its reader owns (another is at most a hint)."""
        mailbox(to_addr, to_name)
        safe_header_value(subject, field="subject")
        context.update(
            product=self._product,
            base_url=self._base_url,
            settings_url=self._links.settings(),
            name=to_name,
            email=to_addr,
        )
        return RenderedEmail(
            to_addr=to_addr,
            to_name=to_name,
            subject=subject,
            text=self._env.get_template(f"{template}.txt.j2").render(context),
            html=self._env.get_template(f"{template}.html.j2").render(context),
        )

    def welcome(self, *, to_addr: str, name: str) -> RenderedEmail:
        return self._render(
            "welcome",
            to_addr=to_addr,
            to_name=name,
            subject=f"Welcome to {self._product}",
            login_url=self._links.home(),
        )

    def signup_attempted(self, *, to_addr: str, name: str) -> RenderedEmail:
        """To an account's owner: someone tried to sign up with their address."""
        return self._address_notice(
            "signup_attempted",
            to_addr=to_addr,
            name=name,
            subject=f"Someone tried to sign up to {self._product} with your email address",
        )

    def email_change_attempted(self, *, to_addr: str, name: str) -> RenderedEmail:
        """To an account's owner: another account asked to take their address."""
        return self._address_notice(
            "email_change_attempted",
            to_addr=to_addr,
            name=name,
            subject=f"Someone tried to move your address to another {self._product} account",
        )

    def _address_notice(
        self, template: str, *, to_addr: str, name: str, subject: str
    ) -> RenderedEmail:
        """A notice to an account's owner about their own address, which someone else tried
        to use: every such mail names the address and links to logging in (and to a reset
        link, for an owner who tried and forgot their password)."""
        return self._render(
            template,
            to_addr=to_addr,
            to_name=name,
            subject=subject,
            login_url=self._links.home(),
            forgot_password_url=self._links.forgot_password(),
        )

    def password_reset(
        self,
        *,
        to_addr: str,
        name: str,
        token: str,
        requested_at: datetime,
        expires_at: datetime,
    ) -> RenderedEmail:
        """To an account's owner: the link that sets a new password, and how long it works."""
        return self._render(
            "password_reset",
            to_addr=to_addr,
            to_name=name,
            subject=f"Reset your {self._product} password",
            reset_url=self._links.reset_password(token),
            forgot_password_url=self._links.forgot_password(),
            **_link_lifetime(requested_at, expires_at),
        )

    def email_verification(
        self,
        *,
        to_addr: str,
        name: str,
        token: str,
        requested_at: datetime,
        expires_at: datetime,
        change_of_address: bool = False,
    ) -> RenderedEmail:
        """To the address being confirmed: the link that verifies it, and how long it works.
        For a change of address (ADR 0033) the mail says that opening the link is what moves
        the account to this address, and that until then nothing has changed."""
        template, subject = (
            (
                "email_change_confirmation",
                f"Confirm the new email address of your {self._product} account",
            )
            if change_of_address
            else ("email_verification", f"Confirm your {self._product} email address")
        )
        return self._render(
            template,
            to_addr=to_addr,
            to_name=name,
            subject=subject,
            verify_url=self._links.verify_email(token),
            **_link_lifetime(requested_at, expires_at),
        )

    def password_changed(
        self, *, to_addr: str, name: str, method: str, changed_at: datetime
    ) -> RenderedEmail:
        """To an account's owner: its password was changed, when and how; if it was not them,
        a reset link to this address takes the account back (and ends the thief's sessions).
        A method this version does not know still gets the notice, without the "how"."""
        return self._render(
            "password_changed",
            to_addr=to_addr,
            to_name=name,
            subject=f"Your {self._product} password was changed",
            changed_at=_moment(changed_at),
            how=PASSWORD_CHANGE_METHODS.get(method, ""),
            forgot_password_url=self._links.forgot_password(),
        )

    def two_factor_enabled(self, *, to_addr: str, name: str, enabled_at: datetime) -> RenderedEmail:
        """To an account's owner: logging in now takes a code from the authenticator app, and
        the recovery codes are the way in without it. A thief who turned it on holds the only
        app that makes the codes, and a reset link does not take the second factor away, so
        the owner is sent to the administrator as well as to a new password (ADR 0034)."""
        return self._second_factor_notice(
            "two_factor_enabled",
            to_addr=to_addr,
            name=name,
            subject=f"Two-factor authentication was turned on for your {self._product} account",
            at=enabled_at,
        )

    def two_factor_disabled(
        self, *, to_addr: str, name: str, method: str, disabled_at: datetime
    ) -> RenderedEmail:
        """To an account's owner: the password alone logs in again, when and by whom. A method
        this version does not know still gets the notice, without the "how", as for a
        changed password."""
        return self._second_factor_notice(
            "two_factor_disabled",
            to_addr=to_addr,
            name=name,
            subject=f"Two-factor authentication was turned off for your {self._product} account",
            at=disabled_at,
            how=TWO_FACTOR_DISABLE_METHODS.get(method, ""),
        )

    def recovery_code_used(
        self, *, to_addr: str, name: str, codes_left: int, used_at: datetime
    ) -> RenderedEmail:
        """To an account's owner: a recovery code logged in, and how many are left; with few
        left, make new ones before the last is gone and only an administrator can let the
        owner back in."""
        return self._second_factor_notice(
            "recovery_code_used",
            to_addr=to_addr,
            name=name,
            subject=f"A recovery code was used to log in to your {self._product} account",
            at=used_at,
            codes_left=codes_left,
            few_codes_left=codes_left <= FEW_RECOVERY_CODES,
        )

    def new_login(
        self,
        *,
        to_addr: str,
        name: str,
        client_ip: str,
        user_agent: str,
        second_factor: bool,
        logged_in_at: datetime,
    ) -> RenderedEmail:
        """To an account's owner: it was logged in to from somewhere none of its earlier
        logins was (ADR 0035), with where and with what, and the way to end that session if it
        was not them: the settings' session list, then a new password."""
        return self._second_factor_notice(
            "new_login",
            to_addr=to_addr,
            name=name,
            subject=f"New login to your {self._product} account",
            at=logged_in_at,
            client_ip=_as_shown(client_ip, SHOWN_ADDRESS_LENGTH) or "an unknown address",
            user_agent=_as_shown(user_agent, SHOWN_USER_AGENT_LENGTH) or "an unknown program",
            second_factor=second_factor,
        )

    def _second_factor_notice(
        self, template: str, *, to_addr: str, name: str, subject: str, at: datetime, **context: Any
    ) -> RenderedEmail:
        """A notice about how the account is logged in to (its second factor, ADR 0034; a new
        login, ADR 0035): every one names the account, says when (`when`), and for an owner
        who did not do it links to a new password, as the password notice does."""
        return self._render(
            template,
            to_addr=to_addr,
            to_name=name,
            subject=subject,
            when=_moment(at),
            forgot_password_url=self._links.forgot_password(),
            **context,
        )

    def email_changed(
        self, *, to_addr: str, name: str, new_email_hint: str, changed_at: datetime
    ) -> RenderedEmail:
        """To the address an account had: it signs in with another now (shown as a hint).
        A reset link would go to the new address, so an owner who did not make the change
        is sent to the service's administrator."""
        return self._render(
            "email_changed",
            to_addr=to_addr,
            to_name=name,
            subject=f"The sign-in address of your {self._product} account was changed",
            new_email_hint=new_email_hint,
            changed_at=_moment(changed_at),
        )

    def account_status(
        self, *, to_addr: str, name: str, active: bool, at: datetime
    ) -> RenderedEmail:
        """To an account's owner: an admin suspended the account (what that stops, what is
        kept) or restored it (ADR 0032)."""
        if active:
            return self._render(
                "account_restored",
                to_addr=to_addr,
                to_name=name,
                subject=f"Your {self._product} account was restored",
                when=_moment(at),
                login_url=self._links.home(),
            )
        return self._render(
            "account_suspended",
            to_addr=to_addr,
            to_name=name,
            subject=f"Your {self._product} account was suspended",
            when=_moment(at),
        )

    def account_deleted(self, *, to_addr: str, deleted_at: datetime) -> RenderedEmail:
        """To the address a deleted account had: it was deleted, when, and what goes with it.
        No name and no link: the account, its name and every page of it are gone."""
        return self._render(
            "account_deleted",
            to_addr=to_addr,
            to_name="",
            subject=f"Your {self._product} account was deleted",
            deleted_at=_moment(deleted_at),
        )

    def webhook_disabled(
        self, *, to_addr: str, name: str, disabled: notification_pb2.WebhookDisabled
    ) -> RenderedEmail:
        """To an account's owner: one of its webhooks was disabled because its deliveries
        kept failing (ADR 0046), why, that nothing is lost, and how to start again: try the
        receiver with a ping, enable the webhook, redeliver what it missed."""
        return self._render(
            "webhook_disabled",
            to_addr=to_addr,
            to_name=name,
            subject=f"Your {self._product} webhook was disabled after failed deliveries",
            webhook_id=disabled.webhook_id,
            url=_as_shown(disabled.url, SHOWN_WEBHOOK_URL_LENGTH),
            failures=disabled.consecutive_failures,
            failing_since=_moment(disabled.failing_since.ToDatetime(UTC)),
            last_error=_as_shown(disabled.last_error, SHOWN_ERROR_LENGTH),
            webhooks_url=self._links.webhooks(),
        )

    def job_report(
        self, *, to_addr: str, name: str, finished: notification_pb2.JobFinished
    ) -> RenderedEmail:
        succeeded = finished.status == "completed"
        class_counts = sorted(finished.class_counts.items(), key=lambda item: (-item[1], item[0]))
        subject = (
            f"Your detection job finished: {finished.processed} of {finished.total}"
            # A video job (ADR 0016) counts its sampled frames.
            f" {'frames' if finished.kind == 'video' else 'images'}"
            if succeeded
            else "Your detection job failed"
        )
        return self._render(
            "job_report",
            to_addr=to_addr,
            to_name=name,
            subject=subject,
            succeeded=succeeded,
            job=finished,
            class_counts=class_counts,
            total_objects=sum(count for _, count in class_counts),
            results_url=self._links.job(finished.job_id),
        )


def _moment(at: datetime) -> str:
    """When something happened, in UTC to the minute: owners live in every time zone."""
    return f"{at.astimezone(UTC):%Y-%m-%d %H:%M} UTC"


def _as_shown(text: str, limit: int) -> str:
    """Text the caller of a login chose (its User-Agent), as a notice may show it: printable
    characters only, on one line, cut at `limit` so it cannot fill the mail with words of its
    own."""
    printable = " ".join("".join(c if c.isprintable() else " " for c in text).split())
    return printable if len(printable) <= limit else printable[: limit - 1] + "…"


def _link_lifetime(requested_at: datetime, expires_at: datetime) -> dict[str, str]:
    """How long an emailed link works and until when, as every mail with one (a reset, a
    verification) says it: `valid_for` and `expires_at` in its template."""
    return {"valid_for": _duration(expires_at - requested_at), "expires_at": _moment(expires_at)}


def _duration(length: timedelta) -> str:
    """How long a link works, as a person says it: 30 minutes, 2 hours, 1 minute."""
    seconds = max(0, round(length.total_seconds()))
    if seconds >= 3600 and seconds % 3600 == 0:
        count, unit = seconds // 3600, "hour"
    elif seconds >= 60:
        count, unit = seconds // 60, "minute"
    else:
        count, unit = seconds, "second"
    return f"{count} {unit}{'' if count == 1 else 's'}"
