"""Headless Chromium as the screenshot tools use it: Debian's browser, reaching only the
origins a screenshot is of, so that an image never depends on (or shows) anything else.

Shared by tools/console_screenshots.py and tools/trace_screenshots.py (run as scripts, so this
folder is on their import path).
"""

import argparse
import os
import sys
from pathlib import Path

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


async def launch(playwright: Playwright) -> Browser:
    return await playwright.chromium.launch(
        executable_path=str(CHROMIUM), args=["--headless", "--no-sandbox", "--disable-gpu"]
    )


async def only(page: Page, origin: str) -> None:
    """Let ``page`` fetch from ``origin`` (and blob:/data: URLs) only."""

    async def route(request_route: Route) -> None:
        if request_route.request.url.startswith((origin, "blob:", "data:")):
            await request_route.continue_()
        else:
            await request_route.abort("internetdisconnected")

    await page.route("**/*", route)


def report_written(paths: list[Path]) -> None:
    for path in paths:
        print(f"wrote {path.relative_to(REPO_ROOT) if path.is_relative_to(REPO_ROOT) else path}")
