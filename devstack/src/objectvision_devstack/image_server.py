"""A real HTTP server on 127.0.0.1 standing where the hosts of images sent by URL stand
(ADR 0027): it serves files, and answers the way broken or hostile hosts do, for the gateway's
own tests and the end-to-end ones.

Paths:
- `/files/<name>`: the bytes of `files[name]` (404 for an unknown name);
- `/redirect/<n>/<rest>`: `n` redirects (302, relative Location), one hop at a time, then
  `/<rest>`;
- `/to?<url>`: a 302 to `<url>`, whatever it is (the query is the whole Location);
- `/status/<code>`: that status with an empty body;
- `/declared-huge`: `Content-Length` of 1 GiB, then a few bytes and the end of the connection;
- `/endless`: a body without a length that goes on until the reader hangs up (or 1 GiB);
  `endless_bytes_sent` counts what was written by then;
- `/slow`: nothing for `slow_seconds`, then an empty 200.

Each request's path and headers are kept (`requests`). HTTP/1.0: one request a connection.
Started by `image_server(files)`, a context manager.
"""

import contextlib
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

ENDLESS_LIMIT_BYTES = 2**30
_CHUNK = b"\xff" * 65536


@dataclass(frozen=True)
class ReceivedRequest:
    path: str
    # Header names in lower case.
    headers: dict[str, str]


@dataclass
class ImageServer:
    """What `image_server` serves, where, and what it has seen."""

    files: Mapping[str, bytes]
    slow_seconds: float = 30.0
    url: str = ""
    requests: list[ReceivedRequest] = field(default_factory=list)
    endless_bytes_sent: int = 0
    # Set once an /endless response has ended (the reader hung up, or the limit was reached).
    endless_done: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def file_url(self, name: str) -> str:
        return f"{self.url}/files/{name}"

    def received(self) -> list[ReceivedRequest]:
        with self._lock:
            return list(self.requests)

    def handle(self, handler: BaseHTTPRequestHandler) -> None:
        """Keep the request, then answer it by its path (the module docstring lists them)."""
        headers = {name.lower(): value for name, value in handler.headers.items()}
        with self._lock:
            self.requests.append(ReceivedRequest(handler.path, headers))
        parts = urlsplit(handler.path)
        segments = parts.path.strip("/").split("/")
        head, rest = segments[0], segments[1:]
        if head == "files" and len(rest) == 1 and rest[0] in self.files:
            self._send(handler, 200, self.files[rest[0]])
        elif head == "redirect" and rest and rest[0].isdigit():
            hops, remainder = int(rest[0]), "/".join(rest[1:])
            location = f"/redirect/{hops - 1}/{remainder}" if hops > 1 else f"/{remainder}"
            self._send(handler, 302, b"", {"Location": location})
        elif head == "to" and parts.query:
            self._send(handler, 302, b"", {"Location": parts.query})
        elif head == "status" and rest and rest[0].isdigit():
            self._send(handler, int(rest[0]), b"")
        elif head == "declared-huge":
            self._send(handler, 200, b"\xff" * 1024, {"Content-Length": str(2**30)})
        elif head == "endless":
            self._endless(handler)
        elif head == "slow":
            time.sleep(self.slow_seconds)
            self._send(handler, 200, b"")
        else:
            self._send(handler, 404, b"")

    @staticmethod
    def _send(
        handler: BaseHTTPRequestHandler,
        status: int,
        body: bytes,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        handler.send_response(status)
        sent = dict(headers or {})
        sent.setdefault("Content-Length", str(len(body)))
        for name, value in sent.items():
            handler.send_header(name, value)
        handler.end_headers()
        # The reader may hang up early (a body it refused from its Content-Length).
        with contextlib.suppress(OSError):
            handler.wfile.write(body)

    def _endless(self, handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(200)
        handler.send_header("Content-Type", "image/jpeg")
        handler.end_headers()
        try:
            while self.endless_bytes_sent < ENDLESS_LIMIT_BYTES:
                handler.wfile.write(_CHUNK)
                with self._lock:
                    self.endless_bytes_sent += len(_CHUNK)
        except OSError:
            pass  # The reader hung up: what this server exists to see.
        finally:
            self.endless_done.set()


@contextmanager
def image_server(
    files: Mapping[str, bytes], *, slow_seconds: float = 30.0
) -> Iterator[ImageServer]:
    """An ImageServer of `files`, serving from its own thread until the block ends."""
    server = ImageServer(files=files, slow_seconds=slow_seconds)

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            server.handle(self)

        def log_message(self, format: str, *args: object) -> None:
            """Quiet: the tests report what matters."""

    http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    # A handler still sending (/endless, /slow) must not hold the end of the block.
    http.daemon_threads = True
    server.url = f"http://127.0.0.1:{http.server_address[1]}"
    # Shutting down waits out one poll: 0.5 s by default, each time a server is closed.
    thread = threading.Thread(target=http.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield server
    finally:
        http.shutdown()
        http.server_close()
        thread.join()
