"""Links to the web console that emails and webhooks carry, built from PUBLIC_BASE_URL.

The console is one page that routes on the URL fragment (`#/jobs/<id>`), so a link opens the
right view on any host that serves the page, under a path prefix too, and the fragment never
reaches a server log or a proxy. The gateway also redirects `/jobs/<id>`, `/detections/<id>`
and `/settings` to these, for links sent before the console had deep links.
"""

from dataclasses import dataclass
from urllib.parse import quote


@dataclass(frozen=True)
class ConsoleLinks:
    """Absolute console URLs; one instance per service, built from its settings."""

    base_url: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "base_url", self.base_url.rstrip("/"))

    def home(self) -> str:
        return f"{self.base_url}/"

    def job(self, job_id: str) -> str:
        """The console's view of one batch job: progress, then per-image results."""
        return f"{self.base_url}/#/jobs/{_segment(job_id)}"

    def detection(self, detection_id: str) -> str:
        """One stored detection in the console's viewer."""
        return f"{self.base_url}/#/detections/{_segment(detection_id)}"

    def settings(self) -> str:
        """Where the job-report emails are switched on or off."""
        return f"{self.base_url}/#/settings"

    def webhooks(self) -> str:
        """The account's webhooks and their deliveries."""
        return f"{self.base_url}/#/webhooks"

    def forgot_password(self) -> str:
        """Where a user who forgot their password asks for a reset link."""
        return f"{self.base_url}/#/forgot-password"

    def verify_email(self, token: str) -> str:
        """The page that confirms an address with `token`; in the fragment, like the reset
        link, so the token reaches no server's or proxy's log (ADR 0029)."""
        return f"{self.base_url}/#/verify-email?token={_segment(token)}"

    def reset_password(self, token: str) -> str:
        """The page that sets a new password with `token`. In the fragment, the token never
        reaches a server's or a proxy's log when the link is opened."""
        return f"{self.base_url}/#/reset-password?token={_segment(token)}"


def _segment(value: str) -> str:
    """Ids come from events: percent-encoded, so no value can change what the link opens."""
    return quote(value, safe="")
