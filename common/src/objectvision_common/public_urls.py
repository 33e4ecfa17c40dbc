"""Where a service may connect when a user names the URL: public http(s) destinations only.

Two servers open connections to URLs their users give: notification-service posts webhooks,
the gateway fetches images by URL (ADR 0027). Either could be turned against the network it
runs in (server-side request forgery: the cloud metadata service, Redis, an admin port), so
both go through the rules here, in three steps:

1. the URL's syntax (`parse_public_url`): http or https, a host, no credentials, a sane
   length;
2. every address the host resolves to (`resolve_allowed`): none may be loopback, private,
   link-local, multicast, reserved or otherwise not globally routable, in any spelling;
3. the connection (`pinned_stream`) goes to those very addresses, never to a fresh lookup of
   the name, which could answer an internal address by then (DNS rebinding); TLS still
   verifies the certificate for the name (SNI and the hostname check).

The errors say why in words a user can act on; each caller wraps them in its own error code.
"""

import asyncio
import ipaddress
import socket
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx

MAX_URL_LENGTH = 2048
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class RefusedUrl(Exception):
    """A URL no connection will be opened to; the message says why and is safe to show.
    Messages start with "URL" or "host" so a caller can name what it was ("webhook URL ...",
    "image URL ...")."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ForbiddenUrl(RefusedUrl):
    """Against the rules: the scheme, credentials, the form, or an internal address."""


class UnresolvedHost(RefusedUrl):
    """The host name has no address (a typo, or a name that exists elsewhere only)."""


@dataclass(frozen=True)
class PublicUrl:
    """A URL that passed the syntax check, in the parts a pinned connection needs."""

    scheme: str
    host: str
    port: int
    # Path and query, as sent in the request line.
    target: str
    # What the Host header carries: the host, plus the port when it is not the default.
    host_header: str

    def pinned_to(self, address: IPAddress) -> str:
        """The URL with `address` in place of the host: what the connection is opened to."""
        literal = f"[{address}]" if address.version == 6 else str(address)
        return f"{self.scheme}://{literal}:{self.port}{self.target}"

    @property
    def extensions(self) -> dict[str, str]:
        """httpx request extensions: over https, the name TLS presents (SNI) and checks the
        certificate against, which the pinned URL no longer carries."""
        return {"sni_hostname": self.host} if self.scheme == "https" else {}


def _default_port(scheme: str) -> int:
    return 443 if scheme == "https" else 80


def parse_public_url(url: str) -> PublicUrl:
    """Syntax only: http or https, a host, no credentials, a sane length."""
    if len(url) > MAX_URL_LENGTH:
        raise ForbiddenUrl("URL is too long")
    if any(char.isspace() or ord(char) < 0x20 for char in url):
        raise ForbiddenUrl("URL contains whitespace or control characters")
    try:
        parts = urlsplit(url)
        hostname = parts.hostname
    except ValueError as exc:  # an unclosed or invalid [IPv6] literal
        raise ForbiddenUrl("URL is malformed") from exc
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise ForbiddenUrl("URL must use http or https")
    if parts.username is not None or parts.password is not None:
        raise ForbiddenUrl("URL must not carry credentials")
    try:
        port = parts.port or _default_port(scheme)
    except ValueError as exc:
        raise ForbiddenUrl("URL has an invalid port") from exc
    if not (hostname or "").rstrip("."):
        raise ForbiddenUrl("URL needs a host")
    try:
        # The host as it goes on the wire (IDNA for a Unicode name), so that the lookup, the
        # Host header and TLS all name the same ASCII host; and a URL httpx cannot send is
        # refused here rather than failing at the connection.
        host = httpx.URL(url).raw_host.decode("ascii").rstrip(".")
    except (httpx.InvalidURL, UnicodeError) as exc:
        raise ForbiddenUrl("URL is malformed") from exc
    target = parts.path or "/"
    if parts.query:
        target = f"{target}?{parts.query}"
    literal = f"[{host}]" if ":" in host else host
    host_header = literal if port == _default_port(scheme) else f"{literal}:{port}"
    return PublicUrl(scheme, host, port, target, host_header)


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 one tunnels to (mapped, 6to4, Teredo), if any."""
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]
    return None


def is_forbidden_address(address: IPAddress) -> bool:
    """Loopback, private, link-local (cloud metadata), multicast, reserved: anything not
    globally routable."""
    if isinstance(address, ipaddress.IPv6Address):
        embedded = _embedded_ipv4(address)
        if embedded is not None and is_forbidden_address(embedded):
            return True
    return (
        address.is_loopback
        or address.is_private
        or address.is_link_local
        or address.is_multicast
        or address.is_reserved
        or address.is_unspecified
        or not address.is_global
    )


async def resolve_allowed(url: PublicUrl, *, allow_private: bool) -> list[IPAddress]:
    """Every address the host resolves to; ForbiddenUrl if any of them is off-limits.

    Every address must pass, not just one: the connection could go to any of them.
    `allow_private` lets internal addresses through, for tests and local development only.
    """
    try:
        literal = ipaddress.ip_address(url.host)
    except ValueError:
        literal = None
    if literal is not None:
        addresses: list[IPAddress] = [literal]
    else:
        loop = asyncio.get_running_loop()
        try:
            infos = await loop.getaddrinfo(url.host, url.port, type=socket.SOCK_STREAM)
        except (OSError, UnicodeError) as exc:
            raise UnresolvedHost(f"host {url.host!r} does not resolve") from exc
        addresses = []
        for _family, _type, _proto, _canonname, sockaddr in infos:
            address = ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0])
            if address not in addresses:
                addresses.append(address)
        if not addresses:
            raise UnresolvedHost(f"host {url.host!r} does not resolve")
    if not allow_private and any(is_forbidden_address(address) for address in addresses):
        raise ForbiddenUrl("URL points at a private, loopback or otherwise internal address")
    return addresses


def pinned_http_client() -> httpx.AsyncClient:
    """The client for `pinned_stream`. No connection reuse: a pooled connection belongs to
    one IP, and two hosts on one IP must not share a TLS session verified for the other's
    name. No redirects: one could lead past the address check (a caller that follows them
    checks each location itself). No proxies from the environment: one would hide where the
    connection goes."""
    return httpx.AsyncClient(
        follow_redirects=False,
        trust_env=False,
        limits=httpx.Limits(max_keepalive_connections=0),
    )


@asynccontextmanager
async def pinned_stream(
    client: httpx.AsyncClient,
    method: str,
    url: PublicUrl,
    addresses: Sequence[IPAddress],
    *,
    headers: Mapping[str, str],
    timeout_seconds: float,
    content: bytes | None = None,
) -> AsyncIterator[httpx.Response]:
    """A streamed response from the first of `addresses` (from `resolve_allowed`) that takes
    the connection, with the name in Host and in TLS; the body is the caller's to read.
    `timeout_seconds` bounds each step (connecting, each read), as httpx's timeout does;
    bound the whole exchange with `asyncio.timeout` around it.

    An address that refuses or does not answer the connection passes to the next; when
    none takes it, the last connection error is raised. Every other httpx error is raised
    as it comes.
    """
    last_error: httpx.TransportError | None = None
    for address in addresses:
        request = client.build_request(
            method,
            url.pinned_to(address),
            content=content,
            headers={**headers, "Host": url.host_header},
            extensions=url.extensions,
            timeout=timeout_seconds,
        )
        try:
            response = await client.send(request, stream=True)
        except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
            last_error = exc
            continue
        try:
            yield response
        finally:
            await response.aclose()
        return
    if last_error is None:
        raise ValueError("no address to connect to")
    raise last_error
