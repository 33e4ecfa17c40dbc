"""Where a webhook may point: public http(s) destinations only, by the rules every server
that connects to users' URLs shares (objectvision_common.public_urls). Checked when a webhook
is created and again before every delivery (the name may resolve somewhere else by then: DNS
rebinding); delivery connects to the very addresses that passed the check."""

from dataclasses import dataclass

from objectvision_common.errors import InvalidArgument
from objectvision_common.public_urls import (
    IPAddress,
    PublicUrl,
    RefusedUrl,
    parse_public_url,
    resolve_allowed,
)


class ForbiddenTarget(InvalidArgument):
    code = "webhook_target_forbidden"


@dataclass(frozen=True)
class WebhookTarget:
    """A destination that passed the check, and the addresses it passed with."""

    url: PublicUrl
    addresses: list[IPAddress]


async def checked_target(url: str, *, allow_private: bool) -> WebhookTarget:
    """The destination of `url` as it resolves now; ForbiddenTarget, saying why, when the
    URL or any address it resolves to is off-limits, or when it does not resolve."""
    try:
        parsed = parse_public_url(url)
        return WebhookTarget(parsed, await resolve_allowed(parsed, allow_private=allow_private))
    except RefusedUrl as exc:
        raise ForbiddenTarget(f"webhook {exc.message}") from exc
