"""The public-URL guard shared by webhooks and images by URL: syntax, the address table, every
resolved address checked, and connections pinned to the checked addresses (a real HTTP
server on 127.0.0.1, reached under a name that resolves nowhere)."""

import ipaddress
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from objectvision_common.public_urls import (
    ForbiddenUrl,
    UnresolvedHost,
    is_forbidden_address,
    parse_public_url,
    pinned_http_client,
    pinned_stream,
    resolve_allowed,
)

LOOPBACK = ipaddress.ip_address("127.0.0.1")
# Loopback too, but the test server listens on 127.0.0.1 only: connections are refused.
NOBODY_THERE = ipaddress.ip_address("127.0.0.2")


@pytest.mark.parametrize(
    ("address", "forbidden"),
    [
        ("8.8.8.8", False),
        ("2606:4700:4700::1111", False),
        ("100.64.0.1", True),
        ("fd00::1", True),
        ("fe80::1", True),
        ("2002:7f00:1::1", True),
        ("::ffff:10.0.0.1", True),
        ("ff02::1", True),
        ("240.0.0.1", True),
    ],
)
def test_address_classification(address: str, forbidden: bool) -> None:
    assert is_forbidden_address(ipaddress.ip_address(address)) is forbidden


async def test_every_resolved_address_is_checked_not_just_the_first() -> None:
    # "localhost" may resolve to both ::1 and 127.0.0.1; either alone is enough to refuse.
    with pytest.raises(ForbiddenUrl):
        await resolve_allowed(parse_public_url("http://localhost:9/"), allow_private=False)
    allowed = await resolve_allowed(parse_public_url("http://127.0.0.1:9/"), allow_private=True)
    assert allowed == [LOOPBACK]


async def test_a_name_that_does_not_resolve_is_told_apart_from_a_forbidden_one() -> None:
    with pytest.raises(UnresolvedHost, match="does not resolve"):
        await resolve_allowed(parse_public_url("http://no-such-host.invalid/"), allow_private=True)


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("ftp://example.com/a.jpg", "http or https"),
        ("file:///etc/passwd", "http or https"),
        ("https://user:secret@example.com/a.jpg", "credentials"),
        ("https://user@example.com/a.jpg", "credentials"),
        ("http:///no-host", "needs a host"),
        ("http://example.com:99999/", "invalid port"),
        ("http://example.com/a b.jpg", "whitespace"),
        ("http://example.com/" + "a" * 2048, "too long"),
        ("http://[::1/a.jpg", "malformed"),
        ("http://[zz]/a.jpg", "malformed"),
    ],
)
def test_urls_against_the_rules_are_refused_before_any_lookup(url: str, why: str) -> None:
    with pytest.raises(ForbiddenUrl, match=why):
        parse_public_url(url)


def test_the_parts_a_pinned_connection_needs() -> None:
    url = parse_public_url("HTTPS://Images.Example.COM./cat.jpg?size=large")
    assert (url.scheme, url.host, url.port) == ("https", "images.example.com", 443)
    assert url.target == "/cat.jpg?size=large"
    assert url.host_header == "images.example.com"
    assert url.extensions == {"sni_hostname": "images.example.com"}
    assert url.pinned_to(ipaddress.ip_address("2606:4700::1")) == (
        "https://[2606:4700::1]:443/cat.jpg?size=large"
    )
    unicode = parse_public_url("http://bücher.example/a.jpg")
    assert (unicode.host, unicode.host_header) == ("xn--bcher-kva.example",) * 2
    plain = parse_public_url("http://[2001:db8::1]:8080")
    assert (plain.target, plain.host_header, plain.extensions) == ("/", "[2001:db8::1]:8080", {})


@pytest.fixture
def server() -> Iterator[tuple[int, list[str]]]:
    """A real HTTP server on 127.0.0.1; yields its port and the Host header of each GET."""
    hosts: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            hosts.append(self.headers["Host"])
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, format: str, *args: object) -> None:
            """Quiet."""

    http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=http.serve_forever, daemon=True)
    thread.start()
    yield http.server_address[1], hosts
    http.shutdown()
    http.server_close()
    thread.join()


async def test_a_pinned_stream_connects_to_the_checked_address_under_the_name(
    server: tuple[int, list[str]],
) -> None:
    """The name resolves nowhere: the answer can only have come from the address given. An
    address that refuses the connection passes to the next one."""
    port, hosts = server
    url = parse_public_url(f"http://images.invalid:{port}/a.jpg")
    async with (
        pinned_http_client() as client,
        pinned_stream(
            client, "GET", url, [NOBODY_THERE, LOOPBACK], headers={}, timeout_seconds=5
        ) as response,
    ):
        assert response.status_code == 200
        assert await response.aread() == b"ok"
    assert hosts == [f"images.invalid:{port}"]


async def test_a_pinned_stream_raises_the_connection_error_when_no_address_answers(
    server: tuple[int, list[str]],
) -> None:
    port, hosts = server
    url = parse_public_url(f"http://images.invalid:{port}/a.jpg")
    async with pinned_http_client() as client:
        with pytest.raises(httpx.ConnectError):
            async with pinned_stream(
                client, "GET", url, [NOBODY_THERE], headers={}, timeout_seconds=5
            ):
                pass
    assert hosts == []
