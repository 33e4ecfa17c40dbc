"""Headless Chromium as the screenshot tools use it: Debian's browser, reaching only the
origins a screenshot is of, so that an image never depends on (or shows) anything else.

Shared by tools/console_screenshots.py, tools/trace_screenshots.py and
tools/dashboard_screenshot.py (run as scripts, so this folder is on their import path).
"""

import argparse
import contextlib
import functools
import os
import sys
import threading
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from playwright.async_api import Browser, Page, Playwright, Route

CHROMIUM = Path("/usr/bin/chromium")
REPO_ROOT = Path(__file__).resolve().parents[1]
DOCS = REPO_ROOT / "docs"
# The images the screenshots show (../shared/images beside the checkout, as the tests use).
IMAGES = Path(os.environ.get("OBJECTVISION_SHARED_DIR", REPO_ROOT.parent / "shared")) / "images"


def screenshot_arguments(
    parser: argparse.ArgumentParser, argv: list[str] | None
) -> argparse.Namespace:
    """``parser`` with ``--out`` (the folder for the PNG files) added, parsed."""
    parser.add_argument("--out", type=Path, default=DOCS, help="folder for the PNG files")
    return parser.parse_args(argv)


def chromium_missing() -> bool:
    """True, after saying what to do, when Debian's Chromium is not installed."""
    if CHROMIUM.exists():
        return False
    print(f"{CHROMIUM} is missing: apt-get install chromium, then run again", file=sys.stderr)
    return True


async def launch(playwright: Playwright, *, camera: Path | None = None) -> Browser:
    """Chromium; with `camera` (an MJPEG file, JPEGs one after another), pages may use a fake
    camera that films that file, allowed without asking."""
    fake_camera = (
        [
            "--use-fake-ui-for-media-stream",
            "--use-fake-device-for-media-stream",
            f"--use-file-for-fake-video-capture={camera}",
        ]
        if camera is not None
        else []
    )
    return await playwright.chromium.launch(
        executable_path=str(CHROMIUM),
        args=["--headless", "--no-sandbox", "--disable-gpu", *fake_camera],
    )


async def only(page: Page, *origins: str) -> None:
    """Let ``page`` fetch from ``origins`` (and blob:/data: URLs) only."""

    async def route(request_route: Route) -> None:
        if request_route.request.url.startswith((*origins, "blob:", "data:")):
            await request_route.continue_()
        else:
            await request_route.abort("internetdisconnected")

    await page.route("**/*", route)


def report_written(paths: list[Path]) -> None:
    for path in paths:
        print(f"wrote {path.relative_to(REPO_ROOT) if path.is_relative_to(REPO_ROOT) else path}")


class QuietHandler(SimpleHTTPRequestHandler):
    """Static files, without a log line per request."""

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet."""


@contextlib.contextmanager
def serve_folder(
    folder: Path, handler: type[SimpleHTTPRequestHandler] = QuietHandler
) -> Iterator[str]:
    """Serve ``folder`` on a free loopback port; yields its origin."""
    serve = functools.partial(handler, directory=str(folder))
    server = ThreadingHTTPServer(("127.0.0.1", 0), serve)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, name=f"serve {folder.name}", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
