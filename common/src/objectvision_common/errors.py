"""Domain errors and their one mapping to gRPC status.

Services raise these; the server interceptor turns them into a status code plus an
`error-code` trailer carrying the stable machine-readable code. The gateway maps that pair
to HTTP in one place (gateway.errors).
"""

from grpc import StatusCode

ERROR_CODE_TRAILER = "error-code"
RETRY_AFTER_TRAILER = "retry-after"


class DomainError(Exception):
    """Base of every error a caller may see; its message is safe to show to the caller.

    A kind of error names its stable `code` and its gRPC `status` where it is declared
    (`class NotFound(DomainError, code="not_found", status=NOT_FOUND): ...`), so the table
    below is the one domain-to-gRPC mapping."""

    code: str = "internal"
    status: StatusCode = StatusCode.INTERNAL

    def __init_subclass__(
        cls, *, code: str | None = None, status: StatusCode | None = None
    ) -> None:
        super().__init_subclass__()
        if code is not None:
            cls.code = code
        if status is not None:
            cls.status = status

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code


class InvalidArgument(DomainError, code="invalid_argument", status=StatusCode.INVALID_ARGUMENT): ...


class NotFound(DomainError, code="not_found", status=StatusCode.NOT_FOUND): ...


class AlreadyExists(DomainError, code="already_exists", status=StatusCode.ALREADY_EXISTS): ...


class Unauthenticated(DomainError, code="unauthenticated", status=StatusCode.UNAUTHENTICATED): ...


class SecondFactorRequired(Unauthenticated, code="second_factor_required"):
    """The password was right, and the account also needs a code from its authenticator app
    (ADR 0034): the caller sends the login again with one. Not a failed guess."""


class PermissionDenied(
    DomainError, code="permission_denied", status=StatusCode.PERMISSION_DENIED
): ...


class EmailNotVerified(PermissionDenied, code="email_not_verified"):
    """The deployment requires a verified email address for this (REQUIRE_VERIFIED_EMAIL,
    ADR 0029) and the caller's credential says the account has none (HTTP 403)."""


class PeerNotAllowed(PermissionDenied, code="peer_not_allowed"):
    """The caller's client certificate is from the CA but its name is not one this service
    serves (GRPC_ALLOWED_PEERS)."""


class FailedPrecondition(
    DomainError, code="failed_precondition", status=StatusCode.FAILED_PRECONDITION
): ...


class PayloadTooLarge(
    DomainError, code="payload_too_large", status=StatusCode.INVALID_ARGUMENT
): ...


class UnsupportedMediaType(
    DomainError, code="unsupported_media_type", status=StatusCode.INVALID_ARGUMENT
): ...


class Unavailable(DomainError, code="unavailable", status=StatusCode.UNAVAILABLE):
    def __init__(self, message: str, *, retry_after_seconds: int = 1) -> None:
        super().__init__(message)
        self.retry_after_seconds = retry_after_seconds


class TooManyWaiting(Unavailable, code="too_many_waiting", status=StatusCode.RESOURCE_EXHAUSTED):
    """The caller already has as much work waiting as one user may (HTTP 429, with
    Retry-After): unlike Unavailable, the service is fine and only this caller must slow
    down. A subclass of Unavailable, so job work waits it out the same way."""


class TooManyJobs(DomainError, code="too_many_jobs", status=StatusCode.RESOURCE_EXHAUSTED):
    """The caller already has as many unfinished jobs as one account may (HTTP 429, with
    Retry-After): one of them has to finish, or be cancelled, before another is accepted
    (ADR 0044). A bound on what one account can queue, and so on what a worker reads to
    decide whose turn it is."""

    def __init__(self, message: str, *, retry_after_seconds: int) -> None:
        super().__init__(message)
        self.retry_after_seconds = retry_after_seconds


class QuotaExceeded(DomainError, code="quota_exceeded", status=StatusCode.RESOURCE_EXHAUSTED):
    """The caller's monthly allowance of images is used up (HTTP 429, Retry-After: until the
    next month begins, UTC). Not an Unavailable: waiting a few seconds does not help, and
    work already accepted (a job's items) is never refused by it (ADR 0030)."""

    def __init__(self, message: str, *, retry_after_seconds: int) -> None:
        super().__init__(message)
        self.retry_after_seconds = retry_after_seconds


def trailers_for(error: DomainError) -> tuple[tuple[str, str], ...]:
    trailers: list[tuple[str, str]] = [(ERROR_CODE_TRAILER, error.code)]
    retry_after = getattr(error, "retry_after_seconds", None)
    if retry_after is not None:
        trailers.append((RETRY_AFTER_TRAILER, str(retry_after)))
    return tuple(trailers)
