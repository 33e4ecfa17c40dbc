"""Take the console screenshots in docs/ with headless Chromium against a running stack.

    make run                       # one shell: the whole system on http://127.0.0.1:8000
    make screenshots               # another: rewrites docs/console*.png

The README shows these images; taking them from the real console (a new account, the real
detections of the shared images) keeps them current with one command instead of by hand.
The browser may reach the console's own address only, as in tests/test_console_browser.py,
so a screenshot never depends on (or shows) anything from elsewhere.
"""

import argparse
import asyncio
import os
import re
import secrets
import sys
import tempfile
import uuid
import zipfile
from pathlib import Path

import headless
from playwright.async_api import Error as PlaywrightError
from playwright.async_api import ViewportSize, async_playwright, expect

VIEWPORT: ViewportSize = {"width": 1280, "height": 800}
# Detection runs on Triton on the CPU in `make run`; a batch of four takes a while there.
SLOW_MS = 120_000
TEN_OR_MORE = re.compile(r"^[1-9][0-9]+$")


def camera_film(path: Path, image: Path, frames: int = 30) -> Path:
    """`image` as an MJPEG file of `frames` frames (the same JPEG one after another): what
    Chromium's fake camera films for the Live page."""
    path.write_bytes(image.read_bytes() * frames)
    return path


async def take(url: str, out: Path, scratch: Path) -> list[Path]:
    """Sign up, detect bus.jpg, run a batch, score it against its labels, open the settings,
    detect zidane.jpg live from a fake camera: one screenshot of each."""
    written: list[Path] = []
    camera = camera_film(scratch / "zidane.mjpeg", headless.IMAGES / "zidane.jpg")
    async with async_playwright() as playwright:
        browser = await headless.launch(playwright, camera=camera)
        context = await browser.new_context(viewport=VIEWPORT, base_url=url)
        page = await context.new_page()
        await headless.only(page, url.rstrip("/"))

        await page.goto("/")
        signup = page.get_by_test_id("signup-form")
        email = f"ada-{uuid.uuid4().hex[:10]}@example.com"
        await signup.get_by_label("Name").fill("Ada")
        await signup.get_by_label("Email").fill(email)
        # A throwaway account: nobody logs in to it again.
        await signup.get_by_label("Password").fill(secrets.token_urlsafe(18))
        await signup.get_by_role("button", name="Create account").click()
        await expect(page.get_by_test_id("account-email")).to_have_text(email, timeout=SLOW_MS)

        await page.get_by_test_id("file-input").set_input_files(headless.IMAGES / "bus.jpg")
        await expect(page.get_by_test_id("box")).to_have_count(5, timeout=SLOW_MS)
        await page.get_by_test_id("status").evaluate("node => { node.hidden = true; }")
        # The result, below a form grown with every option: the image with its boxes and the
        # objects beside it, as the README's first picture shows them.
        await page.locator("#single-result").evaluate(
            "node => node.scrollIntoView({block: 'start'})"
        )
        written.append(out / "console.png")
        await page.screenshot(path=written[-1])

        batch = sorted((headless.IMAGES / "coco8" / "images" / "train").glob("*.jpg"))[:4]
        await page.get_by_test_id("file-input").set_input_files(batch)
        progress = page.get_by_test_id("job-progress")
        await expect(progress).to_have_attribute("data-status", "completed", timeout=SLOW_MS)
        loaded = page.locator('[data-testid="job-thumbnail"][data-loaded="true"]')
        await expect(loaded).to_have_count(len(batch), timeout=SLOW_MS)
        written.append(out / "console-batch.png")
        await page.screenshot(path=written[-1], full_page=True)

        # The same job scored against coco8's own labels of those images (ADR 0054).
        section = page.get_by_test_id("job-evaluation")
        # Chromium reads a chosen file when the form is sent: it stays until the answer is in.
        with tempfile.TemporaryDirectory() as scratch:
            labels = Path(scratch) / "coco8-train-labels.zip"
            with zipfile.ZipFile(labels, "w") as archive:
                for image in batch:
                    label = headless.IMAGES / "coco8" / "labels" / "train" / f"{image.stem}.txt"
                    archive.write(label, f"labels/{label.name}")
            await section.get_by_test_id("evaluation-labels").set_input_files(labels)
            await section.get_by_role("button", name="Evaluate", exact=True).click()
            result = section.get_by_test_id("evaluation-result")
            await expect(result).to_be_visible(timeout=SLOW_MS)
        written.append(out / "console-evaluation.png")
        await section.screenshot(path=written[-1])

        await page.get_by_role("link", name="Settings").click()
        await expect(page.get_by_test_id("settings-form")).to_have_attribute("data-loaded", "true")
        written.append(out / "console-settings.png")
        await page.screenshot(path=written[-1])

        # The Live page (ADR 0059): the fake camera's picture, detected and tracked, with a
        # counting line dragged across the floor and a zone clicked around the right-hand
        # side's floor (the stream opens again with each).
        await page.get_by_role("link", name="Live").click()
        await page.get_by_test_id("live-line").check()
        await page.get_by_test_id("live-zone").check()
        await page.get_by_test_id("live-start").click()
        await expect(page.get_by_test_id("live-status")).to_have_attribute(
            "data-state", "running", timeout=SLOW_MS
        )
        # The pointer draws only on the picture in the window: all of it scrolled in.
        await page.get_by_test_id("live-video").scroll_into_view_if_needed()
        video = await page.get_by_test_id("live-video").bounding_box()
        if video is None:
            raise RuntimeError("the Live page shows no video")

        def on_picture(x: float, y: float) -> tuple[float, float]:
            return video["x"] + x * video["width"], video["y"] + y * video["height"]

        await page.mouse.move(*on_picture(0.06, 0.92))
        await page.mouse.down()
        await page.mouse.move(*on_picture(0.94, 0.82), steps=8)
        await page.mouse.up()
        await expect(page.get_by_test_id("live-line-counts")).to_have_text(
            "0 in · 0 out", timeout=SLOW_MS
        )
        # Down to the picture's bottom edge (the page snaps a click by it onto it), where the
        # people's boxes, cut by the frame, end.
        corners = [(0.56, 0.45), (0.97, 0.45), (0.97, 0.998), (0.56, 0.998)]
        for corner in [*corners, corners[0]]:
            await page.mouse.click(*on_picture(*corner))
        await expect(page.get_by_test_id("live-zone-counts")).to_have_text(
            re.compile(r"^\d+ now · \d+ visited$"), timeout=SLOW_MS
        )
        await expect(page.get_by_test_id("live-zone-counts")).not_to_have_attribute(
            "data-visited", "0", timeout=SLOW_MS
        )
        await expect(page.get_by_test_id("live-status")).to_have_attribute(
            "data-state", "running", timeout=SLOW_MS
        )
        await expect(page.get_by_test_id("live-count")).not_to_have_count(0, timeout=SLOW_MS)
        # A few answers in, the tracked labels carry their ids and the rate has settled.
        await expect(page.get_by_test_id("live-frames")).to_have_attribute(
            "data-count", TEN_OR_MORE, timeout=SLOW_MS
        )
        written.append(out / "console-live.png")
        await page.screenshot(path=written[-1], full_page=True)
        await page.get_by_test_id("live-stop").click()
        await expect(page.get_by_test_id("live-status")).to_have_attribute(
            "data-state", "stopped", timeout=SLOW_MS
        )
        await browser.close()
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--url",
        default=os.environ.get("OBJECTVISION_API_URL", "http://127.0.0.1:8000"),
        help="the running console (default: $OBJECTVISION_API_URL or http://127.0.0.1:8000)",
    )
    args = headless.screenshot_arguments(parser, argv)
    if headless.chromium_missing():
        return 1
    try:
        with tempfile.TemporaryDirectory() as scratch:
            written = asyncio.run(take(args.url, args.out, Path(scratch)))
    except (PlaywrightError, OSError, RuntimeError) as exc:
        print(
            f"could not take the screenshots from {args.url}: {exc}. Is the system running "
            "(`make run` in another shell)?",
            file=sys.stderr,
        )
        return 1
    headless.report_written(written)
    return 0


if __name__ == "__main__":
    sys.exit(main())
