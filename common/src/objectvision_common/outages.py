"""Recognises a dependency outage in an unexpected exception, so callers get 503 and a
Retry-After instead of a 500 while PostgreSQL or Redis is briefly away.

The drivers raise many types for "the server is not there" (refused sockets, connections
dropped mid-query, a server still starting, a pool with no connection to give); this module
is the one place that knows them.
"""

import asyncpg
import redis.exceptions
import sqlalchemy.exc

from objectvision_common.errors import Unavailable

OUTAGE_RETRY_AFTER_SECONDS = 2

_OUTAGE_TYPES: tuple[type[BaseException], ...] = (
    ConnectionError,
    TimeoutError,
    asyncpg.exceptions.PostgresConnectionError,
    asyncpg.exceptions.CannotConnectNowError,
    asyncpg.exceptions.ConnectionDoesNotExistError,
    asyncpg.exceptions.InterfaceError,
    asyncpg.exceptions.AdminShutdownError,
    asyncpg.exceptions.CrashShutdownError,
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
    sqlalchemy.exc.TimeoutError,
)
# A socket error raised by a driver's connect (refused, unreachable, reset); OSError itself
# also covers file errors, which are not outages.
_SOCKET_ERRNOS = frozenset({104, 110, 111, 113, 101})


def _causes(error: BaseException) -> list[BaseException]:
    chain: list[BaseException] = []
    current: BaseException | None = error
    while current is not None and current not in chain and len(chain) < 16:
        chain.append(current)
        current = current.__cause__ or current.__context__
    return chain


def _is_outage(error: BaseException) -> bool:
    if isinstance(error, sqlalchemy.exc.DBAPIError) and error.connection_invalidated:
        return True
    if isinstance(error, _OUTAGE_TYPES):
        return True
    return isinstance(error, OSError) and error.errno in _SOCKET_ERRNOS


def outage_error(error: BaseException) -> Unavailable | None:
    """An Unavailable for `error` if it (or what caused it) is a lost dependency, else None."""
    if any(_is_outage(cause) for cause in _causes(error)):
        return Unavailable(
            "a dependency is briefly unavailable; retry shortly",
            retry_after_seconds=OUTAGE_RETRY_AFTER_SECONDS,
        )
    return None
