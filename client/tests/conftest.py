"""A real HTTP server on a local port for the client's tests to talk to, standing where the
gateway would: each test says how it answers."""

import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

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
