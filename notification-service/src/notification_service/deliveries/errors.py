"""How a sender reports a failed attempt to the dispatcher."""


class DeliveryFailedError(Exception):
    """This attempt failed; `permanent` means retrying cannot help (the row goes dead now)."""

    def __init__(
        self, message: str, *, status_code: int | None = None, permanent: bool = False
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status_code = status_code
        self.permanent = permanent
