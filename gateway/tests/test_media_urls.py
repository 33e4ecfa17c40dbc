"""The gateway's media fetcher (gateway.media_urls), as it fetches images, against a real
HTTP server on 127.0.0.1 (a video is fetched by the same code into a file).

With IMAGE_URL_ALLOW_PRIVATE=false, as in production, the server itself is off-limits (it is
on loopback): that is how the address rules are proven here, before any connection. With it
true, as in tests and local development, the server stands for a public host and shows how
redirects, failures, sizes and the deadline are handled. The routes' side (JSON bodies,
base64, the error shape) is in test_detect_routes.py; fetching and detecting end to end in
tests/test_detect_by_url.py.
"""

import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager

import pytest

from gateway import media_urls
from gateway.errors import ApiError
from gateway.media_urls import MAX_REDIRECTS, ByteBudget, OverBudget, UrlFetcher, url_filename
from objectvision_common.public_urls import pinned_http_client
from objectvision_devstack.image_server import ImageServer, image_server

IMAGE = b"\xff\xd8\xff" + b"\x01" * 5000
MAX_BYTES = 10_000
MIB = 1024 * 1024


@pytest.fixture(scope="module")
def server() -> Iterator[ImageServer]:
    with image_server({"a.jpg": IMAGE}, slow_seconds=5) as running:
        yield running


@asynccontextmanager
async def _fetcher(
    *, allow_private: bool, timeout_seconds: float = 5, max_bytes: int = MAX_BYTES
) -> AsyncIterator[UrlFetcher]:
    async with pinned_http_client() as client:
        yield UrlFetcher(
            client,
            kind=media_urls.IMAGE,
            allow_private=allow_private,
            max_bytes=max_bytes,
            timeout_seconds=timeout_seconds,
        )


@pytest.fixture
async def strict() -> AsyncIterator[UrlFetcher]:
    """IMAGE_URL_ALLOW_PRIVATE=false: the production setting."""
    async with _fetcher(allow_private=False) as fetcher:
        yield fetcher


@pytest.fixture
async def local() -> AsyncIterator[UrlFetcher]:
    """IMAGE_URL_ALLOW_PRIVATE=true: the test server counts as a public host."""
    async with _fetcher(allow_private=True) as fetcher:
        yield fetcher


async def _refused(fetcher: UrlFetcher, url: str, status: int, code: str) -> str:
    with pytest.raises(ApiError) as refused:
        await fetcher.fetch(url)
    assert (refused.value.status_code, refused.value.code) == (status, code), refused.value
    return refused.value.message


@pytest.mark.parametrize(
    "path",
    ["/files/a.jpg", "/redirect/1/files/a.jpg"],
)
async def test_loopback_is_refused_before_anything_is_sent(
    strict: UrlFetcher, server: ImageServer, path: str
) -> None:
    before = len(server.received())
    for host in ("127.0.0.1", "localhost", "[::ffff:127.0.0.1]", "0x7f000001"):
        url = server.url.replace("127.0.0.1", host, 1) + path
        message = await _refused(strict, url, 422, "image_url_forbidden")
        assert "private, loopback or otherwise internal" in message
    assert len(server.received()) == before


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("http://169.254.169.254/latest/meta-data/", "internal address"),
        ("http://10.0.0.1/a.jpg", "internal address"),
        ("http://[fd00::1]/a.jpg", "internal address"),
        ("http://0.0.0.0/a.jpg", "internal address"),
        ("file:///etc/passwd", "http or https"),
        ("ftp://example.com/a.jpg", "http or https"),
        ("gopher://127.0.0.1:6379/_FLUSHALL", "http or https"),
        ("https://user:secret@example.com/a.jpg", "credentials"),
        ("http:///a.jpg", "needs a host"),
    ],
)
async def test_urls_against_the_rules_are_forbidden(strict: UrlFetcher, url: str, why: str) -> None:
    message = await _refused(strict, url, 422, "image_url_forbidden")
    assert message.startswith("image URL") and why in message


async def test_an_allowed_url_is_fetched_from_the_checked_address(
    local: UrlFetcher, server: ImageServer
) -> None:
    fetched = await local.fetch(server.file_url("a.jpg"))
    assert fetched.data == IMAGE
    sent = server.received()[-1]
    assert sent.headers["host"] == server.url.removeprefix("http://")
    assert sent.headers["accept-encoding"] == "identity"
    assert sent.headers["user-agent"].startswith("ObjectVision-ImageFetcher/")


async def test_redirects_are_followed_up_to_the_limit_each_checked_again(
    local: UrlFetcher, server: ImageServer
) -> None:
    fetched = await local.fetch(f"{server.url}/redirect/{MAX_REDIRECTS}/files/a.jpg")
    assert fetched.data == IMAGE
    message = await _refused(
        local,
        f"{server.url}/redirect/{MAX_REDIRECTS + 1}/files/a.jpg",
        422,
        "image_url_unreachable",
    )
    assert f"more than {MAX_REDIRECTS}" in message
    for location, why in [
        ("file:///etc/passwd", "http or https"),
        (f"http://user:pw@{server.url.removeprefix('http://')}/files/a.jpg", "credentials"),
    ]:
        message = await _refused(local, f"{server.url}/to?{location}", 422, "image_url_forbidden")
        assert "redirected to a refused URL" in message and why in message
    message = await _refused(
        local, f"{server.url}/to?http://[::1/a.jpg", 422, "image_url_unreachable"
    )
    assert "not valid HTTP" in message
    # Each location is resolved and checked again (the same check as the first URL's, so an
    # internal address there is refused as above), never taken from the first lookup.
    message = await _refused(
        local, f"{server.url}/to?http://no-such-host.invalid/a.jpg", 422, "image_url_unreachable"
    )
    assert "does not resolve" in message


@pytest.mark.parametrize(
    ("path", "said"),
    [("/status/404", "answered 404 Not Found"), ("/status/503", "answered 503 Service")],
)
async def test_a_failing_remote_is_unreachable_and_its_status_is_named(
    local: UrlFetcher, server: ImageServer, path: str, said: str
) -> None:
    message = await _refused(local, f"{server.url}{path}", 422, "image_url_unreachable")
    assert said in message


async def test_a_closed_port_and_an_unknown_host_are_unreachable(local: UrlFetcher) -> None:
    with image_server({}) as gone:
        closed = gone.url
    message = await _refused(local, f"{closed}/a.jpg", 422, "image_url_unreachable")
    assert "could not connect to 127.0.0.1" in message
    message = await _refused(
        local, "http://no-such-host.invalid/a.jpg", 422, "image_url_unreachable"
    )
    assert "image host 'no-such-host.invalid' does not resolve" in message


async def test_too_much_is_refused_from_content_length_or_cut_off(
    local: UrlFetcher, server: ImageServer
) -> None:
    message = await _refused(local, f"{server.url}/declared-huge", 413, "payload_too_large")
    assert "1024.0 MiB" in message
    server.endless_done.clear()
    await _refused(local, f"{server.url}/endless", 413, "payload_too_large")
    assert server.endless_done.wait(10), "the server is still sending"
    # Cut off near the limit, not read to the end (socket buffers hold some megabytes).
    assert server.endless_bytes_sent < 64 * 1024 * 1024


async def test_a_batchs_fetches_take_their_bytes_from_one_budget_and_a_failed_one_gives_back(
    server: ImageServer,
) -> None:
    budget = ByteBudget(len(IMAGE) + 4 * MIB)
    async with _fetcher(allow_private=True, max_bytes=64 * MIB) as fetcher:
        assert (await fetcher.fetch(server.file_url("a.jpg"), budget=budget)).data == IMAGE
        assert budget.held == len(IMAGE)
        # Megabytes of a body arrive before it would pass the budget: the batch's refusal,
        # and what had arrived is given back.
        server.endless_done.clear()
        with pytest.raises(OverBudget):
            await fetcher.fetch(f"{server.url}/endless", budget=budget)
        assert server.endless_done.wait(10), "the server is still sending"
        assert budget.held == len(IMAGE)
        with pytest.raises(ApiError, match="answered 404"):
            await fetcher.fetch(f"{server.url}/status/404", budget=budget)
        assert budget.held == len(IMAGE)
        budget.give_back(len(IMAGE))
        assert (await fetcher.fetch(server.file_url("a.jpg"), budget=budget)).data == IMAGE


async def test_the_whole_fetch_has_one_deadline() -> None:
    with image_server({}, slow_seconds=3) as slow:
        async with _fetcher(allow_private=True, timeout_seconds=0.5) as fetcher:
            started = time.monotonic()
            message = await _refused(fetcher, f"{slow.url}/slow", 422, "image_url_unreachable")
            assert time.monotonic() - started < 2
            assert "within 0.5 s" in message


@pytest.mark.parametrize(
    ("url", "name"),
    [
        ("https://cdn.example.com/photos/bus%201.jpg?size=large", "bus 1.jpg"),
        ("https://cdn.example.com/photos/", ""),
        ("https://cdn.example.com", ""),
    ],
)
def test_the_filename_is_the_last_path_segment(url: str, name: str) -> None:
    assert url_filename(url) == name


async def test_a_video_is_written_to_the_callers_file_under_its_own_kind_and_limit(
    server: ImageServer, tmp_path
) -> None:
    async with pinned_http_client() as client:
        videos = UrlFetcher(
            client,
            kind=media_urls.VIDEO,
            allow_private=True,
            max_bytes=MAX_BYTES,
            timeout_seconds=5,
        )
        with (tmp_path / "video").open("w+b") as file:
            assert await videos.fetch_to(server.file_url("a.jpg"), file) == len(IMAGE)
            file.seek(0)
            assert file.read() == IMAGE
        sent = server.received()[-1]
        assert sent.headers["accept"] == "video/*"
        assert sent.headers["user-agent"].startswith("ObjectVision-VideoFetcher/")

        message = await _refused(videos, f"{server.url}/status/404", 422, "video_url_unreachable")
        assert message == "the video URL answered 404 Not Found"
        with (tmp_path / "endless").open("w+b") as file:
            with pytest.raises(ApiError) as too_large:
                await videos.fetch_to(f"{server.url}/endless", file)
            assert too_large.value.code == "payload_too_large"
            assert "per video are accepted" in too_large.value.message
            # Cut off at the limit: what was written never passes it.
            assert file.tell() <= MAX_BYTES
        message = await _refused(videos, "ftp://example.com/v.mp4", 422, "video_url_forbidden")
        assert message.startswith("video URL")
