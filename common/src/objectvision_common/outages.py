"""Recognises a dependency outage in an unexpected exception, so callers get 503 and a
Retry-After instead of a 500 while PostgreSQL or Redis is briefly away.

The drivers raise many types for "the server is not there" (refused sockets, connections
dropped mid-query, a server still starting, a pool with no connection to give); this module
is the one place that knows them.
"""

import functools

from objectvision_common.errors import Unavailable

OUTAGE_RETRY_AFTER_SECONDS = 2


@functools.cache
def _outage_types() -> tuple[type[BaseException], ...]:
    """The "server is not there" types of the drivers this environment has.

    Looked up on first use, not imported with this module: detection-service's realtime role
    (ADR 0019) keeps no database or Redis and runs where their drivers are not installed (the
    GPU benchmark box); a driver that is not installed cannot have raised anything.
    """
    found: list[type[BaseException]] = [ConnectionError, TimeoutError]
    try:
        import asyncpg
    except ImportError:
        pass
    else:
        found += [
            asyncpg.exceptions.PostgresConnectionError,
            asyncpg.exceptions.CannotConnectNowError,
            asyncpg.exceptions.ConnectionDoesNotExistError,
            asyncpg.exceptions.InterfaceError,
            asyncpg.exceptions.AdminShutdownError,
            asyncpg.exceptions.CrashShutdownError,
        ]
    try:
        import redis.exceptions
    except ImportError:
        pass
    else:
        found += [redis.exceptions.ConnectionError, redis.exceptions.TimeoutError]
    try:
        import sqlalchemy.exc
    except ImportError:
        pass
    else:
        found.append(sqlalchemy.exc.TimeoutError)
    return tuple(found)


@functools.cache
def _invalidating_error() -> type[BaseException] | None:
    """SQLAlchemy's DBAPIError, whose `connection_invalidated` marks a lost connection."""
    try:
        import sqlalchemy.exc
    except ImportError:
        return None
    return sqlalchemy.exc.DBAPIError


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
    invalidating = _invalidating_error()
    lost_connection = getattr(error, "connection_invalidated", False)
    if invalidating is not None and isinstance(error, invalidating) and lost_connection:
        return True
    if isinstance(error, _outage_types()):
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
