"""Where a webhook may point: public http(s) destinations only, checked when it is created
and again before every delivery (the name may resolve somewhere else by then: DNS
rebinding). Delivery connects to the very addresses that passed the check."""

import asyncio
import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

from objectvision_common.errors import InvalidArgument

MAX_URL_LENGTH = 2048
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class ForbiddenTarget(InvalidArgument):
    code = "webhook_target_forbidden"


@dataclass(frozen=True)
class WebhookUrl:
    scheme: str
    host: str
    port: int
    # Path and query, as sent in the request line.
    target: str
    # What the Host header carries: the host, plus the port when it is not the default.
    host_header: str


def parse_webhook_url(url: str) -> WebhookUrl:
    """Syntax only: http or https, a host, no credentials, a sane length."""
    if len(url) > MAX_URL_LENGTH:
        raise ForbiddenTarget("webhook URL is too long")
    if any(char.isspace() or ord(char) < 0x20 for char in url):
        raise ForbiddenTarget("webhook URL contains whitespace or control characters")
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise ForbiddenTarget("webhook URL must use http or https")
    if parts.username is not None or parts.password is not None:
        raise ForbiddenTarget("webhook URL must not carry credentials")
    try:
        port = parts.port or (443 if scheme == "https" else 80)
    except ValueError as exc:
        raise ForbiddenTarget("webhook URL has an invalid port") from exc
    host = (parts.hostname or "").rstrip(".")
    if not host:
        raise ForbiddenTarget("webhook URL needs a host")
    target = parts.path or "/"
    if parts.query:
        target = f"{target}?{parts.query}"
    literal = f"[{host}]" if ":" in host else host
    default_port = 443 if scheme == "https" else 80
    host_header = literal if port == default_port else f"{literal}:{port}"
    return WebhookUrl(scheme, host, port, target, host_header)


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


async def resolve_allowed(url: WebhookUrl, *, allow_private: bool) -> list[IPAddress]:
    """Every address the host resolves to; ForbiddenTarget if any of them is off-limits.

    Every address must pass, not just one: the connection could go to any of them.
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
            raise ForbiddenTarget(f"webhook host {url.host!r} does not resolve") from exc
        addresses = []
        for _family, _type, _proto, _canonname, sockaddr in infos:
            address = ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0])
            if address not in addresses:
                addresses.append(address)
        if not addresses:
            raise ForbiddenTarget(f"webhook host {url.host!r} does not resolve")
    if not allow_private:
        for address in addresses:
            if is_forbidden_address(address):
                raise ForbiddenTarget(
                    "webhook URL points at a private, loopback or otherwise internal address"
                )
    return addresses
