"""A stand-in gateway for the client library's tests: it answers each `METHOD path` from the
test's script and keeps every request, recorded as each test needs it (its own `Sent`). The
HTTP server around it is client/tests/conftest.py's `local_server`."""

from dataclasses import dataclass, field
from typing import Any, Generic, Protocol, TypeVar


class Request(Protocol):
    @property
    def method(self) -> str: ...

    @property
    def path(self) -> str: ...


RequestT = TypeVar("RequestT", bound=Request)

NOT_FOUND = {
    "error": {"code": "not_found", "message": "no such route in this test", "request_id": "req-1"}
}


@dataclass
class ScriptedGateway(Generic[RequestT]):
    """What the stand-in gateway answers each `METHOD path` (in turn; the last one again once
    the script runs out), and every request it was sent."""

    url: str = ""
    script: dict[str, list[tuple[int, Any]]] = field(default_factory=dict)
    sent: list[RequestT] = field(default_factory=list)

    def answers(self, route: str, *answers: tuple[int, Any]) -> None:
        self.script[route] = list(answers)

    def answer(self, request: RequestT) -> tuple[int, Any]:
        self.sent.append(request)
        queued = self.script.get(f"{request.method} {request.path}")
        if not queued:
            return 404, NOT_FOUND
        return queued.pop(0) if len(queued) > 1 else queued[0]
