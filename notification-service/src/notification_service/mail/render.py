"""Email content from Jinja2 templates: an HTML part and a plain-text part per message."""

from dataclasses import asdict, dataclass
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from notification_service.links import ConsoleLinks
from notification_service.mail.headers import mailbox, safe_header_value
from objectvision.v1 import notification_pb2


@dataclass(frozen=True)
class RenderedEmail:
    """What a delivery row stores, so every retry sends exactly the same message."""

    to_addr: str
    to_name: str
    subject: str
    text: str
    html: str

    def to_payload(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_payload(cls, payload: dict[str, Any]) -> "RenderedEmail":
        return cls(**{key: str(payload[key]) for key in cls.__dataclass_fields__})


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
        mailbox(to_addr, to_name)
        safe_header_value(subject, field="subject")
        context.update(
            product=self._product,
            base_url=self._base_url,
            settings_url=self._links.settings(),
            name=to_name,
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
        to use: every such mail names the address and links to logging in."""
        return self._render(
            template,
            to_addr=to_addr,
            to_name=name,
            subject=subject,
            email=to_addr,
            login_url=self._links.home(),
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
