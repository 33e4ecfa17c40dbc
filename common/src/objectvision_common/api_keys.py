"""What an API key may do, and for how long, defined once (ADR 0026).

auth-service stores a key's scopes and expiry and puts them in the Principal it answers for
the key; the gateway checks them on every route. Written on both sides, a scope the gateway
asks for could be one auth-service never grants, and a key would be refused for good.
"""

from collections.abc import Iterable
from enum import StrEnum

from objectvision_common.errors import InvalidArgument


class Scope(StrEnum):
    """One kind of work an API key may be allowed. A signed-in session may do all of them,
    and more: managing the account and its keys is for sessions only."""

    DETECT = "detect"
    """Detect objects: one image, a batch, a video; list the served models."""
    RESULTS_READ = "results:read"
    """Read what was detected: history, detections and their images, jobs, frames, exports."""
    RESULTS_WRITE = "results:write"
    """Cancel jobs, delete detections and jobs."""
    RESULTS_SHARE = "results:share"
    """Share stored detections by link (ADR 0048), list and revoke the links. A link outlives
    the key that made it, as a detection does: revoking the key leaves its links working."""
    WEBHOOKS = "webhooks"
    """Register, list and delete webhooks; read and redeliver their deliveries."""


ALL_SCOPES: tuple[Scope, ...] = tuple(Scope)
# A key may be given a lifetime of 1 to this many days, or none (it lasts until revoked).
MAX_LIFETIME_DAYS = 365
# Keys one account may have in use (neither revoked nor expired): each is a credential to
# keep track of, and a key per device of a large fleet still fits.
MAX_KEYS_IN_USE = 100
# Revoked and expired keys a listing shows, newest first, after every key in use: the
# history stays visible without a create-and-revoke loop growing the list without end.
MAX_PAST_KEYS_LISTED = 100


def requested_scopes(names: Iterable[str]) -> tuple[Scope, ...]:
    """The scopes `names` asks for, in ALL_SCOPES' order without repeats. Asking for none
    means every scope, so a key created the way keys were made before scopes existed can do
    what such keys always could. An unknown name is refused with the known ones listed."""
    wanted = set(names)
    unknown = sorted(wanted - set(ALL_SCOPES))
    if unknown:
        raise InvalidArgument(
            f"unknown API key scope {', '.join(repr(name) for name in unknown)}; "
            f"the scopes are {', '.join(ALL_SCOPES)}",
            code="unknown_scope",
        )
    return tuple(scope for scope in ALL_SCOPES if scope in wanted) or ALL_SCOPES
