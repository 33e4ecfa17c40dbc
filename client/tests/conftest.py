"""A real HTTP server on a local port for the client's tests to talk to, standing where the
gateway would: each test says how it answers."""

import io
import json
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from objectvision_devstack.scripted_gateway import ScriptedGateway

# Answers one request: reads it from the handler and writes the response with it.
Responder = Callable[[BaseHTTPRequestHandler], None]


@pytest.fixture
def local_server() -> Iterator[Callable[[Responder], str]]:
    """Start a server whose GET, POST, DELETE and PATCH requests `respond` answers; returns its
    base URL. Every server started is stopped after the test."""
    servers: list[tuple[ThreadingHTTPServer, threading.Thread]] = []

    def start(respond: Responder) -> str:
        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                respond(self)

            def do_POST(self) -> None:
                respond(self)

            def do_DELETE(self) -> None:
                respond(self)

            def do_PATCH(self) -> None:
                respond(self)

            def log_message(self, format: str, *args: object) -> None:
                """Quiet: the test reports what matters."""

        http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        # Shutting down waits out one poll: 0.5 s by default, after every test.
        thread = threading.Thread(target=http.serve_forever, args=(0.05,), daemon=True)
        thread.start()
        servers.append((http, thread))
        return f"http://127.0.0.1:{http.server_address[1]}"

    yield start
    for http, thread in servers:
        http.shutdown()
        http.server_close()
        thread.join()


@pytest.fixture
def api_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The command signed in with an API key, in a config folder of its own, no terminal."""
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.setenv("OBJECTVISION_API_KEY", "ov_test")
    monkeypatch.setattr("sys.stdin", io.StringIO(""))


@dataclass(frozen=True)
class SentQuery:
    """A request as a JSON stand-in gateway keeps it: its method, path and query."""

    method: str
    path: str
    query: dict[str, list[str]]


class JsonGateway(ScriptedGateway[SentQuery]):
    """Answers each `METHOD path` with its scripted JSON answers in turn; keeps every request."""


@pytest.fixture
def json_gateway(local_server: Callable[[Responder], str]) -> JsonGateway:
    """A stand-in gateway for requests without a body whose answers are JSON."""
    stand_in = JsonGateway()

    def respond(request: BaseHTTPRequestHandler) -> None:
        url = urlsplit(request.path)
        status, body = stand_in.answer(SentQuery(request.command, url.path, parse_qs(url.query)))
        payload = json.dumps(body).encode()
        request.send_response(status)
        request.send_header("Content-Type", "application/json")
        request.send_header("Content-Length", str(len(payload)))
        request.end_headers()
        request.wfile.write(payload)

    stand_in.url = local_server(respond)
    return stand_in
