"""The web console in a real Chromium (Playwright), against the running stack.

Everything is real: the page served by the gateway at `/`, its JavaScript modules, the REST
API, the job WebSocket, the detection service and Triton. Assertions are on the DOM (the
`data-testid` attributes the console sets). Only a missing Chromium that cannot be installed
(`apt-get install -y chromium` needs root and Debian's package lists) skips these tests.

Each browser context sends its own X-Forwarded-For address, so the per-IP sign-up limit is
never shared (the stack trusts proxy headers). A screenshot of the detect view is saved to
test-artifacts/console-detect.png (1280x800).
"""

import asyncio
import base64
import json
import math
import os
import re
import shutil
import subprocess
import time
import uuid
import zipfile
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

import cv2
import httpx
import numpy as np
import pyotp
import pytest
from playwright.async_api import (
    Browser,
    Dialog,
    Locator,
    Page,
    Request,
    Route,
    WebSocket,
    WebSocketRoute,
    async_playwright,
    expect,
)

from objectvision_devstack.api_users import (
    admin_signed_in,
    fresh_network,
    logged_in,
    network_address,
    signed_in,
)
from objectvision_devstack.ground_truth import cvat_mot_zip, tracked_objects
from objectvision_devstack.image_server import image_server
from objectvision_devstack.mail import Mailbox
from objectvision_devstack.stack import Stack
from objectvision_devstack.waiting import eventually

from .conftest import PANNED_SIZE

REPO_ROOT = Path(__file__).resolve().parents[1]
IMAGES = Path(os.environ.get("OBJECTVISION_SHARED_DIR", REPO_ROOT.parent / "shared")) / "images"
BUS = IMAGES / "bus.jpg"
BATCH = sorted((IMAGES / "coco8" / "images" / "train").glob("*.jpg"))[:3]
# coco8's validation images and their ground truth (YOLO label files), to score a job against.
VAL_IMAGES = sorted((IMAGES / "coco8" / "images" / "val").glob("*.jpg"))
VAL_LABELS = sorted((IMAGES / "coco8" / "labels" / "val").glob("*.txt"))
ARTIFACTS = REPO_ROOT / "test-artifacts"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
PASSWORD = "correct horse battery"
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}
# Detection and batch jobs run on Triton on the CPU here.
SLOW_MS = 60_000
APT_TIMEOUT_SECONDS = 600

# Installing Chromium on first use can take minutes.
# The slow tier (`make test-slow`, run by .ci/run beside `make test`): a real Chromium over the
# whole console is about 80 s of `make test`'s 15 minutes on 2 cores.
pytestmark = [pytest.mark.timeout(900), pytest.mark.slow]


def _apt_get(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["apt-get", *args],
        env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
        capture_output=True,
        text=True,
        timeout=APT_TIMEOUT_SECONDS,
        check=False,
    )


@pytest.fixture(scope="session")
def chromium() -> Path:
    """Debian's Chromium, installed here when missing and possible; otherwise a skip."""
    if CHROMIUM.exists():
        return CHROMIUM
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        pytest.skip(f"{CHROMIUM} is missing and installing it needs root and apt-get")
    result = _apt_get("install", "-y", "--no-install-recommends", "chromium")
    if result.returncode != 0:
        # The package lists may be missing or stale on a fresh machine.
        _apt_get("update")
        result = _apt_get("install", "-y", "--no-install-recommends", "chromium")
    if not CHROMIUM.exists():
        pytest.skip(f"Chromium could not be installed: {(result.stderr or result.stdout)[-800:]}")
    return CHROMIUM


@pytest.fixture(scope="session")
async def browser(chromium: Path, stack: Stack) -> AsyncIterator[Browser]:
    """Launched after the stack is up: the stack forks its services from this process, and
    forking is safest before Playwright's driver and threads exist."""
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(
            executable_path=str(chromium), args=CHROMIUM_ARGS
        )
        try:
            yield launched
        finally:
            await launched.close()


@asynccontextmanager
async def _console_page(browser: Browser, stack: Stack) -> AsyncIterator[Page]:
    """A fresh browser context (no storage) on `stack` with its own client address; fails the
    test on any uncaught JavaScript error."""
    address = network_address()
    context = await browser.new_context(
        viewport=DESKTOP,
        base_url=stack.gateway_url,
        extra_http_headers={"X-Forwarded-For": address},
    )
    opened = await context.new_page()
    errors: list[str] = []
    opened.on("pageerror", lambda error: errors.append(str(error)))
    try:
        yield opened
    finally:
        await context.close()
    assert not errors, f"uncaught errors in the page: {errors}"


@pytest.fixture
async def page(browser: Browser, stack: Stack) -> AsyncIterator[Page]:
    async with _console_page(browser, stack) as opened:
        yield opened


@pytest.fixture
async def queued_page(browser: Browser, queued_stack: Stack) -> AsyncIterator[Page]:
    """A page on the stack without job workers (tests/conftest.py): its jobs stay pending."""
    async with _console_page(browser, queued_stack) as opened:
        yield opened


def visible_view(page: Page) -> Locator:
    """The section of the view on screen (the others stay in the DOM, hidden)."""
    return page.locator("main > .view:not([hidden])")


async def sign_up_and_log_in(page: Page, path: str = "/") -> str:
    """Sign up through the form: the console logs the new user in at once."""
    email = f"ada-{uuid.uuid4().hex[:10]}@example.com"
    await page.goto(path)
    signup = page.get_by_test_id("signup-form")
    await signup.get_by_label("Name").fill("Console Test")
    await signup.get_by_label("Email").fill(email)
    await signup.get_by_label("Password").fill(PASSWORD)
    await signup.get_by_role("button", name="Create account").click()
    await expect(page.get_by_test_id("account-email")).to_have_text(email, timeout=SLOW_MS)
    return email


async def log_in(page: Page, email: str) -> None:
    login = page.get_by_test_id("login-form")
    await login.get_by_label("Email").fill(email)
    await login.get_by_label("Password").fill(PASSWORD)
    await login.get_by_role("button", name="Log in").click()
    await expect(page.get_by_test_id("account-email")).to_have_text(email)


async def close_the_network(page: Page, stack: Stack) -> list[str]:
    """Every request to a host other than the gateway fails, and is listed."""
    gateway = stack.gateway_url.rstrip("/")
    elsewhere: list[str] = []

    async def only_the_gateway(route: Route) -> None:
        if route.request.url.startswith((gateway, "blob:", "data:")):
            await route.continue_()
        else:
            elsewhere.append(route.request.url)
            await route.abort("internetdisconnected")

    await page.route("**/*", only_the_gateway)
    return elsewhere


@pytest.mark.parametrize(
    ("path", "rendered"), [("/docs", ".swagger-ui .info"), ("/redoc", ".redoc-wrap")]
)
async def test_the_api_docs_render_with_the_network_closed(
    page: Page, stack: Stack, path: str, rendered: str
) -> None:
    """Swagger UI and ReDoc come from the gateway itself: with every other host unreachable
    the page still renders the API, and it never even tries to reach another host."""
    gateway = stack.gateway_url.rstrip("/")
    elsewhere: list[str] = []

    async def only_the_gateway(route: Route) -> None:
        if route.request.url.startswith(gateway):
            await route.continue_()
        else:
            elsewhere.append(route.request.url)
            await route.abort("internetdisconnected")

    await page.route("**/*", only_the_gateway)
    response = await page.goto(path)
    assert response is not None and response.ok
    await expect(page.locator(rendered).first).to_be_visible(timeout=20_000)
    await expect(page.get_by_text("ObjectVision API").first).to_be_visible()
    # ReDoc's bundle fetches its own "API docs by Redocly" logo from its CDN; the page does
    # not need it (the request fails here and the docs render). Nothing else may leave.
    branding = {"https://cdn.redoc.ly/redoc/logo-mini.svg"}
    assert [url for url in elsewhere if url not in branding] == [], f"{path} tried {elsewhere}"


async def test_the_console_is_served_without_shadowing_the_api(page: Page, stack: Stack) -> None:
    response = await page.goto("/")
    assert response is not None and response.ok
    assert "default-src 'self'" in response.headers["content-security-policy"]
    await expect(page.get_by_test_id("login-form")).to_be_visible()
    for path, content_type in [
        ("/health", "application/json"),
        ("/openapi.json", "application/json"),
        ("/docs", "text/html"),
    ]:
        answer = await page.request.get(path)
        assert answer.ok, path
        assert answer.headers["content-type"].startswith(content_type), path
    openapi = await (await page.request.get("/openapi.json")).json()
    assert not [path for path in openapi["paths"] if path == "/" or "console" in path], (
        "console routes must stay out of the API document"
    )

    # Unknown assets and paths that try to leave the console folder: the API's JSON 404.
    async with httpx.AsyncClient(base_url=stack.gateway_url) as client:
        for path in (
            "/console/js/no-such-module.js",
            "/console/..%2f..%2frouters%2fconsole.py",
            "/console/%2fetc%2fpasswd",
            "/console/js",
        ):
            missing = await client.get(path)
            assert missing.status_code == 404, path
            assert missing.json()["error"]["code"] == "not_found", path
        asset = await client.get("/console/js/main.js")
        assert asset.headers["content-type"].startswith("text/javascript")
        cached = await client.get(
            "/console/js/main.js", headers={"If-None-Match": asset.headers["etag"]}
        )
        assert cached.status_code == 304


async def test_metadata_typed_in_the_detect_view_is_kept_and_shown_in_the_history(
    page: Page,
) -> None:
    await sign_up_and_log_in(page)
    typed = page.get_by_test_id("upload-metadata")
    await typed.fill("camera")
    await page.get_by_test_id("file-input").set_input_files(BUS)
    await expect(page.get_by_test_id("error")).to_contain_text(
        "Metadata: “camera” is not key=value"
    )

    await typed.fill("shift=night; camera=<b>north</b>")
    await page.get_by_test_id("file-input").set_input_files(BUS)
    await expect(page.get_by_test_id("box")).to_have_count(5, timeout=SLOW_MS)
    await page.get_by_role("link", name="History").click()
    cards = page.get_by_test_id("history-item")
    await expect(cards).to_have_count(1, timeout=SLOW_MS)
    shown = page.get_by_test_id("history-metadata")
    await expect(shown).to_have_text("camera=<b>north</b> · shift=night")
    assert await shown.locator("b").count() == 0


async def test_detect_batch_and_history(page: Page) -> None:
    await sign_up_and_log_in(page)

    # One image: boxes drawn over it, filtered in the page.
    await page.get_by_test_id("file-input").set_input_files(BUS)
    boxes = page.get_by_test_id("box")
    await expect(boxes).to_have_count(5, timeout=SLOW_MS)
    classes = Counter([await box.get_attribute("data-class") for box in await boxes.all()])
    assert classes == {"person": 4, "bus": 1}
    bus = page.locator('[data-testid="box"][data-class="bus"]')
    assert float(await bus.get_attribute("data-confidence")) == pytest.approx(0.83, abs=0.05)
    await expect(page.get_by_test_id("shown-count")).to_contain_text("Showing 5 of 5 objects")
    ARTIFACTS.mkdir(exist_ok=True)
    await page.screenshot(path=ARTIFACTS / "console-detect.png")

    await page.get_by_label("person (4)").uncheck()
    await expect(boxes).to_have_count(1)
    await expect(bus).to_be_visible()
    await page.get_by_label("person (4)").check()
    await page.get_by_test_id("confidence").fill("1")
    await expect(boxes).to_have_count(0)
    await expect(page.get_by_test_id("shown-count")).to_contain_text("Showing 0 of 5 objects")
    await page.get_by_test_id("confidence").fill("0")
    await expect(boxes).to_have_count(5)

    # Several images: a batch job followed live over the WebSocket to 100 %.
    sockets: list[tuple[str, list[str], list[str]]] = []

    def watch(socket: WebSocket) -> None:
        sent: list[str] = []
        received: list[str] = []
        socket.on("framesent", lambda payload: sent.append(str(payload)))
        socket.on("framereceived", lambda payload: received.append(str(payload)))
        sockets.append((socket.url, sent, received))

    page.on("websocket", watch)
    # Every text the job's status line shows on the way, however briefly.
    await page.evaluate(
        """() => {
          const status = document.querySelector('[data-testid="job-status"]');
          window.jobStatusTexts = [];
          new MutationObserver(() => window.jobStatusTexts.push(status.textContent)).observe(
            status, { childList: true, characterData: true, subtree: true });
        }"""
    )
    await page.get_by_test_id("file-input").set_input_files(BATCH)
    progress = page.get_by_test_id("job-progress")
    await expect(progress).to_have_attribute("data-percent", "100", timeout=SLOW_MS)
    await expect(progress).to_have_attribute("data-status", "completed")
    await expect(page.get_by_test_id("job-status")).to_contain_text("3 of 3 images (100 %)")
    await expect(page.get_by_test_id("job-status")).not_to_contain_text("left")
    items = page.get_by_test_id("job-item")
    await expect(items).to_have_count(3)
    for item in await items.all():
        assert await item.get_attribute("data-status") == "completed"
    [(url, sent, received)] = sockets
    assert re.search(r"/api/v1/ws/jobs/[0-9a-f-]{36}$", url), url
    # Progress past the first image carries the server's estimate, which the status line says.
    estimated = [
        message
        for message in map(json.loads, received)
        if message.get("type") == "job.progress" and message.get("estimated_completion_at")
    ]
    assert estimated, received
    shown = await page.evaluate("window.jobStatusTexts")
    assert any(
        re.fullmatch(r"Processing: [1-3] of 3 images \(\d+ %\), about \d+ s left", text)
        for text in shown
    ), shown
    token = json.loads(sent[0])["token"]
    assert token and token not in url
    # Progress arrived live over the socket. The page may also finish from its safety poll
    # before the final event is relayed, and then closes the socket, so the last frame is
    # either kind (tests/test_notifications_e2e.py checks the event stream ends in completed).
    kinds = {json.loads(frame)["type"] for frame in received}
    assert kinds and kinds <= {"job.progress", "job.completed"}, received

    # History: all four, newest first, each with its annotated thumbnail.
    await page.get_by_role("link", name="History").click()
    cards = page.get_by_test_id("history-item")
    await expect(cards).to_have_count(4, timeout=SLOW_MS)
    names = {await card.get_attribute("data-filename") for card in await cards.all()}
    assert names == {"bus.jpg", *(path.name for path in BATCH)}
    await expect(page.get_by_test_id("history-range")).to_have_text("1\N{EN DASH}4 of 4")
    thumbnails = page.locator('[data-testid="history-thumbnail"][data-loaded="true"]')
    await expect(thumbnails).to_have_count(4, timeout=SLOW_MS)
    for thumbnail in await thumbnails.all():
        assert (await thumbnail.get_attribute("src")).startswith("blob:")
        assert await thumbnail.evaluate("image => image.naturalWidth") > 0

    # A stored detection opens in the viewer again.
    await page.get_by_role("button", name="Open bus.jpg").click()
    await expect(page.get_by_role("heading", name="Detect objects")).to_be_visible()
    await expect(boxes).to_have_count(5, timeout=SLOW_MS)


async def test_batch_progress_falls_back_to_polling_without_the_websocket(page: Page) -> None:
    async def refuse(socket: WebSocketRoute) -> None:
        await socket.close(code=1011, reason="relay down")

    await page.route_web_socket(re.compile(r".*/api/v1/ws/jobs/.*"), refuse)
    await sign_up_and_log_in(page)
    await page.get_by_test_id("file-input").set_input_files(BATCH[:2])
    progress = page.get_by_test_id("job-progress")
    await expect(progress).to_have_attribute("data-percent", "100", timeout=SLOW_MS)
    await expect(page.get_by_test_id("job-status")).to_contain_text("2 of 2 images (100 %)")
    await expect(page.get_by_test_id("job-item")).to_have_count(2)


async def test_errors_are_shown_in_plain_words(page: Page) -> None:
    await page.goto("/")
    login = page.get_by_test_id("login-form")
    await login.get_by_label("Email").fill(f"nobody-{uuid.uuid4().hex}@example.com")
    await login.get_by_label("Password").fill("not the password")
    await login.get_by_role("button", name="Log in").click()
    alert = page.get_by_role("alert")
    await expect(alert).to_contain_text("Incorrect email or password.")
    await expect(alert).to_contain_text("Reference: ")
    assert "{" not in await alert.inner_text()

    signup = page.get_by_test_id("signup-form")
    await signup.get_by_label("Name").fill("Short Password")
    await signup.get_by_label("Email").fill(f"short-{uuid.uuid4().hex}@example.com")
    # Past the form's own check (minlength), to see how the API's refusal reads.
    await signup.get_by_label("Password").evaluate("input => input.removeAttribute('minlength')")
    await signup.get_by_label("Password").fill("short")
    await signup.get_by_role("button", name="Create account").click()
    await expect(alert).to_contain_text("Password: String should have at least 8 characters.")

    await sign_up_and_log_in(page)
    await page.get_by_test_id("file-input").set_input_files(
        files=[{"name": "notes.jpg", "mimeType": "image/jpeg", "buffer": b"not an image at all"}]
    )
    await expect(alert).to_contain_text("isn't an image the service can read", timeout=SLOW_MS)


async def test_api_keys_and_webhooks(page: Page) -> None:
    await sign_up_and_log_in(page)
    page.on("dialog", lambda dialog: dialog.accept())

    await page.get_by_role("link", name="API keys").click()
    view = visible_view(page)
    await view.get_by_label("Key name").fill("nightly import")
    await view.get_by_role("button", name="Create key").click()
    secret = view.get_by_test_id("secret-value")
    await expect(secret).to_have_text(re.compile(r"^ov_\S{20,}$"))
    await expect(view.get_by_test_id("copy-secret")).to_be_visible()
    row = view.locator('[data-testid="key-row"][data-name="nightly import"]')
    await expect(row).to_have_attribute("data-revoked", "false")
    await expect(row).to_have_attribute("data-scopes", "detect results:read results:write webhooks")
    await view.get_by_role("button", name="I've saved it").click()
    await expect(secret).to_have_count(0)
    await view.get_by_role("button", name="Revoke nightly import").click()
    await expect(row).to_have_attribute("data-revoked", "true")

    # A narrower key that expires and may share (ADR 0048): every scope but results:share is
    # ticked until changed.
    await view.get_by_label("Key name").fill("edge camera")
    for scope in ("results:write", "webhooks"):
        await view.locator(f'input[name="scopes"][value="{scope}"]').uncheck()
    await view.get_by_label("results:share").check()
    await view.get_by_label("Expires").select_option("30")
    await view.get_by_role("button", name="Create key").click()
    edge = view.locator('[data-testid="key-row"][data-name="edge camera"]')
    await expect(edge).to_have_attribute("data-scopes", "detect results:read results:share")
    await expect(edge.locator('td[data-label="Scopes"]')).to_have_text(
        "detect, results:read, results:share"
    )
    await expect(edge.locator('td[data-label="Expires"]')).not_to_have_text("Never")
    await expect(view.locator('input[name="scopes"]:checked')).to_have_count(4)
    await expect(view.get_by_label("results:share")).not_to_be_checked()

    await page.get_by_role("link", name="Webhooks").click()
    view = visible_view(page)
    hook_url = f"http://127.0.0.1:9/hooks/{uuid.uuid4().hex[:8]}"
    await view.get_by_label("Webhook URL").fill(hook_url)
    await view.get_by_label("job.completed").check()
    await view.get_by_role("button", name="Add webhook").click()
    await expect(view.get_by_test_id("secret-value")).not_to_be_empty()
    hook = view.locator(f'[data-testid="webhook-row"][data-url="{hook_url}"]')
    await expect(hook).to_contain_text("job.completed")
    await expect(hook.locator('td[data-label="Made with"]')).to_have_text("This console")
    first_secret = await view.get_by_test_id("secret-value").text_content()
    await view.get_by_role("button", name=f"New signing secret for webhook {hook_url}").click()
    await expect(view.get_by_test_id("secret-value")).not_to_have_text(first_secret or "")
    await expect(view.get_by_test_id("secret-value")).to_have_text(re.compile(r"^whsec_\S{20,}$"))
    await expect(view).to_contain_text("accept it if either is yours")
    await view.get_by_role("button", name=f"Delete webhook {hook_url}").click()
    await expect(hook).to_have_count(0)


async def test_a_webhooks_deliveries_are_shown_and_one_is_redelivered(
    page: Page, stack: Stack, hook_receiver
) -> None:
    """A finished job's webhook shows under its webhook, delivered with HTTP 200; Redeliver
    sends the same event again and the new delivery shows first, linked to the original."""
    email, auth = await _api_account(stack)
    async with httpx.AsyncClient(base_url=stack.gateway_url, timeout=60) as client:
        created = await client.post(
            "/api/v1/webhooks",
            json={"url": hook_receiver.url, "events": ["job.completed"]},
            headers=auth,
        )
        assert created.status_code == 201, created.text
        await _finished_job(stack, auth, [BUS])
        deliveries = f"/api/v1/webhooks/{created.json()['id']}/deliveries"
        for _ in range(120):
            answer = await client.get(deliveries, params={"state": "delivered"}, headers=auth)
            if answer.json()["items"]:
                break
            await asyncio.sleep(0.5)
    [first] = answer.json()["items"]

    await page.goto("/")
    await log_in(page, email)
    await page.get_by_role("link", name="Webhooks").click()
    view = visible_view(page)
    await view.get_by_role("button", name=f"Deliveries of webhook {hook_receiver.url}").click()
    rows = view.get_by_test_id("delivery-row")
    await expect(rows).to_have_count(1)
    await expect(rows.first).to_have_attribute("data-state", "delivered")
    await expect(rows.first).to_contain_text("HTTP 200")
    await rows.first.get_by_role(
        "button", name=f"Redeliver job.completed delivery {first['id']}"
    ).click()

    await expect(page.get_by_test_id("status")).to_contain_text("queued for redelivery")
    await expect(rows).to_have_count(2)
    await expect(rows.first).to_have_attribute("data-redelivery-of", first["id"])
    await expect(rows.nth(1)).to_have_attribute("data-id", first["id"])
    await expect(view.get_by_test_id("webhook-deliveries")).not_to_contain_text("null")
    for _ in range(120):
        if len(hook_receiver.received()) == 2:
            break
        await asyncio.sleep(0.5)
    original, again = hook_receiver.received()
    assert again.body == original.body
    assert json.loads(again.body)["id"] == first["event_id"]


async def test_a_webhook_is_disabled_sent_a_test_event_and_enabled_again(
    page: Page, stack: Stack, hook_receiver
) -> None:
    """Disable marks the webhook's row disabled by its owner (and the API agrees); Send test
    event reaches the receiver all the same, and its webhook.ping delivery shows below the
    webhook, delivered with HTTP 200, with no Redeliver while the webhook is disabled; Enable
    turns it back on, and Redeliver is offered again."""
    url = hook_receiver.url
    email, auth = await _api_account(stack)
    async with httpx.AsyncClient(base_url=stack.gateway_url, timeout=60) as client:
        created = await client.post(
            "/api/v1/webhooks", json={"url": url, "events": ["job.completed"]}, headers=auth
        )
        assert created.status_code == 201, created.text

        await page.goto("/")
        await log_in(page, email)
        await page.get_by_role("link", name="Webhooks").click()
        view = visible_view(page)
        hook = view.locator(f'[data-testid="webhook-row"][data-url="{url}"]')
        await expect(hook).to_have_attribute("data-enabled", "true")
        await expect(hook.get_by_test_id("webhook-state")).to_have_text("Enabled")

        await hook.get_by_role("button", name=f"Disable webhook {url}").click()
        await expect(hook).to_have_attribute("data-enabled", "false")
        await expect(hook).to_have_attribute("data-disabled-reason", "owner")
        await expect(hook.get_by_test_id("webhook-state")).to_contain_text("Disabled by you")
        await expect(page.get_by_test_id("status")).to_contain_text("Webhook disabled")
        await expect(hook.get_by_role("button", name=f"Enable webhook {url}")).to_be_focused()
        [listed] = (await client.get("/api/v1/webhooks", headers=auth)).json()["items"]
        assert (listed["enabled"], listed["disabled_reason"]) == (False, "owner")

        await hook.get_by_role("button", name=f"Send test event to webhook {url}").click()
        deliveries = view.get_by_test_id("webhook-deliveries")
        rows = deliveries.get_by_test_id("delivery-row")
        await expect(rows).to_have_count(1)
        await expect(rows.first).to_contain_text("webhook.ping")
        await expect(rows.first).to_have_attribute("data-state", "delivered", timeout=SLOW_MS)
        await expect(rows.first).to_contain_text("HTTP 200")
        await expect(page.get_by_test_id("status")).to_contain_text(
            f"The test event reached {url}: HTTP 200"
        )
        await expect(deliveries.get_by_test_id("deliveries-hint")).to_contain_text("enable it")
        await expect(rows.first.get_by_role("button")).to_have_count(0)
        [ping] = hook_receiver.received()
        assert ping.headers["x-objectvision-event"] == "webhook.ping"
        assert ping.headers["x-objectvision-delivery"] == await rows.first.get_attribute("data-id")
        assert ping.json["data"]["webhook_id"] == created.json()["id"]

        await hook.get_by_role("button", name=f"Enable webhook {url}").click()
        await expect(hook).to_have_attribute("data-enabled", "true")
        await expect(hook.get_by_test_id("webhook-state")).to_have_text("Enabled")
        await expect(page.get_by_test_id("status")).to_contain_text("Webhook enabled")
        await expect(
            hook.get_by_role("button", name=f"Deliveries of webhook {url}")
        ).to_have_attribute("aria-expanded", "true")
        await expect(deliveries.get_by_test_id("deliveries-hint")).to_have_count(0)
        await expect(
            rows.first.get_by_role("button", name=re.compile("^Redeliver"))
        ).to_be_visible()
        [listed] = (await client.get("/api/v1/webhooks", headers=auth)).json()["items"]
        assert (listed["enabled"], listed["disabled_at"]) == (True, None)


async def test_a_webhooks_url_and_events_are_edited_in_its_row(page: Page, stack: Stack) -> None:
    """The Add form offers job.cancelled. Edit opens a form in the webhook's row with its URL
    and events; none ticked is refused in the page; Save sends only what changed and puts the
    answer in the row (the API agrees). A URL another webhook has is refused in the form,
    which stays open until Cancel puts the row back; Save with nothing changed sends nothing."""
    email, auth = await _api_account(stack)
    base = f"http://127.0.0.1:9/hooks/{uuid.uuid4().hex[:8]}"
    first, moved, taken = f"{base}/first", f"{base}/moved", f"{base}/taken"
    patches: list[object] = []  # the body of each PATCH the page sends

    def on_request(request: Request) -> None:
        if request.method == "PATCH":
            patches.append(request.post_data_json)

    page.on("request", on_request)
    async with httpx.AsyncClient(base_url=stack.gateway_url, timeout=60) as client:

        async def listed() -> dict[str, dict]:
            answer = await client.get("/api/v1/webhooks", headers=auth)
            assert answer.status_code == 200, answer.text
            return {hook["url"]: hook for hook in answer.json()["items"]}

        other = await client.post(
            "/api/v1/webhooks", json={"url": taken, "events": []}, headers=auth
        )
        assert other.status_code == 201, other.text

        await page.goto("/")
        await log_in(page, email)
        await page.get_by_role("link", name="Webhooks").click()
        view = visible_view(page)
        add = view.locator("#webhook-form")
        await add.get_by_label("Webhook URL").fill(first)
        await add.get_by_label("job.failed").check()
        await add.get_by_label("job.cancelled").check()
        await add.get_by_role("button", name="Add webhook").click()
        added = view.locator(f'[data-testid="webhook-row"][data-url="{first}"]')
        await expect(added.get_by_test_id("webhook-events")).to_have_text(
            "job.failed, job.cancelled"
        )
        made = (await listed())[first]
        assert sorted(made["events"]) == ["job.cancelled", "job.failed"]
        hook = view.locator(f'[data-testid="webhook-row"][data-id="{made["id"]}"]')

        await hook.get_by_role("button", name=f"Edit webhook {first}").click()
        form = hook.get_by_test_id("webhook-edit-form")
        url_field = form.get_by_label("URL", exact=True)
        await expect(url_field).to_have_value(first)
        await expect(url_field).to_be_focused()
        for event, ticked in [
            ("job.progress", False),
            ("job.completed", False),
            ("job.failed", True),
            ("job.cancelled", True),
        ]:
            box = form.get_by_label(event)
            await (expect(box).to_be_checked() if ticked else expect(box).not_to_be_checked())
        await form.get_by_label("job.failed").uncheck()
        await form.get_by_label("job.cancelled").uncheck()
        await form.get_by_role("button", name="Save").click()
        error = form.get_by_test_id("webhook-edit-error")
        await expect(error).to_contain_text("Tick at least one event")
        assert patches == []

        await url_field.fill(moved)
        await form.get_by_label("job.completed").check()
        await form.get_by_label("job.cancelled").check()
        await form.get_by_role("button", name="Save").click()
        await expect(form).to_have_count(0)
        await expect(hook).to_have_attribute("data-url", moved)
        await expect(hook.locator("td").first).to_have_text(moved)
        await expect(hook.get_by_test_id("webhook-events")).to_have_text(
            "job.completed, job.cancelled"
        )
        await expect(hook.get_by_role("button", name=f"Edit webhook {moved}")).to_be_focused()
        await expect(page.get_by_test_id("status")).to_contain_text(f"Webhook saved: {moved}")
        now = await listed()
        assert set(now) == {moved, taken}
        assert now[moved]["id"] == made["id"]
        assert sorted(now[moved]["events"]) == ["job.cancelled", "job.completed"]
        assert patches == [{"url": moved, "events": ["job.completed", "job.cancelled"]}]

        await hook.get_by_role("button", name=f"Edit webhook {moved}").click()
        await expect(url_field).to_have_value(moved)
        await expect(form.get_by_label("job.completed")).to_be_checked()
        await url_field.fill(taken)
        await form.get_by_role("button", name="Save").click()
        await expect(error).to_have_text("Another of your webhooks has this URL.")
        await expect(form).to_be_visible()
        await expect(url_field).to_have_value(taken)
        await expect(page.get_by_test_id("error")).to_be_hidden()
        assert patches[1:] == [{"url": taken}]
        await form.get_by_role("button", name="Cancel").click()
        await expect(form).to_have_count(0)
        await expect(hook).to_have_attribute("data-url", moved)
        await expect(hook.locator("td").first).to_have_text(moved)
        await expect(hook.get_by_role("button", name=f"Edit webhook {moved}")).to_be_focused()
        assert (await listed())[moved]["events"] == now[moved]["events"]

        await hook.get_by_role("button", name=f"Edit webhook {moved}").click()
        await form.get_by_role("button", name="Save").click()
        await expect(form).to_have_count(0)
        await expect(hook.get_by_role("button", name=f"Edit webhook {moved}")).to_be_focused()
        assert len(patches) == 2


async def test_session_survives_a_reload_refreshes_once_and_logs_out(page: Page) -> None:
    email = await sign_up_and_log_in(page)
    await page.reload()
    await expect(page.get_by_test_id("account-email")).to_have_text(email)

    # A dead access token: the next call gets 401, refreshes once and goes through.
    stored = "objectvision.session"
    await page.evaluate(
        """key => {
            const session = JSON.parse(sessionStorage.getItem(key));
            session.accessToken = "expired";
            sessionStorage.setItem(key, JSON.stringify(session));
        }""",
        stored,
    )
    await page.reload()
    await page.get_by_role("link", name="History").click()
    await expect(page.get_by_test_id("history-range")).to_have_text("0\N{EN DASH}0 of 0")
    token = await page.evaluate(
        "key => JSON.parse(sessionStorage.getItem(key)).accessToken", stored
    )
    assert token != "expired"
    await expect(page.get_by_role("alert")).to_be_hidden()

    await page.get_by_role("link", name="Detect").click()
    await page.get_by_test_id("file-input").set_input_files(BUS)
    await expect(page.get_by_test_id("box")).to_have_count(5, timeout=SLOW_MS)

    await page.get_by_role("button", name="Log out", exact=True).click()
    await expect(page.get_by_test_id("login-form")).to_be_visible()
    await expect(page.get_by_test_id("status")).to_have_text("You have logged out.")
    assert await page.evaluate("key => sessionStorage.getItem(key)", stored) is None
    # Nothing of the account stays in the page for whoever signs in next.
    await expect(page.locator("[data-testid=box], [data-testid=history-item]")).to_have_count(0)
    assert await page.get_by_test_id("stage").locator("img").get_attribute("src") is None


async def test_phone_width_and_keyboard(page: Page) -> None:
    await page.set_viewport_size(PHONE)
    await sign_up_and_log_in(page)
    await page.get_by_test_id("file-input").set_input_files(BUS)
    await expect(page.get_by_test_id("box")).to_have_count(5, timeout=SLOW_MS)
    width = await page.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"], f"the page scrolls sideways at phone width ({width} px)"

    # Every control is reachable with Tab from the top of the page, and focus is visible.
    await page.reload()
    await expect(page.get_by_test_id("account-email")).to_be_attached()
    reached = None
    for _ in range(20):
        await page.keyboard.press("Tab")
        reached = await page.evaluate("document.activeElement.id")
        if reached == "choose-files":
            break
    assert reached == "choose-files"
    outline = await page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
    assert outline != "none"


# Issue 17: links that open the right page, the threshold, settings, downloads, small fixes.

SESSION_KEY = "objectvision.session"


async def _api_account(stack: Stack) -> tuple[str, dict[str, str]]:
    """A user made through the API (its own client address), and its Authorization header."""
    async with httpx.AsyncClient(base_url=stack.gateway_url, timeout=60) as client:
        account = await signed_in(client, prefix="api", name="Linked", network=fresh_network())
    return account.email, account.headers


async def _finished_job(
    stack: Stack, auth: dict[str, str], images: list[Path], metadata: dict[str, str] | None = None
) -> dict:
    files = [("files", (path.name, path.read_bytes(), "image/jpeg")) for path in images]
    fields = {"metadata": json.dumps(metadata)} if metadata else None
    async with httpx.AsyncClient(base_url=stack.gateway_url, timeout=60) as client:
        submitted = await client.post(
            "/api/v1/detect/batch", files=files, data=fields, headers=auth
        )
        assert submitted.status_code == 202, submitted.text
        job_id = submitted.json()["job_id"]
        for _ in range(240):
            job = (await client.get(f"/api/v1/detect/jobs/{job_id}", headers=auth)).json()
            if job["status"] in ("completed", "failed"):
                return job
            await asyncio.sleep(0.5)
    raise AssertionError(f"job {job_id} did not finish: {job}")


async def test_sign_up_lands_logged_in(page: Page, stack: Stack) -> None:
    await close_the_network(page, stack)
    email = await sign_up_and_log_in(page)
    await expect(page.get_by_role("heading", name="Detect objects")).to_be_visible()
    await expect(page.get_by_test_id("status")).to_contain_text("your account is ready")
    assert await page.evaluate("key => sessionStorage.getItem(key)", SESSION_KEY) is not None
    await expect(page.get_by_test_id("account-email")).to_have_text(email)


async def test_the_slider_starts_at_the_requests_threshold_and_detects_again_lower(
    page: Page, stack: Stack
) -> None:
    elsewhere = await close_the_network(page, stack)
    await sign_up_and_log_in(page)
    await page.get_by_test_id("file-input").set_input_files(BUS)
    boxes = page.get_by_test_id("box")
    await expect(boxes).to_have_count(5, timeout=SLOW_MS)
    slider = page.get_by_test_id("confidence")
    # The request asked for 0.25: the slider starts there, not at 0.00.
    await expect(slider).to_have_value("0.25")
    await expect(page.get_by_test_id("threshold-note")).to_have_text(
        "Detected from confidence 0.25."
    )
    await expect(page.get_by_test_id("rerun")).to_be_hidden()

    # Under the request's threshold: offered, and done, a detection at the lower one.
    await slider.fill("0.05")
    rerun = page.get_by_test_id("rerun")
    await expect(rerun).to_have_text("Detect again from 0.05")
    await rerun.click()
    await expect(page.get_by_test_id("threshold-note")).to_have_text(
        "Detected from confidence 0.05.", timeout=SLOW_MS
    )
    await expect(slider).to_have_value("0.05")
    confidences = [float(await b.get_attribute("data-confidence")) for b in await boxes.all()]
    assert len(confidences) > 5 and min(confidences) < 0.25, confidences
    assert all(value >= 0.05 for value in confidences)
    assert elsewhere == []


async def test_per_class_minimum_scores_are_sent_kept_by_the_slider_and_checked(
    page: Page,
) -> None:
    """ADR 0050: the scores typed beside the Metadata go as `class_confidence`; bus.jpg's
    people (all under 0.99) are dropped by the server and the bus stays, and the slider, which
    stands for `confidence`, does not hide the bus its own lower minimum kept. A value not in
    `class:score` pairs is named before anything is sent; an unknown class is the API's 422.

    Chromium does not expose a request body that holds a file, so the form's fields are read
    where the page hands them to fetch."""
    await page.add_init_script(
        """(() => {
            const fetched = window.fetch;
            window.imageForms = [];
            window.fetch = function (resource, options) {
                const body = options?.body;
                if (String(resource).includes("detect/image") && body instanceof FormData) {
                    window.imageForms.push([...body.entries()].map(([name, value]) =>
                        [name, typeof value === "string" ? value : `file:${value.name}`]));
                }
                return fetched.apply(this, arguments);
            };
        })();"""
    )
    await sign_up_and_log_in(page)
    scores = page.get_by_test_id("class-confidence")
    await scores.fill("person:0.99, bus:0.5")
    await page.get_by_test_id("file-input").set_input_files(BUS)
    boxes = page.get_by_test_id("box")
    await expect(page.get_by_test_id("shown-count")).to_have_attribute(
        "data-shown", "1", timeout=SLOW_MS
    )
    await expect(boxes).to_have_count(1)
    await expect(boxes).to_have_attribute("data-class", "bus")
    (fields,) = await page.evaluate("window.imageForms")
    assert ["class_confidence", "person:0.99,bus:0.5"] in fields
    await expect(page.get_by_test_id("threshold-note")).to_have_text(
        "Detected from confidence 0.25; person from 0.99, bus from 0.5, their own minimums."
    )
    # Above the bus's score: the bus stays, kept from its own 0.5.
    await page.get_by_test_id("confidence").fill("0.95")
    await expect(boxes).to_have_count(1)
    await expect(page.get_by_test_id("rerun")).to_be_hidden()

    alert = page.get_by_test_id("error")
    await scores.fill("person=0.5")
    await page.get_by_test_id("file-input").set_input_files(BUS)
    await expect(alert).to_contain_text(
        "Per-class minimum scores: \N{LEFT DOUBLE QUOTATION MARK}person=0.5"
        "\N{RIGHT DOUBLE QUOTATION MARK} is not class:score"
    )
    await expect(scores).to_have_attribute("aria-invalid", "true")
    assert len(await page.evaluate("window.imageForms")) == 1

    await scores.fill("unicorn:0.5")
    await expect(scores).not_to_have_attribute("aria-invalid", "true")
    await page.get_by_test_id("file-input").set_input_files(BUS)
    await expect(alert).to_contain_text("Unknown class 'unicorn'", timeout=SLOW_MS)
    assert len(await page.evaluate("window.imageForms")) == 2


async def test_small_objects_tiles_are_sent_as_tile_size_and_the_result_shows_objects(
    page: Page,
) -> None:
    """ADR 0051: "Small objects (tiles)" beside the per-class minimum scores goes as
    `tile_size` (Off sends nothing); bus.jpg detected whole and in 640 px tiles still shows its
    bus and its people, merged into one set of boxes.

    Chromium does not expose a request body that holds a file, so the form's fields are read
    where the page hands them to fetch."""
    await page.add_init_script(
        """(() => {
            const fetched = window.fetch;
            window.imageForms = [];
            window.fetch = function (resource, options) {
                const body = options?.body;
                if (String(resource).includes("detect/image") && body instanceof FormData) {
                    window.imageForms.push([...body.entries()].map(([name, value]) =>
                        [name, typeof value === "string" ? value : `file:${value.name}`]));
                }
                return fetched.apply(this, arguments);
            };
        })();"""
    )
    await sign_up_and_log_in(page)
    tiles = page.get_by_label("Small objects (tiles)")
    await expect(tiles).to_have_value("")
    await tiles.select_option("640")
    await page.get_by_test_id("file-input").set_input_files(BUS)
    boxes = page.get_by_test_id("box")
    await expect(page.locator('[data-testid="box"][data-class="bus"]')).not_to_have_count(
        0, timeout=SLOW_MS
    )
    await expect(page.locator('[data-testid="box"][data-class="person"]')).not_to_have_count(0)
    assert await boxes.count() >= 5
    (fields,) = await page.evaluate("window.imageForms")
    assert ["tile_size", "640"] in fields
    assert not any(name == "tile_overlap" for name, _ in fields)


async def test_regions_of_interest_are_sent_as_fractions_keep_what_stands_in_them_and_are_checked(
    page: Page,
) -> None:
    """ADR 0053: "Regions of interest" beside the tiles, typed in percent of the image, goes as
    `regions`, the API's JSON of fractions (blank sends nothing); bus.jpg's left half keeps only
    what stands in it (the person on the right goes; the bus's bottom centre is just right of
    the middle), and the region is outlined on the image. Corners outside 0 to 100 are named
    before anything is sent.

    Chromium does not expose a request body that holds a file, so the form's fields are read
    where the page hands them to fetch."""
    await page.add_init_script(
        """(() => {
            const fetched = window.fetch;
            window.imageForms = [];
            window.fetch = function (resource, options) {
                const body = options?.body;
                if (String(resource).includes("detect/image") && body instanceof FormData) {
                    window.imageForms.push([...body.entries()].map(([name, value]) =>
                        [name, typeof value === "string" ? value : `file:${value.name}`]));
                }
                return fetched.apply(this, arguments);
            };
        })();"""
    )
    await sign_up_and_log_in(page)
    boxes = page.get_by_test_id("box")
    await page.get_by_test_id("file-input").set_input_files(BUS)
    await expect(boxes).to_have_count(5, timeout=SLOW_MS)
    await expect(page.get_by_test_id("stage-regions")).to_be_hidden()

    regions = page.get_by_label("Regions of interest")
    await regions.fill("0,0, 50,0, 50,100, 0,100")
    await page.get_by_test_id("file-input").set_input_files(BUS)
    # Outlined once the result detected in the region is shown.
    outline = page.get_by_test_id("region")
    await expect(outline).to_have_count(1, timeout=SLOW_MS)
    await expect(outline).to_have_attribute("points", "0,0 50,0 50,100 0,100")
    await expect(page.get_by_test_id("stage-regions")).to_be_visible()
    without, within = await page.evaluate("window.imageForms")
    assert not any(name == "regions" for name, _ in without)
    (sent,) = [value for name, value in within if name == "regions"]
    assert json.loads(sent) == [[[0, 0], [0.5, 0], [0.5, 1], [0, 1]]]
    shown = await boxes.count()
    assert 0 < shown < 5
    # Every box kept stands in the left half: its bottom centre at most halfway across.
    centres = await boxes.evaluate_all(
        "boxes => boxes.map((box) => parseFloat(box.style.left) + parseFloat(box.style.width) / 2)"
    )
    assert all(centre <= 50 for centre in centres), centres

    alert = page.get_by_test_id("error")
    await regions.fill("0,0, 150,0, 50,100")
    await page.get_by_test_id("file-input").set_input_files(BUS)
    await expect(alert).to_contain_text(
        "Regions of interest: \N{LEFT DOUBLE QUOTATION MARK}0,0, 150,0, 50,100"
        "\N{RIGHT DOUBLE QUOTATION MARK}: 150 is outside the image"
    )
    await expect(regions).to_have_attribute("aria-invalid", "true")
    assert len(await page.evaluate("window.imageForms")) == 2
    await regions.fill("0,0, 100,0, 50,100")
    await expect(regions).not_to_have_attribute("aria-invalid", "true")


async def test_boxes_use_the_servers_colours_and_labels_stay_apart_inside_the_image(
    page: Page, stack: Stack
) -> None:
    await close_the_network(page, stack)
    await sign_up_and_log_in(page)
    await page.get_by_test_id("file-input").set_input_files(BUS)
    await expect(page.get_by_test_id("box")).to_have_count(5, timeout=SLOW_MS)
    person = page.locator('[data-testid="box"][data-class="person"]').first
    # Class 0 in detection_service.pipeline.annotate.PALETTE is BGR (56, 56, 255).
    assert await person.evaluate("box => getComputedStyle(box).borderTopColor") == (
        "rgb(255, 56, 56)"
    )
    layout = await page.evaluate(
        """() => {
            const stage = document.getElementById("stage").getBoundingClientRect();
            const labels = [...document.querySelectorAll("#boxes .box-label")]
              .map((label) => label.getBoundingClientRect());
            const inside = labels.every((r) =>
              r.left >= stage.left - 0.5 && r.right <= stage.right + 0.5 &&
              r.top >= stage.top - 0.5 && r.bottom <= stage.bottom + 0.5);
            const hit = (a, b) =>
              a.left < b.right && b.left < a.right && a.top < b.bottom && b.top < a.bottom;
            let overlapping = 0;
            labels.forEach((a, i) => labels.slice(i + 1).forEach((b) => {
              if (hit(a, b)) overlapping++;
            }));
            return { count: labels.length, inside, overlapping };
        }"""
    )
    assert layout == {"count": 5, "inside": True, "overlapping": 0}


async def test_the_annotated_image_and_the_json_download(page: Page, stack: Stack) -> None:
    await close_the_network(page, stack)
    await sign_up_and_log_in(page)
    await page.get_by_test_id("file-input").set_input_files(BUS)
    await expect(page.get_by_test_id("box")).to_have_count(5, timeout=SLOW_MS)

    async with page.expect_download() as json_download:
        await page.get_by_test_id("download-json").click()
    downloaded = await json_download.value
    assert downloaded.suggested_filename == "bus.detections.json"
    body = json.loads(await asyncio.to_thread(Path(await downloaded.path()).read_text))
    assert Counter(item["class"] for item in body["detections"]) == {"person": 4, "bus": 1}

    async with page.expect_download() as image_download:
        await page.get_by_test_id("download-image").click()
    image = await image_download.value
    assert image.suggested_filename == "bus.annotated.jpg"
    jpeg = await asyncio.to_thread(Path(await image.path()).read_bytes)
    assert jpeg[:3] == b"\xff\xd8\xff"


async def test_a_job_link_from_an_email_opens_that_job_after_sign_in(
    page: Page, stack: Stack
) -> None:
    """The job-report email links to /#/jobs/<id> (older ones to /jobs/<id>, redirected)."""
    email, auth = await _api_account(stack)
    order = {"order": "A-1042", "note": "<b>rush</b>"}
    job = await _finished_job(stack, auth, BATCH[:2], metadata=order)
    elsewhere = await close_the_network(page, stack)

    await page.goto(f"/#/jobs/{job['job_id']}")
    await expect(page.get_by_test_id("login-form")).to_be_visible()
    await log_in(page, email)
    await expect(page.get_by_test_id("job-id")).to_have_text(job["job_id"], timeout=SLOW_MS)
    await expect(page.get_by_test_id("job-status")).to_contain_text("2 of 2 images (100 %)")
    await expect(page.get_by_test_id("job-item")).to_have_count(2)
    thumbnails = page.locator('[data-testid="job-thumbnail"][data-loaded="true"]')
    await expect(thumbnails).to_have_count(2, timeout=SLOW_MS)
    assert page.url.endswith(f"/#/jobs/{job['job_id']}")
    # The job's own pairs, shown as the text they are: markup in a value stays text.
    shown = page.get_by_test_id("job-metadata")
    await expect(shown.locator("dt")).to_have_text(["note", "order"])
    await expect(shown.locator("dd")).to_have_text(["<b>rush</b>", "A-1042"])
    assert await shown.locator("b").count() == 0

    # The path form an older email carries lands on the same page.
    await page.goto(f"/jobs/{job['job_id']}")
    assert page.url == f"{stack.gateway_url}/#/jobs/{job['job_id']}"
    await expect(page.get_by_test_id("job-id")).to_have_text(job["job_id"], timeout=SLOW_MS)

    # One image of it by its own link: the viewer, with its boxes.
    detection_id = job["items"][0]["detection_id"]
    await page.goto(f"/#/detections/{detection_id}")
    await page.reload()
    await expect(page.get_by_test_id("box").first).to_be_visible(timeout=SLOW_MS)
    await expect(page.locator("#viewer-title")).to_have_text(job["items"][0]["filename"])

    # Its images in the history carry the job's pairs, shown as text too.
    await page.get_by_role("link", name="History").click()
    tags = page.get_by_test_id("history-metadata")
    await expect(tags).to_have_count(2, timeout=SLOW_MS)
    await expect(tags.first).to_have_text("note=<b>rush</b> · order=A-1042")
    assert await tags.locator("b").count() == 0
    assert elsewhere == []


async def test_the_settings_page_shows_the_usage_and_turns_job_emails_off(
    page: Page, stack: Stack
) -> None:
    await close_the_network(page, stack)
    await sign_up_and_log_in(page)
    await page.get_by_role("link", name="Settings").click()
    form = page.get_by_test_id("settings-form")
    await expect(form).to_have_attribute("data-loaded", "true")
    await expect(page.get_by_test_id("usage-summary")).to_contain_text("0 images detected in 20")
    await expect(page.get_by_test_id("usage-summary")).to_contain_text("(no quota)")
    # The test stack keeps everything (RETENTION_DAYS=0), and says so.
    await expect(page.get_by_test_id("retention-summary")).to_have_text(
        "Your images, detections and jobs are kept until you delete them."
    )
    emails = form.get_by_label("Email me when a batch job finishes")
    await expect(emails).to_be_checked()
    await emails.uncheck()
    await form.get_by_role("button", name="Save settings").click()
    await expect(page.get_by_test_id("status")).to_contain_text("Settings saved")

    token = await page.evaluate(
        "key => JSON.parse(sessionStorage.getItem(key)).accessToken", SESSION_KEY
    )
    async with httpx.AsyncClient(base_url=stack.gateway_url) as client:
        stored = await client.get(
            "/api/v1/users/me/settings", headers={"Authorization": f"Bearer {token}"}
        )
    assert stored.json()["notifications_enabled"] is False

    # The emails' link to the settings opens the page with the saved value.
    await page.goto("/settings")
    assert page.url == f"{stack.gateway_url}/#/settings"
    await expect(form).to_have_attribute("data-loaded", "true")
    await expect(emails).not_to_be_checked()


async def test_a_revoked_keys_secret_leaves_the_screen(page: Page, stack: Stack) -> None:
    await close_the_network(page, stack)
    await sign_up_and_log_in(page)
    page.on("dialog", lambda dialog: dialog.accept())
    await page.get_by_role("link", name="API keys").click()
    view = visible_view(page)
    await view.get_by_label("Key name").fill("leaked")
    await view.get_by_role("button", name="Create key").click()
    await expect(view.get_by_test_id("secret-value")).to_have_text(re.compile(r"^ov_"))
    # Revoked straight away, without dismissing the panel first.
    await view.get_by_role("button", name="Revoke leaked").click()
    row = view.locator('[data-testid="key-row"][data-name="leaked"]')
    await expect(row).to_have_attribute("data-revoked", "true")
    await expect(view.get_by_test_id("secret-value")).to_have_count(0)


async def test_the_keys_table_fits_a_phone(page: Page, stack: Stack) -> None:
    await close_the_network(page, stack)
    await page.set_viewport_size(PHONE)
    await sign_up_and_log_in(page)
    await page.get_by_role("link", name="API keys").click()
    view = visible_view(page)
    await view.get_by_label("Key name").fill("nightly import from the warehouse cameras")
    await view.get_by_role("button", name="Create key").click()
    await view.get_by_role("button", name="I've saved it").click()
    await expect(view.get_by_test_id("key-row")).to_have_count(1)
    widths = await page.evaluate(
        """() => {
            const table = document.querySelector('[data-testid="keys-table"]');
            return { page: document.documentElement.scrollWidth, table: table.scrollWidth,
                     box: table.parentElement.clientWidth };
        }"""
    )
    assert widths["page"] <= PHONE["width"], widths
    assert widths["table"] <= widths["box"], f"the keys table scrolls sideways: {widths}"
    # Below the form (its five scopes) on a phone: scrolled down to, not sideways, it shows.
    revoke = view.get_by_role("button", name=re.compile("^Revoke "))
    await revoke.scroll_into_view_if_needed()
    await expect(revoke).to_be_in_viewport()
    assert await page.evaluate("() => window.scrollX") == 0


async def test_a_finished_job_and_the_history_offer_exports(page: Page) -> None:
    await sign_up_and_log_in(page)
    await page.get_by_test_id("file-input").set_input_files(BATCH)
    progress = page.get_by_test_id("job-progress")
    await expect(progress).to_have_attribute("data-status", "completed", timeout=SLOW_MS)
    job_id = await page.get_by_test_id("job-id").text_content()
    job_exports = page.get_by_test_id("job-exports")
    await expect(job_exports).to_be_visible()

    async with page.expect_download() as csv_download:
        await job_exports.get_by_test_id("export-csv").click()
    downloaded = await csv_download.value
    assert downloaded.suggested_filename == f"objectvision-job-{job_id}-csv.csv"
    text = await asyncio.to_thread(Path(await downloaded.path()).read_text)
    rows = text.splitlines()
    assert rows[0].startswith("detection_id,job_id,filename,")
    assert {row.split(",")[2] for row in rows[1:]} == {path.name for path in BATCH}

    await page.get_by_role("link", name="History").click()
    async with page.expect_download() as coco_download:
        await page.get_by_test_id("history-exports").get_by_test_id("export-coco").click()
    coco = await coco_download.value
    assert re.fullmatch(r"objectvision-history-\d{8}T\d{6}Z-coco\.json", coco.suggested_filename)
    body = json.loads(await asyncio.to_thread(Path(await coco.path()).read_text))
    assert sorted(image["file_name"] for image in body["images"]) == sorted(
        path.name for path in BATCH
    )

    # Filtered: the list, its count line and the history's export keep the same detections.
    cards = page.get_by_test_id("history-item")
    await expect(cards).to_have_count(3, timeout=SLOW_MS)
    counted = page.get_by_test_id("history-summary")
    await expect(counted).to_have_text(re.compile(r"^3 detections · \d+ objects: "))
    wanted = BATCH[0].name
    await page.get_by_test_id("history-filename").fill(wanted.removesuffix(".jpg"))
    await page.get_by_test_id("history-filter").click()
    await expect(cards).to_have_count(1, timeout=SLOW_MS)
    await expect(cards).to_have_attribute("data-filename", wanted)
    await expect(counted).to_have_text(re.compile(r"^1 detection · "))
    async with page.expect_download() as filtered_download:
        await page.get_by_test_id("history-exports").get_by_test_id("export-csv").click()
    filtered = await asyncio.to_thread(Path(await (await filtered_download.value).path()).read_text)
    assert {row.split(",")[2] for row in filtered.splitlines()[1:]} == {wanted}
    await page.get_by_test_id("history-metadata-filter").fill("camera:nowhere")
    await page.get_by_test_id("history-filter").click()
    await expect(page.get_by_test_id("history-list")).to_have_text(
        "No detections match these filters."
    )
    await page.get_by_test_id("history-clear").click()
    await expect(cards).to_have_count(3, timeout=SLOW_MS)
    await expect(page.get_by_test_id("history-filename")).to_have_value("")
    # Unsure below: none of the images has an object under 0.01, every one has one under 1.
    unsure = page.get_by_test_id("history-unsure-below")
    async with page.expect_request(lambda sent: "confidence_below=0.01" in sent.url):
        await unsure.fill("0.01")
        await page.get_by_test_id("history-filter").click()
    await expect(page.get_by_test_id("history-list")).to_have_text(
        "No detections match these filters."
    )
    await unsure.fill("1")
    await page.get_by_test_id("history-filter").click()
    await expect(cards).to_have_count(3, timeout=SLOW_MS)
    await page.get_by_test_id("history-clear").click()
    await expect(unsure).to_have_value("")


EVALUATION_SCORES = ("map50_95", "map50", "map75", "precision", "recall")


def _score(value: float | None) -> str:
    """A score as the console shows it (evaluation.js scoreText): three decimals, rounded as
    JavaScript's toFixed does (a tie goes up), or an en dash for null."""
    if value is None:
        return "\N{EN DASH}"
    return str(Decimal(value).quantize(Decimal("0.001"), rounding=ROUND_HALF_UP))


def _confidence(value: float | None) -> str:
    """A confidence threshold as the console shows it (evaluation.js confidenceText): rounded
    down to four decimals, with two to four of them, or an en dash for null; a step up that
    reads back as no more than the value is taken (0.57, not 0.5699)."""
    if value is None:
        return "\N{EN DASH}"
    steps = math.floor(value * 10_000)
    if (steps + 1) / 10_000 <= value:
        steps += 1
    return re.sub(r"0{1,2}$", "", f"{steps / 10_000:.4f}")


def _best_point(curve: list[dict]) -> dict:
    """The point of a threshold curve with the best F1, the higher threshold on a tie (the
    console's starting point, evaluation.js bestPoint)."""
    best = curve[0]
    for point in curve[1:]:
        if point["f1"] >= best["f1"]:
            best = point
    return best


def _readout(confidence: float, point: dict) -> str:
    """What the threshold's readout says with the range at `confidence`, in force at `point`."""
    return (
        f"At confidence \N{GREATER-THAN OR EQUAL TO} {_confidence(confidence)}:"
        f" precision {_score(point['precision'])}, recall {_score(point['recall'])},"
        f" F1 {_score(point['f1'])}"
    )


async def _expect_curve_shown(result: Locator, scored: dict) -> None:
    """The "Threshold" part: a picker of every class's curve and each class's that has points,
    a chart of a step line per series that differ in dash, and a range input from the curve's
    first confidence to its last that starts at its best F1, whose readout says that point's
    scores; no "Use" button for every class; hidden without a curve."""
    part = result.get_by_test_id("evaluation-curve")
    curve = scored["curve"]
    if not curve:
        await expect(part).to_be_hidden()
        return
    await expect(part).to_be_visible()
    await expect(part.get_by_role("heading")).to_have_text("Threshold")
    picker = part.get_by_role("combobox", name="Classes")
    await expect(picker).to_have_attribute("data-testid", "evaluation-curve-class")
    await expect(picker.locator("option")).to_have_text(
        [
            "Every class",
            *(
                row["class_name"] or f"class {row['class_id']}"
                for row in scored["classes"]
                if row["curve"]
            ),
        ]
    )
    await expect(picker.locator("option:checked")).to_have_text("Every class")
    chart = part.get_by_test_id("evaluation-curve-chart")
    await expect(chart).to_have_attribute("role", "img")
    await expect(chart).to_have_attribute(
        "aria-label",
        re.compile(r"^Precision, recall and F1 of every class against the confidence threshold, "),
    )
    lines = await chart.locator("path").evaluate_all(
        "paths => paths.map(p =>"
        " [p.dataset.series, p.getAttribute('d'), p.getAttribute('stroke-dasharray')])"
    )
    assert [series for series, _, _ in lines] == ["precision", "recall", "f1"]
    assert len({dash for _, _, dash in lines}) == 3, lines
    for _, path, _ in lines:
        # A step function: level to each point's successor (the last to its next hundredth),
        # then up or down to its value.
        assert path.startswith("M"), path
        assert path.count("H") == len(curve) and path.count("V") == len(curve) - 1, path
    threshold = part.get_by_role("slider", name="Confidence threshold")
    await expect(threshold).to_have_attribute("data-testid", "evaluation-curve-threshold")
    await expect(threshold).to_have_attribute("step", "0.01")
    assert float(await threshold.get_attribute("min") or "") == curve[0]["confidence"]
    assert float(await threshold.get_attribute("max") or "") == curve[-1]["confidence"]
    best = _best_point(curve)
    assert float(await threshold.input_value()) == best["confidence"]
    readout = part.get_by_test_id("evaluation-curve-readout")
    await expect(readout).to_have_attribute("aria-live", "polite")
    await expect(readout).to_have_text(_readout(best["confidence"], best))
    await expect(part.get_by_test_id("evaluation-curve-use")).to_be_hidden()


async def _expect_evaluation_shown(result: Locator, scored: dict) -> None:
    """The console's evaluation says what the API's JSON for the same file says."""
    scores = result.get_by_test_id("evaluation-scores")
    # The best F1 and its threshold, when there is one (ADR 0054's operating point).
    best = (
        []
        if scored["f1"] is None
        else [
            (
                "Best F1",
                f"{_score(scored['f1'])} at confidence"
                f" \N{GREATER-THAN OR EQUAL TO} {_confidence(scored['f1_confidence'])}",
            )
        ]
    )
    # mAP50-95 by object size, with how many objects of each size were labelled.
    sizes = [
        (
            f"mAP50-95, {row['size']} objects",
            f"{_score(row['map50_95'])} ({row['ground_truth']} labelled"
            f" object{'' if row['ground_truth'] == 1 else 's'})"
            if row["ground_truth"]
            else "none labelled",
        )
        for row in scored["sizes"]
    ]
    assert [row["size"] for row in scored["sizes"]] == ["small", "medium", "large"]
    await expect(scores.locator("dt")).to_have_text(
        [
            "mAP50-95",
            "mAP50",
            "mAP75",
            "Precision",
            "Recall",
            *(label for label, _ in best),
            *(label for label, _ in sizes),
            "Images scored",
        ]
    )
    await expect(scores.locator("dd")).to_have_text(
        [
            *(_score(scored[name]) for name in EVALUATION_SCORES),
            *(text for _, text in best),
            *(text for _, text in sizes),
            str(scored["images"]),
        ]
    )
    await expect(result.get_by_test_id("evaluation-classes").locator("thead th")).to_have_text(
        [
            "Class",
            "Ground truth",
            "Detections",
            "AP50-95",
            "AP50",
            "Precision",
            "Recall",
            "F1",
            "Best confidence",
        ]
    )
    rows = result.get_by_test_id("evaluation-class")
    await expect(rows).to_have_count(len(scored["classes"]))
    for row, scored_class in zip(await rows.all(), scored["classes"], strict=True):
        await expect(row).to_have_attribute("data-class-id", str(scored_class["class_id"]))
        await expect(row.locator("td")).to_have_text(
            [
                scored_class["class_name"],
                str(scored_class["ground_truth"]),
                str(scored_class["detections"]),
                *(
                    _score(scored_class[name])
                    for name in ("ap50_95", "ap50", "precision", "recall", "f1")
                ),
                _confidence(scored_class["f1_confidence"]),
            ]
        )
    await _expect_curve_shown(result, scored)
    await _expect_mistakes_shown(result, scored)
    # The per-class minimums for the best F1, as the API's exact JSON object (its keys in its
    # order), and the button that puts them in the Detect view's field.
    suggested = scored["suggested_class_confidence"]
    suggestion = result.get_by_test_id("evaluation-suggestion")
    if not suggested:
        await expect(suggestion).to_be_hidden()
        return
    await expect(suggestion).to_be_visible()
    await expect(suggestion.locator("p").first).to_have_text(
        "Detect with these per-class minimums for the best F1 on these images:"
    )
    shown = await suggestion.locator("code").text_content()
    assert json.loads(shown or "") == suggested
    assert list(json.loads(shown or "")) == list(suggested)
    await expect(suggestion.get_by_role("button", name="Use for my next detection")).to_be_visible()


async def _expect_mistakes_shown(result: Locator, scored: dict) -> None:
    """The "Mistakes" table: the API's confusions off the diagonal (the class labelled is not
    the class detected), the first 10 in its order, null as a muted "nothing", and how many
    more."""
    wrong = [cell for cell in scored["confusions"] if cell["actual"] != cell["predicted"]]
    mistakes = result.get_by_test_id("evaluation-mistakes")
    rows = mistakes.get_by_test_id("evaluation-mistake")
    if not wrong:
        await expect(mistakes).to_be_hidden()
        await expect(rows).to_have_count(0)
        return
    await expect(mistakes).to_be_visible()
    await expect(mistakes.get_by_role("heading")).to_have_text("Mistakes")
    await expect(mistakes.locator(".hint").first).to_have_text(
        "A labelled object detected as another class, missed (nothing), or a detection where"
        " nothing was labelled."
    )
    await expect(mistakes.locator("thead th")).to_have_text(["Labelled", "Detected as", "Count"])
    listed = wrong[:10]
    await expect(rows).to_have_count(len(listed))
    # A card per row on a phone, each cell named after its column (as the per-class table).
    labels = await rows.first.locator("td").evaluate_all("cells => cells.map(c => c.dataset.label)")
    assert labels == ["Labelled", "Detected as", "Count"]
    for row, cell in zip(await rows.all(), listed, strict=True):
        await expect(row.locator("td")).to_have_text(
            [cell["actual"] or "nothing", cell["predicted"] or "nothing", str(cell["count"])]
        )
        nothing = [cell["actual"], cell["predicted"]].count(None)
        await expect(row.locator("td > .muted")).to_have_count(nothing)
    more = mistakes.get_by_test_id("evaluation-mistakes-more")
    if len(wrong) > len(listed):
        await expect(more).to_have_text(f"and {len(wrong) - len(listed)} more")
    else:
        await expect(more).to_be_hidden()


async def _evaluated_by_the_api(
    stack: Stack, auth: dict[str, str], job_id: str, labels: Path, status: int = 200
) -> dict:
    """The API's own answer for `labels` (its JSON body, an error's too)."""
    content = await asyncio.to_thread(labels.read_bytes)
    async with httpx.AsyncClient(base_url=stack.gateway_url, timeout=60) as client:
        answer = await client.post(
            f"/api/v1/detect/jobs/{job_id}/evaluation",
            files={"labels": (labels.name, content, "application/octet-stream")},
            headers=auth,
        )
    assert answer.status_code == status, answer.text
    return answer.json()


def _labels_files(folder: Path) -> tuple[Path, Path, Path]:
    """coco8's validation labels as a zip of YOLO label files and as COCO JSON, and a file that
    is neither, in `folder`."""
    # coco8's own ground truth, as the YOLO export lays it out, and a label file for an image
    # the job does not hold (listed as unmatched, never scored).
    yolo = folder / "coco8-val-labels.zip"
    with zipfile.ZipFile(yolo, "w") as archive:
        for path in VAL_LABELS:
            archive.write(path, f"labels/{path.name}")
        archive.writestr("labels/not-in-this-job.txt", "0 0.5 0.5 0.2 0.2\n")
    # COCO JSON: the people of the same labels in pixels, and a class the model lacks, named
    # with markup that must stay text.
    images, annotations = [], []
    for number, (image, label) in enumerate(zip(VAL_IMAGES, VAL_LABELS, strict=True), start=1):
        assert image.stem == label.stem
        height, width = cv2.imread(str(image)).shape[:2]
        images.append({"id": number, "file_name": image.name, "width": width, "height": height})
        for line in label.read_text().splitlines():
            class_id, x, y, w, h = line.split()
            if class_id != "0":
                continue
            box = [
                (float(x) - float(w) / 2) * width,
                (float(y) - float(h) / 2) * height,
                float(w) * width,
                float(h) * height,
            ]
            annotations.append({"image_id": number, "category_id": 1, "bbox": box})
    annotations.append({"image_id": 1, "category_id": 2, "bbox": [10.0, 10.0, 40.0, 30.0]})
    for number, annotation in enumerate(annotations, start=1):
        annotation.update(id=number, area=annotation["bbox"][2] * annotation["bbox"][3], iscrowd=0)
    coco = folder / "coco8-val.json"
    coco.write_text(
        json.dumps(
            {
                "images": images,
                "annotations": annotations,
                "categories": [{"id": 1, "name": "person"}, {"id": 2, "name": "<b>widget</b>"}],
            }
        )
    )
    neither = folder / "labels.json"
    neither.write_text("these are not labels")
    return yolo, coco, neither


def _many_mistakes_labels(folder: Path) -> Path:
    """YOLO labels that make more than 10 kinds of mistake: on the first image, a small box of
    each of 12 classes in its corner (each missed, or detected as another class)."""
    labels = folder / "many-mistakes.zip"
    with zipfile.ZipFile(labels, "w") as archive:
        boxes = "".join(f"{class_id} 0.02 0.02 0.02 0.02\n" for class_id in range(20, 32))
        archive.writestr(f"labels/{VAL_LABELS[0].name}", boxes)
    return labels


async def test_a_finished_batch_jobs_page_scores_it_against_uploaded_labels(
    page: Page, stack: Stack, tmp_path: Path
) -> None:
    """ADR 0054: "Evaluate against labels" on a finished batch job's page sends a labels file
    (a zip of YOLO label files, or COCO JSON) and shows the mAP, precision, recall and images
    scored, a row per class and notes on what was not scored, as the API's JSON for the same
    file says them; a refusal is shown as any other API error."""
    email, auth = await _api_account(stack)
    job = await _finished_job(stack, auth, VAL_IMAGES)
    assert job["status"] == "completed", job
    job_id = job["job_id"]
    yolo, coco, neither = _labels_files(tmp_path)
    elsewhere = await close_the_network(page, stack)

    await page.goto(f"/#/jobs/{job_id}")
    await log_in(page, email)
    await expect(page.get_by_test_id("job-status")).to_contain_text(
        f"{len(VAL_IMAGES)} of {len(VAL_IMAGES)} images (100 %)", timeout=SLOW_MS
    )
    section = page.get_by_test_id("job-evaluation")
    await expect(section).to_be_visible()
    await expect(section.get_by_role("heading")).to_have_text("Evaluate against labels")
    picker = section.get_by_test_id("evaluation-labels")
    await expect(picker).to_have_attribute("accept", ".zip,.json")
    evaluate = section.get_by_role("button", name="Evaluate", exact=True)
    result = section.get_by_test_id("evaluation-result")
    error = page.get_by_test_id("error")

    # Neither a zip nor JSON: the API's refusal, in the page's alert region as any other.
    await picker.set_input_files(neither)
    await evaluate.click()
    await expect(error).to_be_visible(timeout=SLOW_MS)
    refusal = (await _evaluated_by_the_api(stack, auth, job_id, neither, 422))["error"]
    await expect(error).to_have_attribute("data-code", refusal["code"])
    said = refusal["message"].rstrip(".")
    await expect(page.locator("#error-text")).to_have_text(f"{said[0].upper()}{said[1:]}.")
    await expect(result).to_be_hidden()
    await expect(evaluate).to_be_enabled()

    # YOLO labels: the scores, per class too, as the API's own JSON for the same file.
    async with page.expect_request(f"**/api/v1/detect/jobs/{job_id}/evaluation") as sent:
        await picker.set_input_files(yolo)
        await evaluate.click()
    request = await sent.value
    assert request.method == "POST"
    assert request.headers["content-type"].startswith("multipart/form-data")
    assert b'name="labels"; filename="coco8-val-labels.zip"' in (request.post_data_buffer or b"")
    await expect(result).to_be_visible(timeout=SLOW_MS)
    await expect(error).to_be_hidden()
    scored = await _evaluated_by_the_api(stack, auth, job_id, yolo)
    assert scored["labels_format"] == "yolo"
    assert scored["images"] == len(VAL_IMAGES)
    assert scored["unmatched_label_count"] == 1
    assert scored["classes"] and 0 < scored["map50"] <= 1
    await expect(result.get_by_test_id("evaluation-summary")).to_contain_text(
        f"{len(VAL_IMAGES)} images scored against YOLO labels: "
        f"{scored['ground_truth']} labelled objects, {scored['detections']} detections."
    )
    await _expect_evaluation_shown(result, scored)
    notes = result.get_by_test_id("evaluation-notes")
    await expect(notes.locator("li")).to_have_count(1)
    await expect(notes).to_contain_text(
        f"1 label entry names no image of this job, so it was not scored: "
        f"{scored['unmatched_labels'][0]}."
    )

    # The threshold moved to another point's confidence shows that point's scores, and the
    # marker line goes there; by keyboard a hundredth a press, the first point's scores hold
    # until the second's confidence (a step function).
    curve = scored["curve"]
    assert len(curve) > 1, curve
    threshold = result.get_by_test_id("evaluation-curve-threshold")
    readout = result.get_by_test_id("evaluation-curve-readout")
    chart = result.get_by_test_id("evaluation-curve-chart")
    other = curve[-1] if _best_point(curve) is curve[0] else curve[0]
    await threshold.fill(str(other["confidence"]))
    await expect(readout).to_have_text(_readout(other["confidence"], other))
    await threshold.fill(str(curve[0]["confidence"]))
    await expect(readout).to_have_text(_readout(curve[0]["confidence"], curve[0]))
    start = (await chart.locator("path").first.get_attribute("d") or "").split(",")[0]
    await expect(chart.locator(".marker")).to_have_attribute("x1", start.removeprefix("M"))
    presses = round((curve[1]["confidence"] - curve[0]["confidence"]) * 100)
    for _ in range(presses - 1):
        await threshold.press("ArrowRight")
    held = round(curve[1]["confidence"] - 0.01, 6)
    await expect(readout).to_have_text(_readout(held, curve[0]))
    await threshold.press("ArrowRight")
    await expect(readout).to_have_text(_readout(curve[1]["confidence"], curve[1]))

    # More than 10 kinds of mistake: the first 10 listed, the rest counted below them.
    many = _many_mistakes_labels(tmp_path)
    scored = await _evaluated_by_the_api(stack, auth, job_id, many)
    assert sum(cell["actual"] != cell["predicted"] for cell in scored["confusions"]) > 10
    await picker.set_input_files(many)
    await evaluate.click()
    await expect(result.get_by_test_id("evaluation-summary")).to_contain_text(
        f"{scored['ground_truth']} labelled objects, {scored['detections']} detections.",
        timeout=SLOW_MS,
    )
    await _expect_evaluation_shown(result, scored)
    ARTIFACTS.mkdir(exist_ok=True)
    await section.screenshot(path=ARTIFACTS / "console-evaluation.png")

    # COCO JSON: a class the model lacks is named in a note, as text; a class without ground
    # truth has no AP and no recall (an en dash), one without detections no precision.
    await picker.set_input_files(coco)
    await evaluate.click()
    summary = result.get_by_test_id("evaluation-summary")
    await expect(summary).to_contain_text("against COCO JSON", timeout=SLOW_MS)
    scored = await _evaluated_by_the_api(stack, auth, job_id, coco)
    assert scored["labels_format"] == "coco"
    assert scored["unknown_classes"] == ["<b>widget</b>"]
    assert any(row["ap50_95"] is None for row in scored["classes"]), scored["classes"]
    await _expect_evaluation_shown(result, scored)
    await expect(notes.locator("li")).to_have_text(
        [
            "The model has no class \N{LEFT DOUBLE QUOTATION MARK}<b>widget</b>"
            "\N{RIGHT DOUBLE QUOTATION MARK}: its labelled objects were not scored."
        ]
    )
    assert await section.locator("b").count() == 0
    assert scored["f1"] is not None and scored["suggested_class_confidence"], scored

    # "Use for my next detection": the suggested minimums go in the Detect view's per-class
    # minimum scores (as that field writes them), and the page goes to the Detect view.
    await section.get_by_role("button", name="Use for my next detection").click()
    await expect(page).to_have_url(re.compile(r"#detect$"))
    field = page.get_by_test_id("class-confidence")
    await expect(field).to_be_visible()
    await expect(field).to_be_focused()
    await expect(page.get_by_test_id("status")).to_contain_text(
        "Per-class minimum scores set from the evaluation"
    )
    pairs = [pair.rsplit(":", 1) for pair in (await field.input_value()).split(", ")]
    assert [name for name, _ in pairs] == list(scored["suggested_class_confidence"])
    assert {name: float(value) for name, value in pairs} == scored["suggested_class_confidence"]

    # A class's threshold: picked on its own curve, "Use this threshold for <class>" puts
    # `<class>:<threshold>` in the same field (every class has no such button: the general
    # confidence is another field).
    # Back on the job's page (opened afresh, without the last answer), scored again.
    await page.go_back()
    await expect(result).to_be_hidden(timeout=SLOW_MS)
    await picker.set_input_files(coco)
    await evaluate.click()
    await expect(summary).to_contain_text("against COCO JSON", timeout=SLOW_MS)
    picked = next(row for row in scored["classes"] if row["curve"])
    name, best = picked["class_name"], _best_point(picked["curve"])
    await result.get_by_test_id("evaluation-curve-class").select_option(label=name)
    await expect(chart).to_have_attribute(
        "aria-label",
        re.compile("^Precision, recall and F1 of \N{LEFT DOUBLE QUOTATION MARK}" + re.escape(name)),
    )
    await expect(readout).to_have_text(_readout(best["confidence"], best))
    use = result.get_by_test_id("evaluation-curve-use")
    await expect(use).to_have_text(f"Use this threshold for {name}")
    await use.click()
    await expect(page).to_have_url(re.compile(r"#detect$"))
    await expect(field).to_be_focused()
    await expect(field).to_have_value(f"{name}:{_confidence(best['confidence'])}")
    assert elsewhere == []


async def test_a_tracked_video_jobs_page_evaluates_its_tracking_against_mot_labels(
    page: Page, stack: Stack, tmp_path: Path
) -> None:
    """ADR 0054 for a video: "Evaluate against labels" is on a finished video job's page too,
    its hint naming the labels a video takes; scored against MOT ground truth made of the
    job's own tracks (from its second frame, so its first is outside the labelled frames), the
    counts say frames and a "Tracking" part and the per-class table show MOTA and IDF1 of 1."""
    from objectvision_devstack.videos import panned, write_video

    clip = await asyncio.to_thread(
        lambda: write_video(tmp_path / "panned.mp4", panned(BUS, 8, step=6), fps=10)
    )
    await sign_up_and_log_in(page)
    await page.get_by_test_id("video-fps").fill("10")
    await page.get_by_test_id("video-track").check()
    await page.get_by_test_id("file-input").set_input_files(clip)
    progress = page.get_by_test_id("job-progress")
    await expect(progress).to_have_attribute("data-status", "completed", timeout=SLOW_MS)
    job_id = await page.get_by_test_id("job-id").text_content()
    token = await page.evaluate(
        "key => JSON.parse(sessionStorage.getItem(key)).accessToken", SESSION_KEY
    )
    auth = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=stack.gateway_url, timeout=60) as client:
        listed = await client.get(f"/api/v1/detect/jobs/{job_id}/frames", headers=auth)
    assert listed.status_code == 200, listed.text
    labels = tmp_path / "mot-1.1.zip"
    labels.write_bytes(cvat_mot_zip(tracked_objects(listed.json()["frames"])))
    scored = await _evaluated_by_the_api(stack, auth, str(job_id), labels)
    assert (scored["job_kind"], scored["labels_format"]) == ("video", "mot"), scored
    assert (scored["images"], scored["frames_outside_labels"]) == (7, 1), scored
    tracking = scored["tracking"]
    assert tracking and (tracking["mota"], tracking["idf1"]) == pytest.approx((1, 1)), tracking

    section = page.get_by_test_id("job-evaluation")
    await expect(section).to_be_visible()
    await expect(section.get_by_test_id("evaluation-video-hint")).to_contain_text(
        "MOTChallenge's gt.txt"
    )
    await expect(section.get_by_test_id("evaluation-video-hint")).to_contain_text(
        "frame_000042.txt"
    )
    await expect(section.locator("#job-evaluation-hint")).to_be_hidden()
    picker = section.get_by_label("Labels file (gt.txt, .zip or .json)")
    await expect(picker).to_have_attribute("aria-describedby", "job-evaluation-video-hint")
    await picker.set_input_files(labels)
    await section.get_by_role("button", name="Evaluate", exact=True).click()
    result = section.get_by_test_id("evaluation-result")
    await expect(result).to_be_visible(timeout=SLOW_MS)
    await expect(result.get_by_test_id("evaluation-summary")).to_contain_text(
        f"7 frames scored against MOTChallenge labels: {scored['ground_truth']} labelled objects,"
    )
    scores = result.get_by_test_id("evaluation-scores")
    await expect(scores.locator("dt").last).to_have_text("Frames scored")
    await expect(scores.locator("dd").last).to_have_text("7")
    await expect(result.get_by_test_id("evaluation-notes").locator("li")).to_contain_text(
        ["1 sampled frame outside the labelled frames was not scored."]
    )
    part = result.get_by_test_id("evaluation-tracking")
    await expect(part.get_by_role("heading")).to_have_text("Tracking")
    await expect(part.locator("dd[data-metric=mota]")).to_have_text("1.000")
    await expect(part.locator("dd[data-metric=idf1]")).to_have_text("1.000")
    await expect(part.locator("dd[data-metric=id_switches]")).to_have_text("0")
    tracks = tracking["ground_truth_tracks"]
    await expect(part.locator("dd[data-metric=identities]")).to_have_text(
        f"{tracks} labelled: {tracks} mostly tracked, 0 partly tracked, 0 mostly lost"
    )
    headers = result.get_by_test_id("evaluation-classes").locator("thead th")
    await expect(headers).to_have_count(11)
    await expect(headers.nth(9)).to_have_text("MOTA")
    await expect(headers.nth(10)).to_have_text("IDF1")
    rows = result.get_by_test_id("evaluation-class")
    await expect(rows).to_have_count(len(scored["classes"]))
    for row, scored_class in zip(await rows.all(), scored["classes"], strict=True):
        expected = [_score((scored_class["tracking"] or {}).get(key)) for key in ("mota", "idf1")]
        await expect(row.locator("td").nth(9)).to_have_text(expected[0])
        await expect(row.locator("td").nth(10)).to_have_text(expected[1])
    bus = rows.nth([row["class_name"] for row in scored["classes"]].index("bus"))
    await expect(bus.locator("td")).to_contain_text(["bus", "1.000", "1.000"])


async def test_a_video_runs_as_a_job_with_its_frames_and_annotated_video(
    page: Page, tmp_path: Path
) -> None:
    """Issue 18, part 2: a video chosen in the Detect view becomes a job followed live; once
    done its sampled frames are listed with their times and the annotated video downloads."""
    from objectvision_devstack.videos import make_video

    clip = await asyncio.to_thread(
        make_video,
        tmp_path / "street.mp4",
        [(BUS, 20), (IMAGES / "zidane.jpg", 20)],
        fps=10,
    )
    await sign_up_and_log_in(page)

    await page.get_by_test_id("video-fps").fill("2")
    await page.get_by_test_id("file-input").set_input_files(clip)

    progress = page.get_by_test_id("job-progress")
    await expect(progress).to_have_attribute("data-status", "completed", timeout=SLOW_MS)
    await expect(page.get_by_test_id("job-status")).to_contain_text("8 of 8 frames (100 %)")
    await expect(page.get_by_role("heading", name="Video job")).to_be_visible()
    await expect(page.get_by_test_id("video-summary")).to_contain_text(
        "street.mp4: H264 640\N{MULTIPLICATION SIGN}480, 4.0 s, 40 frames;"
        " 8 frames sampled (2 per second)."
    )
    frames = page.get_by_test_id("video-frame")
    await expect(frames).to_have_count(8, timeout=SLOW_MS)
    await expect(frames.first).to_contain_text("0.00 s")
    await expect(frames.first).to_contain_text("bus")
    await expect(frames.nth(4)).to_contain_text("2.00 s")
    await expect(frames.nth(4)).not_to_contain_text("bus")
    await expect(page.get_by_test_id("job-exports")).to_be_hidden()

    async with page.expect_download() as video_download:
        await page.get_by_test_id("download-video").click()
    downloaded = await video_download.value
    assert downloaded.suggested_filename == "street.annotated.mp4"
    data = await asyncio.to_thread(Path(await downloaded.path()).read_bytes)
    assert data[4:8] == b"ftyp"

    def decoded_frames() -> int:
        import av

        with av.open(str(tmp_path / "annotated.mp4")) as container:
            return sum(1 for _ in container.decode(video=0))

    await asyncio.to_thread((tmp_path / "annotated.mp4").write_bytes, data)
    assert await asyncio.to_thread(decoded_frames) == 8

    # Run again (ADR 0058): the same video, sampled as before, with the other model.
    source = await page.get_by_test_id("job-id").text_content()
    rerun = page.get_by_test_id("job-rerun")
    await expect(rerun.get_by_text("Run this video again with")).to_be_visible()
    await expect(page.get_by_test_id("rerun-model")).to_have_attribute("data-loaded", "true")
    await page.get_by_test_id("rerun-model").select_option("yolov8n-int8")
    await rerun.get_by_role("button", name="Run again").click()
    await expect(page.get_by_test_id("job-rerun-of")).to_have_text(f"Ran again from job {source}")
    await expect(progress).to_have_attribute("data-status", "completed", timeout=SLOW_MS)
    await expect(page.get_by_test_id("job-status")).to_contain_text("8 of 8 frames (100 %)")
    await expect(page.get_by_test_id("video-summary")).to_contain_text(
        "8 frames sampled (2 per second)"
    )


async def test_a_video_url_is_fetched_by_the_server_and_followed_as_an_upload_is(
    page: Page, tmp_path: Path
) -> None:
    """ADR 0027's amendment: the video URL typed under the video options goes as `url`, not
    a file, for the gateway to fetch (the stack allows 127.0.0.1) with the options typed
    above it; the job is followed as an uploaded video's is, named after the URL's file. A
    URL that gives no video is refused in plain words, and no job starts."""
    from objectvision_devstack.videos import make_video

    clip = await asyncio.to_thread(
        make_video, tmp_path / "clip.mp4", [(BUS, 2)], fps=10, width=64, height=48
    )
    files = {"gate-3.mp4": clip.read_bytes(), "notes.txt": b"not a video at all\n" * 50}
    await sign_up_and_log_in(page)
    sent: list[str] = []
    page.on(
        "request",
        lambda request: (
            sent.append(request.post_data or "") if "/detect/video" in request.url else None
        ),
    )
    address = page.get_by_label("or a video URL")
    detect_video = page.get_by_role("button", name="Detect video", exact=True)

    with image_server(files) as host:
        await address.fill(host.file_url("notes.txt"))
        await detect_video.click()
        await expect(page.get_by_role("alert")).to_contain_text(
            "The service can't use that video. The file is not a video", timeout=SLOW_MS
        )
        await expect(page.get_by_test_id("batch-result")).to_be_hidden()

        await page.get_by_test_id("video-fps").fill("10")
        await address.fill(host.file_url("gate-3.mp4"))
        await detect_video.click()
        progress = page.get_by_test_id("job-progress")
        await expect(progress).to_have_attribute("data-status", "completed", timeout=SLOW_MS)
        fetched = [request.path for request in host.received()]

    assert fetched == ["/files/notes.txt", "/files/gate-3.mp4"]
    assert len(sent) == 2 and 'name="url"' in sent[1] and 'name="fps"' in sent[1]
    assert host.file_url("gate-3.mp4") in sent[1] and "filename=" not in sent[1]
    await expect(page.get_by_test_id("job-status")).to_contain_text("2 of 2 frames (100 %)")
    await expect(page.get_by_role("heading", name="Video job")).to_be_visible()
    await expect(page.get_by_test_id("video-summary")).to_contain_text(
        "gate-3.mp4: H264 64\N{MULTIPLICATION SIGN}48, 0.2 s, 2 frames;"
        " 2 frames sampled (10 per second)."
    )
    await expect(page.get_by_test_id("video-frame")).to_have_count(2, timeout=SLOW_MS)
    await expect(page.get_by_test_id("download-video")).to_be_visible()


async def test_a_tracked_video_shows_each_objects_track_id(page: Page, tmp_path: Path) -> None:
    """ADR 0038: "Track objects" sends track=true; from the second frame on the bus is listed
    with its track id (`#0 bus`), the same in every frame."""
    from objectvision_devstack.videos import panned, write_video

    clip = await asyncio.to_thread(
        lambda: write_video(tmp_path / "panned.mp4", panned(BUS, 6, step=6), fps=10)
    )
    await sign_up_and_log_in(page)

    await page.get_by_test_id("video-fps").fill("10")
    await page.get_by_test_id("video-track").check()
    await page.get_by_test_id("file-input").set_input_files(clip)

    progress = page.get_by_test_id("job-progress")
    await expect(progress).to_have_attribute("data-status", "completed", timeout=SLOW_MS)
    await expect(page.get_by_test_id("video-summary")).to_contain_text(
        "6 frames sampled (10 per second), objects tracked."
    )
    frames = page.get_by_test_id("video-frame")
    await expect(frames).to_have_count(6, timeout=SLOW_MS)
    texts = await frames.all_inner_texts()
    assert "#" not in texts[0] and "bus" in texts[0]
    bus_ids = {tuple(re.findall(r"#(\d+) bus\b", text)) for text in texts[1:]}
    assert len(bus_ids) == 1 and len(next(iter(bus_ids))) == 1, texts


@pytest.mark.parametrize(
    ("field", "malformed", "refused_for_its_syntax", "well_formed", "for_the_api", "api_says"),
    [
        pytest.param(
            "lines",
            "gate 0,360,640,360",
            "\N{LEFT DOUBLE QUOTATION MARK}gate 0,360,640,360\N{RIGHT DOUBLE QUOTATION MARK}"
            " is not a line: write name: x1,y1,x2,y2",
            "gate: 0,360,640,360",
            "gate: 0,360,640,360; gate: 0,0,640,480",
            "Counting lines: line names must be unique; 'gate'",
            id="lines",
        ),
        pytest.param(
            "zones",
            "queue: 0,0,640,0",
            "\N{LEFT DOUBLE QUOTATION MARK}queue: 0,0,640,0\N{RIGHT DOUBLE QUOTATION MARK}"
            " is not a zone: write name: x1,y1,x2,y2,x3,y3",
            "queue: 0,0,640,0,640,200",
            "queue: 0,0,640,0,640,200; flat: 0,0,5,5,9,9",
            "zone 'flat' encloses no area",
            id="zones",
        ),
    ],
)
async def test_counting_lines_and_zones_are_checked_before_and_by_the_upload(
    page: Page,
    field: str,
    malformed: str,
    refused_for_its_syntax: str,
    well_formed: str,
    for_the_api: str,
    api_says: str,
) -> None:
    """ADR 0039, ADR 0042: lines (`name: x1,y1,x2,y2; ...`) or zones (`name: x1,y1,x2,y2,
    x3,y3,...; ...`) not in their syntax, or given without "Track objects", are named before
    anything is sent; what only the API judges (a name given twice, a zone whose corners lie on
    one line) comes back as the API's 422, in plain words."""
    await sign_up_and_log_in(page)
    uploads: list[str] = []
    page.on(
        "request",
        lambda request: uploads.append(request.url) if "/detect/video" in request.url else None,
    )
    clip = {"name": "clip.mp4", "mimeType": "video/mp4", "buffer": b"not a video at all"}
    alert = page.get_by_role("alert")
    regions = page.get_by_test_id(f"video-{field}")

    await page.get_by_test_id("video-track").check()
    await regions.fill(malformed)
    await page.get_by_test_id("file-input").set_input_files(files=[clip])
    await expect(alert).to_contain_text(f"Counting {field}: {refused_for_its_syntax}")

    await page.get_by_test_id("video-track").uncheck()
    await regions.fill(well_formed)
    await page.get_by_test_id("file-input").set_input_files(files=[clip])
    await expect(alert).to_contain_text(
        f"Counting {field} need \N{LEFT DOUBLE QUOTATION MARK}Track"
    )
    assert uploads == []

    await page.get_by_test_id("video-track").check()
    await regions.fill(for_the_api)
    await page.get_by_test_id("file-input").set_input_files(files=[clip])
    await expect(alert).to_contain_text(api_says)
    assert len(uploads) == 1


async def test_a_counted_video_shows_its_line_counts(page: Page, tmp_path: Path) -> None:
    """ADR 0039: the typed counting lines go with the video; once the job is done the "Line
    counts" table lists every line in order, with the bus on a line it crossed. The lines
    stand 25 px apart, top to bottom, and the bus's centre moves 36 px right while it is
    tracked (frames 1 to 7), so it crosses one or two of them, each time "in"."""
    from objectvision_devstack.videos import panned, write_video

    clip = await asyncio.to_thread(
        lambda: write_video(tmp_path / "panned.mp4", panned(BUS, 8, step=6), fps=10)
    )
    spots = range(130, 130 + 16 * 25, 25)
    await sign_up_and_log_in(page)

    await page.get_by_test_id("video-fps").fill("10")
    await page.get_by_test_id("video-track").check()
    await page.get_by_test_id("video-lines").fill(
        "; ".join(f"at {x}: {x},0,{x},480" for x in spots)
    )
    await page.get_by_test_id("file-input").set_input_files(clip)

    progress = page.get_by_test_id("job-progress")
    await expect(progress).to_have_attribute("data-status", "completed", timeout=SLOW_MS)
    await expect(page.get_by_test_id("video-summary")).to_contain_text(
        "objects tracked, counted crossing 16 lines."
    )
    rows = page.get_by_test_id("line-count")
    await expect(page.get_by_test_id("line-counts")).to_contain_text("Line counts")
    cells = [text.split("\t") for text in await rows.all_inner_texts()]
    names = list(dict.fromkeys(row[0] for row in cells))
    assert names == [f"at {x}" for x in spots]
    bus = [row[1:] for row in cells if row[1] == "bus"]
    assert bus and all(counts == ["bus", "1", "0"] for counts in bus), cells


async def test_a_zoned_video_shows_its_zone_counts(page: Page, tmp_path: Path) -> None:
    """ADR 0042: the typed counting zones go with the video; once the job is done the "Zone
    counts" table lists every zone in order: the bus stood in the whole picture from the
    second frame it was seen in (its track's first) to the last, 0.6 s at 10 frames a second,
    and nobody stood in a strip along the top edge."""
    from objectvision_devstack.videos import panned, write_video

    clip = await asyncio.to_thread(
        lambda: write_video(tmp_path / "panned.mp4", panned(BUS, 8, step=6), fps=10)
    )
    await sign_up_and_log_in(page)

    await page.get_by_test_id("video-fps").fill("10")
    await page.get_by_test_id("video-track").check()
    await page.get_by_test_id("video-zones").fill(
        "everywhere: 0,0,640,0,640,480,0,480; top strip: 0,0,640,0,640,2,0,2"
    )
    await page.get_by_test_id("file-input").set_input_files(clip)

    progress = page.get_by_test_id("job-progress")
    await expect(progress).to_have_attribute("data-status", "completed", timeout=SLOW_MS)
    await expect(page.get_by_test_id("video-summary")).to_contain_text(
        "objects tracked, counted in 2 zones."
    )
    await expect(page.get_by_test_id("zone-counts")).to_contain_text("Zone counts")
    cells = [text.split("\t") for text in await page.get_by_test_id("zone-count").all_inner_texts()]
    assert list(dict.fromkeys(row[0] for row in cells)) == ["everywhere", "top strip"]
    assert ["everywhere", "bus", "1", "1", "0.6 s"] in cells, cells
    assert cells[-1] == ["top strip", "\N{EM DASH}", "0", "0", "\N{EM DASH}"]
    await expect(page.get_by_test_id("line-counts")).to_have_count(0)
    # Each tracked object of a frame names the zones it stands in.
    frames = page.get_by_test_id("video-frame")
    await expect(frames).to_have_count(8, timeout=SLOW_MS)
    await expect(frames.last).to_contain_text("bus [everywhere]")


async def test_the_detect_view_picks_a_model_from_the_list(page: Page) -> None:
    """The picker lists GET /api/v1/models (the default preselected); the chosen model is
    the one that answers."""
    await sign_up_and_log_in(page)
    picker = page.get_by_test_id("model")
    await expect(picker).to_have_attribute("data-loaded", "true", timeout=SLOW_MS)
    values = [
        await option.get_attribute("value") for option in await picker.locator("option").all()
    ]
    assert values == ["yolov8n", "yolov8n-int8"]
    assert await picker.input_value() == "yolov8n"
    await picker.select_option("yolov8n-int8")
    async with page.expect_response(lambda r: r.url.endswith("/api/v1/detect/image")) as answer:
        await page.get_by_test_id("file-input").set_input_files(BUS)
    body = await (await answer.value).json()
    assert (body["model"], body["model_version"]) == ("yolov8n-int8", "1")
    await expect(page.get_by_test_id("box")).to_have_count(5, timeout=SLOW_MS)


async def test_a_repeated_upload_says_it_came_from_the_result_cache(
    browser: Browser, cached_stack: Stack, unique_bus_jpg: bytes, tmp_path: Path
) -> None:
    context = await browser.new_context(
        viewport=DESKTOP,
        base_url=cached_stack.gateway_url,
        extra_http_headers=fresh_network(),
    )
    page = await context.new_page()
    try:
        await sign_up_and_log_in(page)
        first, again = tmp_path / "bus.jpg", tmp_path / "bus-again.jpg"
        first.write_bytes(unique_bus_jpg)
        again.write_bytes(unique_bus_jpg)
        summary = page.get_by_test_id("shown-count")
        await page.get_by_test_id("file-input").set_input_files(first)
        await expect(page.get_by_test_id("box")).to_have_count(5, timeout=SLOW_MS)
        await expect(summary).to_contain_text("Showing 5 of 5 objects")
        await expect(summary).not_to_contain_text("result cache")
        await page.get_by_test_id("file-input").set_input_files(again)
        await expect(summary).to_contain_text("from the result cache", timeout=SLOW_MS)
        await expect(page.get_by_test_id("box")).to_have_count(5)
    finally:
        await context.close()


async def _emailed_link(stack: Stack, address: str, route: str) -> str:
    """The console link to `#/<route>?token=…` in an email to `address`, once the stack's SMTP
    sink has it."""
    mailbox = Mailbox(stack.mail_dir)
    pattern = re.compile(rf"\S+/#/{route}\?token=\S+")

    def link() -> str | None:
        for message in mailbox.to(address):
            text = message.get_body(preferencelist=("plain",))
            found = pattern.search(text.get_content())
            if found:
                return found[0]
        return None

    return await eventually(link, within=45.0, what=f"a {route} email to {address}")


async def test_a_forgotten_password_is_reset_from_the_emailed_link(
    page: Page, stack: Stack
) -> None:
    """The login form's "Forgot password?" asks for a link; the email's link opens a page
    that takes the token out of the address bar and sets the new password; the old one no
    longer logs in, the new one does."""
    email = await sign_up_and_log_in(page)
    await page.get_by_role("button", name="Log out", exact=True).click()
    await page.get_by_test_id("forgot-password-link").click()
    forgot = page.get_by_test_id("forgot-form")
    await forgot.get_by_label("Email").fill(email)
    await forgot.get_by_role("button", name="Email me a link").click()
    await expect(page.get_by_test_id("status")).to_contain_text(
        f"If an account has the address {email}"
    )

    await page.goto(await _emailed_link(stack, email, "reset-password"))

    reset = page.get_by_test_id("reset-form")
    await expect(reset).to_be_visible()
    assert page.url.endswith("/#/reset-password"), page.url
    await reset.get_by_label("New password").fill("a new console passphrase")
    await reset.get_by_role("button", name="Set new password").click()
    await expect(page.get_by_test_id("status")).to_have_text(
        "Your password has been changed. Log in with the new one."
    )
    login = page.get_by_test_id("login-form")
    await login.get_by_label("Email").fill(email)
    await login.get_by_label("Password").fill(PASSWORD)
    await login.get_by_role("button", name="Log in").click()
    await expect(page.get_by_test_id("error")).to_be_visible()
    await login.get_by_label("Password").fill("a new console passphrase")
    await login.get_by_role("button", name="Log in").click()
    await expect(page.get_by_test_id("account-email")).to_have_text(email)


async def test_the_sign_in_address_changes_from_the_settings_page_once_its_link_is_opened(
    page: Page, stack: Stack
) -> None:
    """ADR 0033: the settings page asks with the password, says where the link went and that
    nothing changed yet; the emailed link makes the change, and the page names the new
    address from then on."""
    email = await sign_up_and_log_in(page)
    new_address = f"moved-{uuid.uuid4().hex[:12]}@example.com"
    await page.get_by_role("link", name="Settings").click()
    summary = page.get_by_test_id("email-change-summary")
    await expect(summary).to_have_text(f"You sign in with {email}.")
    form = page.get_by_test_id("email-change-form")
    await form.get_by_label("New address").fill(new_address)
    await form.get_by_label("Your password").fill("not my password")
    await form.get_by_role("button", name="Change address").click()
    await expect(page.get_by_test_id("error")).to_contain_text("That is not your password")

    await form.get_by_label("Your password").fill(PASSWORD)
    await form.get_by_role("button", name="Change address").click()

    await expect(page.get_by_test_id("status")).to_contain_text(
        f"Check {new_address}: open the link we mailed there"
    )
    await expect(summary).to_contain_text(f"You sign in with {email}. A link that makes")
    await expect(page.get_by_test_id("account-email")).to_have_text(email)
    await page.goto(await _emailed_link(stack, new_address, "verify-email"))
    await expect(page.get_by_test_id("verify-result")).to_have_text(
        f"Thank you: you sign in with {new_address} from now on."
    )
    await expect(page.get_by_test_id("account-email")).to_have_text(new_address)
    await page.get_by_role("link", name="Settings").click()
    await expect(summary).to_have_text(f"You sign in with {new_address}.")


async def test_two_factor_is_turned_on_in_settings_and_login_then_asks_for_the_code(
    page: Page,
) -> None:
    """ADR 0034: the card turns it on with the password (a wrong one is named), shows the QR
    code and the key, and the app's first code answers the recovery codes, shown once. After
    that the login form asks for a code, and says so in plain words when one is wrong; the
    card then renews the recovery codes and turns it off."""
    email = await sign_up_and_log_in(page)
    await page.get_by_role("link", name="Settings").click()
    card = page.get_by_test_id("two-factor-card")
    await expect(card).to_have_attribute("data-state", "off")
    start = card.get_by_test_id("two-factor-start")
    await start.get_by_label("Your password").fill("not my password")
    await start.get_by_role("button", name="Turn on").click()
    await expect(page.get_by_test_id("error")).to_contain_text("That is not your password")
    await start.get_by_label("Your password").fill(PASSWORD)
    await start.get_by_role("button", name="Turn on").click()

    await expect(card).to_have_attribute("data-state", "enrolling")
    qr = card.get_by_test_id("two-factor-qr")
    await expect(qr).to_have_attribute("src", re.compile(r"^data:image/svg\+xml"))
    await expect(qr).to_have_attribute("alt", re.compile("QR code"))
    # Drawn, not a broken image: the page's Content-Security-Policy lets data: images in.
    assert await qr.evaluate("image => image.decode().then(() => image.naturalWidth)") > 0
    secret = (await card.get_by_test_id("two-factor-secret").text_content() or "").strip()
    confirm = card.get_by_test_id("two-factor-confirm")
    await confirm.get_by_label("Authentication code").fill(pyotp.TOTP(secret).now())
    await confirm.get_by_role("button", name="Confirm").click()
    recovery = card.get_by_test_id("recovery-codes")
    await expect(recovery.locator("li")).to_have_count(10)
    await expect(recovery).to_contain_text("Store these now")
    await expect(page.get_by_test_id("status")).to_contain_text("Two-factor authentication is on")
    codes = await recovery.locator("li").all_text_contents()
    await recovery.get_by_role("button", name="I've stored them").click()
    await expect(card).to_have_attribute("data-state", "on")
    await expect(recovery.locator("li")).to_have_count(0)
    await expect(card.get_by_test_id("two-factor-manage")).to_be_visible()

    await page.get_by_role("button", name="Log out", exact=True).click()
    login = page.get_by_test_id("login-form")
    code = login.get_by_test_id("login-code")
    await expect(code).to_be_hidden()
    await login.get_by_label("Email").fill(email)
    await login.get_by_label("Password").fill(PASSWORD)
    await login.get_by_role("button", name="Log in").click()
    await expect(code).to_be_visible()
    await expect(code).to_be_focused()
    await expect(code).to_have_attribute("autocomplete", "one-time-code")
    await expect(login.get_by_label("Authentication code")).to_have_attribute(
        "inputmode", "numeric"
    )
    await expect(page.get_by_test_id("account-email")).to_be_hidden()

    await code.fill("000000" if pyotp.TOTP(secret).now() != "000000" else "111111")
    await login.get_by_role("button", name="Log in").click()
    await expect(page.get_by_test_id("error")).to_contain_text("That code is not right")
    # The next step's code: the first one's step is used up, and the server allows the drift.
    await code.fill(pyotp.TOTP(secret).at(time.time() + 30))
    await login.get_by_role("button", name="Log in").click()
    await expect(page.get_by_test_id("account-email")).to_have_text(email)
    await expect(code).to_be_hidden()

    # Signed in, the card renews the recovery codes and turns it off, each with the password
    # and a code (here recovery codes: the app's have been used for this step and the next).
    await page.get_by_role("link", name="Settings").click()
    await expect(card).to_have_attribute("data-state", "on")
    manage = card.get_by_test_id("two-factor-manage")
    await manage.get_by_label("Your password").fill(PASSWORD)
    await manage.get_by_label("Authentication code").fill(codes[0])
    await manage.get_by_role("button", name="New recovery codes").click()
    await expect(recovery.locator("li")).to_have_count(10)
    renewed = await recovery.locator("li").all_text_contents()
    assert not set(renewed) & set(codes)
    await recovery.get_by_role("button", name="I've stored them").click()
    await manage.get_by_label("Your password").fill(PASSWORD)
    await manage.get_by_label("Authentication code").fill(codes[1])
    await manage.get_by_role("button", name="Turn off").click()
    await expect(page.get_by_test_id("error")).to_contain_text("That code is not right")
    await manage.get_by_label("Authentication code").fill(renewed[0])
    await manage.get_by_role("button", name="Turn off").click()
    await expect(card).to_have_attribute("data-state", "off")
    await expect(page.get_by_test_id("status")).to_contain_text("Two-factor authentication is off")


async def test_the_settings_page_lists_the_sessions_and_logs_out_the_others(
    page: Page, stack: Stack
) -> None:
    """ADR 0035: the page's own login and two more through the API, each with its address and
    device; the page's has no End button. Ending one and then all the others shrinks the list,
    says what happened and stops those sessions' tokens, while the page stays signed in."""
    email = await sign_up_and_log_in(page)
    async with httpx.AsyncClient(base_url=stack.gateway_url, timeout=60) as client:
        phone, tablet = [
            await logged_in(
                client, email, network={"X-Forwarded-For": address, "User-Agent": device}
            )
            for address, device in [
                (network_address(), "Phone/2.0"),
                (network_address(), "Tablet/3.0"),
            ]
        ]
    await page.get_by_role("link", name="Settings").click()
    card = page.get_by_test_id("sessions-card")
    rows = card.get_by_test_id("session-row")
    await expect(rows).to_have_count(3)
    await expect(rows.nth(0)).to_contain_text("Tablet/3.0")
    await expect(rows.nth(1)).to_contain_text("Phone/2.0")
    own = card.locator('[data-testid="session-row"][data-current="true"]')
    await expect(own).to_contain_text("This session")
    await expect(own).to_contain_text("HeadlessChrome")
    await expect(own.get_by_role("button")).to_have_count(0)

    await rows.nth(1).get_by_role("button", name="End").click()
    await expect(rows).to_have_count(2)
    await expect(page.get_by_test_id("status")).to_have_text(
        re.compile(r"^Session ended: Phone/2\.0 at 2001:db8:.* is logged out\.$")
    )
    await expect(card).not_to_contain_text("Phone/2.0")

    await card.get_by_role("button", name="Log out everywhere else").click()
    await expect(rows).to_have_count(1)
    await expect(page.get_by_test_id("status")).to_have_text(
        "Logged out 1 other session: only this one stays logged in."
    )
    await expect(rows.first).to_have_attribute("data-current", "true")
    await expect(card.get_by_role("button", name="Log out everywhere else")).to_be_disabled()
    await expect(page.get_by_test_id("account-email")).to_have_text(email)
    async with httpx.AsyncClient(base_url=stack.gateway_url, timeout=60) as client:
        for ended in (phone, tablet):
            assert (await client.get("/api/v1/users/me", headers=ended.headers)).status_code == 401


async def test_a_detection_and_a_finished_job_are_deleted_from_their_pages(page: Page) -> None:
    """Each asks first: a dismissed question deletes nothing. Then the page empties, says what
    went, and the history no longer lists it."""
    answers = iter([False, True, True])
    questions: list[str] = []

    async def answer(dialog: Dialog) -> None:
        questions.append(dialog.message)
        await (dialog.accept() if next(answers) else dialog.dismiss())

    page.on("dialog", answer)
    await sign_up_and_log_in(page)
    await page.get_by_test_id("file-input").set_input_files(BUS)
    await expect(page.get_by_test_id("box")).to_have_count(5, timeout=SLOW_MS)
    delete = page.get_by_test_id("delete-detection")
    await delete.click()  # dismissed: the detection stays, and can still be deleted
    await expect(page.get_by_test_id("box")).to_have_count(5)
    await delete.click()
    await expect(page.get_by_test_id("status")).to_have_text("Deleted bus.jpg and its detection.")
    await expect(page.get_by_test_id("stage")).to_be_hidden()
    question = "Delete bus.jpg and its detection for good? It leaves your history and exports."
    assert questions[:2] == [question, question]

    await page.get_by_test_id("file-input").set_input_files(BATCH)
    progress = page.get_by_test_id("job-progress")
    await expect(progress).to_have_attribute("data-status", "completed", timeout=SLOW_MS)
    job_id = await page.get_by_test_id("job-id").text_content()
    await page.get_by_test_id("delete-job").click()
    await expect(page.get_by_test_id("status")).to_have_text(
        f"Deleted job {job_id} with its images and their detections."
    )
    await expect(progress).to_be_hidden()
    assert "Delete this job with its images" in questions[2]

    await page.get_by_role("link", name="History").click()
    await expect(page.get_by_test_id("history-list")).to_contain_text("No detections yet")
    await expect(page.get_by_test_id("history-item")).to_have_count(0)


async def test_a_batch_jobs_images_are_run_again_with_another_model_from_its_page(
    page: Page,
) -> None:
    """The job's "Run again" form lists the models; the new job is followed on the same
    page, says which job it ran again, and links back to it."""
    await sign_up_and_log_in(page)
    await page.get_by_test_id("file-input").set_input_files(BATCH)
    progress = page.get_by_test_id("job-progress")
    await expect(progress).to_have_attribute("data-status", "completed", timeout=SLOW_MS)
    source = await page.get_by_test_id("job-id").text_content()
    assert source
    await expect(page.get_by_test_id("job-rerun-of")).to_be_hidden()

    picker = page.get_by_test_id("rerun-model")
    await expect(picker).to_have_attribute("data-loaded", "true", timeout=SLOW_MS)
    await picker.select_option("yolov8n-int8")
    async with page.expect_response(lambda r: r.url.endswith(f"/jobs/{source}/rerun")) as answer:
        await page.get_by_test_id("job-rerun").get_by_role("button", name="Run again").click()
    rerun = await (await answer.value).json()
    assert (rerun["model"], rerun["rerun_of"], rerun["total"]) == (
        "yolov8n-int8",
        source,
        len(BATCH),
    )
    await expect(page.get_by_test_id("job-id")).to_have_text(rerun["job_id"])
    await expect(progress).to_have_attribute("data-status", "completed", timeout=SLOW_MS)
    await expect(page.get_by_test_id("job-rerun-of")).to_have_text(f"Ran again from job {source}")
    assert page.url.endswith(f"#/jobs/{rerun['job_id']}")

    await page.get_by_test_id("job-rerun-source").click()
    await expect(page.get_by_test_id("job-id")).to_have_text(source, timeout=SLOW_MS)
    await expect(page.get_by_test_id("job-rerun-of")).to_be_hidden()
    # The first job's page names the job that ran it again, linked.
    await expect(page.get_by_test_id("job-reruns")).to_have_text(
        f"Ran again as job {rerun['job_id'][:8]} (yolov8n-int8)."
    )
    await page.get_by_test_id("job-rerun-link").click()
    await expect(page.get_by_test_id("job-id")).to_have_text(rerun["job_id"], timeout=SLOW_MS)
    await expect(page.get_by_test_id("job-reruns")).to_be_hidden()

    # The Jobs page names each job's model, and the job a rerun came from.
    await page.get_by_role("link", name="Jobs").click()
    newest, first = page.get_by_test_id("job-row").nth(0), page.get_by_test_id("job-row").nth(1)
    await expect(newest.locator('td[data-label="Model"]')).to_have_text(
        f"yolov8n-int8ran again from {source[:8]}", timeout=SLOW_MS
    )
    await expect(first.locator('td[data-label="Model"]')).to_have_text("yolov8n")


async def test_a_rerun_jobs_scores_are_set_beside_those_of_the_job_it_ran_again(
    page: Page, stack: Stack, tmp_path: Path
) -> None:
    """ADR 0058: once a job that ran another's images again is scored, the same labels file
    scores the first job, and the two are set side by side with the change, as the API's own
    answers for that file say."""
    email, auth = await _api_account(stack)
    source = await _finished_job(stack, auth, VAL_IMAGES)
    async with httpx.AsyncClient(base_url=stack.gateway_url, timeout=60) as client:
        answer = await client.post(
            f"/api/v1/detect/jobs/{source['job_id']}/rerun?model=yolov8n-int8", headers=auth
        )
        assert answer.status_code == 202, answer.text
    rerun_id = answer.json()["job_id"]
    yolo, _, _ = _labels_files(tmp_path)

    await page.goto(f"/#/jobs/{rerun_id}")
    await log_in(page, email)
    await expect(page.get_by_test_id("job-rerun-of")).to_have_text(
        f"Ran again from job {source['job_id']}", timeout=SLOW_MS
    )
    await expect(page.get_by_test_id("job-progress")).to_have_attribute(
        "data-status", "completed", timeout=SLOW_MS
    )
    section = page.get_by_test_id("job-evaluation")
    compare = section.get_by_test_id("evaluation-compare")
    await section.get_by_test_id("evaluation-labels").set_input_files(yolo)
    await section.get_by_role("button", name="Evaluate", exact=True).click()
    await expect(section.get_by_test_id("evaluation-result")).to_be_visible(timeout=SLOW_MS)
    await expect(compare).to_be_visible()
    await expect(compare.get_by_test_id("evaluation-compare-table")).to_be_hidden()

    async with page.expect_request(f"**/api/v1/detect/jobs/{source['job_id']}/evaluation"):
        await compare.get_by_test_id("evaluation-compare-run").click()
    table = compare.get_by_test_id("evaluation-compare-table")
    await expect(table).to_be_visible(timeout=SLOW_MS)
    before = await _evaluated_by_the_api(stack, auth, source["job_id"], yolo)
    after = await _evaluated_by_the_api(stack, auth, rerun_id, yolo)
    await expect(table.locator("thead th")).to_have_text(
        ["Score", f"Job {source['job_id'][:8]} (yolov8n)", "This job (yolov8n-int8)", "Change"]
    )
    change = after["map50_95"] - before["map50_95"]
    sign = "" if f"{abs(change):.3f}" == "0.000" else ("+" if change > 0 else "\N{MINUS SIGN}")
    await expect(table.get_by_test_id("evaluation-compare-row").first).to_have_text(
        f"mAP50-95{before['map50_95']:.3f}{after['map50_95']:.3f}{sign}{abs(change):.3f}"
    )
    person = table.get_by_test_id("evaluation-compare-row").filter(has_text="person AP50-95")
    await expect(person).to_have_count(1)


async def test_the_historys_filtered_images_run_again_as_a_job_with_another_model(
    page: Page, stack: Stack
) -> None:
    """ADR 0058: "Run these images again with" on the History page sends its filters and the
    chosen model, and the new job's page follows it to the end."""
    email, auth = await _api_account(stack)
    async with httpx.AsyncClient(base_url=stack.gateway_url, timeout=60) as client:
        for path, camera in ((BUS, "north-gate"), (BATCH[0], "north-gate"), (BATCH[1], "yard")):
            stored = await client.post(
                "/api/v1/detect/image",
                files={"file": (path.name, path.read_bytes(), "image/jpeg")},
                data={"metadata": json.dumps({"camera": camera})},
                headers=auth,
            )
            assert stored.status_code == 200, stored.text
    await close_the_network(page, stack)
    await page.goto("/")
    await log_in(page, email)
    await page.get_by_role("link", name="History").click()
    await expect(page.get_by_test_id("history-item")).to_have_count(3, timeout=SLOW_MS)
    await page.get_by_test_id("history-metadata-filter").fill("camera:north-gate")
    await page.get_by_test_id("history-filter").click()
    await expect(page.get_by_test_id("history-item")).to_have_count(2, timeout=SLOW_MS)

    picker = page.get_by_test_id("history-rerun-model")
    await expect(picker).to_have_attribute("data-loaded", "true", timeout=SLOW_MS)
    await picker.select_option("yolov8n-int8")
    async with page.expect_request("**/api/v1/detect/history/rerun?*") as sent:
        await page.get_by_test_id("history-rerun").get_by_role("button", name="Run again").click()
    request = await sent.value
    assert "metadata=camera%3Anorth-gate" in request.url
    assert json.loads(request.post_data or "{}") == {"model": "yolov8n-int8"}
    progress = page.get_by_test_id("job-progress")
    await expect(progress).to_have_attribute("data-status", "completed", timeout=SLOW_MS)
    await expect(page.get_by_test_id("job-status")).to_contain_text("2 of 2 images (100 %)")
    assert "#/jobs/" in page.url


async def test_the_history_deletes_what_its_filters_keep_once_the_count_is_confirmed(
    page: Page, stack: Stack
) -> None:
    """Two images stored through the API with different metadata. Unfiltered, the history
    offers no deletion; filtered by one pair, it asks with the count first: a dismissed
    question deletes nothing, an accepted one deletes what the filter keeps, and the other
    image stays."""
    answers = iter([False, True])
    questions: list[str] = []

    async def answer(dialog: Dialog) -> None:
        questions.append(dialog.message)
        await (dialog.accept() if next(answers) else dialog.dismiss())

    page.on("dialog", answer)
    email, auth = await _api_account(stack)
    async with httpx.AsyncClient(base_url=stack.gateway_url, timeout=60) as client:
        for path, camera in ((BUS, "test-rig"), (BATCH[0], "north-gate")):
            stored = await client.post(
                "/api/v1/detect/image",
                files={"file": (path.name, path.read_bytes(), "image/jpeg")},
                data={"metadata": json.dumps({"camera": camera})},
                headers=auth,
            )
            assert stored.status_code == 200, stored.text
    await close_the_network(page, stack)
    await page.goto("/")
    await log_in(page, email)
    await page.get_by_role("link", name="History").click()
    cards = page.get_by_test_id("history-item")
    await expect(cards).to_have_count(2, timeout=SLOW_MS)
    delete = page.get_by_role("button", name="Delete the detections shown by these filters")
    await expect(delete).to_be_disabled()

    await page.get_by_test_id("history-metadata-filter").fill("camera:test-rig")
    await page.get_by_test_id("history-filter").click()
    await expect(cards).to_have_count(1, timeout=SLOW_MS)
    await expect(cards).to_have_attribute("data-filename", BUS.name)
    await expect(delete).to_be_enabled()
    await delete.click()  # dismissed: the next question still counts the one detection
    await eventually(lambda: questions, within=10.0, what="the question before deleting")
    await delete.click()

    await expect(page.get_by_test_id("status")).to_have_text("Deleted 1 detection.")
    await expect(page.get_by_test_id("history-list")).to_have_text(
        "No detections match these filters.", timeout=SLOW_MS
    )
    await expect(page.get_by_test_id("history-summary")).to_have_text("0 detections · 0 objects")
    question = "Delete 1 detection matching these filters, with its image? This cannot be undone."
    assert questions == [question, question]
    await page.get_by_test_id("history-clear").click()
    await expect(cards).to_have_count(1, timeout=SLOW_MS)
    await expect(cards).to_have_attribute("data-filename", BATCH[0].name)
    await expect(delete).to_be_disabled()


async def test_the_account_is_deleted_from_the_settings_page_with_its_password(
    page: Page, stack: Stack
) -> None:
    """A wrong password is named and deletes nothing, and so does a dismissed question; then
    the account goes: the page signs out and says so, and its password no longer logs in."""
    answers = iter([True, False, True])
    questions: list[str] = []

    async def answer(dialog: Dialog) -> None:
        questions.append(dialog.message)
        await (dialog.accept() if next(answers) else dialog.dismiss())

    page.on("dialog", answer)
    await close_the_network(page, stack)
    email = await sign_up_and_log_in(page)
    await page.get_by_role("link", name="Settings").click()
    form = page.get_by_test_id("delete-account-form")
    password = form.get_by_label("Your password")
    delete = form.get_by_role("button", name="Delete account")

    await password.fill("not my password")
    await delete.click()
    await expect(page.get_by_test_id("error")).to_contain_text(
        "That is not your password: nothing was deleted."
    )
    await expect(page.get_by_test_id("account-email")).to_have_text(email)
    await password.fill(PASSWORD)
    await delete.click()  # dismissed
    await expect(page.get_by_test_id("account-email")).to_have_text(email)
    await expect(password).to_have_value(PASSWORD)

    await delete.click()

    await expect(page.get_by_test_id("status")).to_contain_text(
        "The account was deleted", timeout=SLOW_MS
    )
    await expect(page.get_by_test_id("login-form")).to_be_visible()
    await expect(page.get_by_test_id("account-email")).to_be_hidden()
    assert await page.evaluate("key => sessionStorage.getItem(key)", SESSION_KEY) is None
    assert len(questions) == 3 and len(set(questions)) == 1
    assert "cannot be undone" in questions[0]
    login = page.get_by_test_id("login-form")
    await login.get_by_label("Email").fill(email)
    await login.get_by_label("Password").fill(PASSWORD)
    await login.get_by_role("button", name="Log in").click()
    await expect(page.get_by_test_id("error")).to_be_visible()
    await expect(page.get_by_test_id("account-email")).to_be_hidden()


# The Jobs page, and cancelling a job from its page.


async def test_the_jobs_page_lists_a_finished_batch_job_and_filters_by_status(
    page: Page, stack: Stack
) -> None:
    """`/jobs` (redirected to `/#/jobs`) opens the list after sign-in; the job links to its
    page; a status it is not in shows the empty list, and so does metadata it does not hold."""
    email, auth = await _api_account(stack)
    job = await _finished_job(stack, auth, BATCH[:2], metadata={"camera": "north-gate"})
    assert job["status"] == "completed", job
    elsewhere = await close_the_network(page, stack)

    await page.goto("/jobs")
    assert page.url == f"{stack.gateway_url}/#/jobs"
    await log_in(page, email)
    await expect(page.get_by_role("heading", name="Jobs")).to_be_visible()
    await expect(page.get_by_role("link", name="Jobs")).to_have_attribute("aria-current", "page")
    rows = page.get_by_test_id("job-row")
    await expect(rows).to_have_count(1, timeout=SLOW_MS)
    row = rows.first
    await expect(row).to_have_attribute("data-job-id", job["job_id"])
    await expect(row).to_have_attribute("data-status", "completed")
    await expect(row).to_have_attribute("data-kind", "batch")
    await expect(row).to_contain_text("Completed")
    await expect(row).to_contain_text("2 of 2 images")
    await expect(page.get_by_test_id("jobs-range")).to_have_text("1\N{EN DASH}1 of 1")
    await expect(page.get_by_role("button", name="Previous")).to_be_disabled()
    await expect(page.get_by_role("button", name="Next")).to_be_disabled()

    status = page.get_by_test_id("jobs-status")
    await status.select_option("pending")
    await expect(page.get_by_test_id("jobs-table")).to_contain_text("No pending jobs.")
    await expect(rows).to_have_count(0)
    await expect(page.get_by_test_id("jobs-range")).to_have_text("0\N{EN DASH}0 of 0")
    await status.select_option("completed")
    await expect(rows).to_have_count(1)
    await status.select_option("")
    await expect(rows).to_have_count(1)
    await expect(row.get_by_test_id("job-row-metadata")).to_have_text("camera=north-gate")
    await expect(row.locator('td[data-label="Model"]')).to_have_text("yolov8n")
    pair = page.get_by_test_id("jobs-metadata")
    await pair.fill("camera:south-gate")
    await pair.press("Enter")
    await expect(page.get_by_test_id("jobs-table")).to_contain_text("No jobs match these filters.")
    await pair.fill("camera:north-gate")
    await pair.press("Enter")
    await expect(rows).to_have_count(1)

    await row.get_by_role("link", name=f"Open job {job['job_id']}").click()
    assert page.url.endswith(f"/#/jobs/{job['job_id']}")
    await expect(page.get_by_test_id("job-id")).to_have_text(job["job_id"], timeout=SLOW_MS)
    await expect(page.get_by_test_id("job-status")).to_contain_text("2 of 2 images (100 %)")
    await expect(page.get_by_test_id("delete-job")).to_be_visible()
    await expect(page.get_by_test_id("cancel-job")).to_be_hidden()
    assert elsewhere == []


async def test_a_counting_video_job_shows_its_counts_so_far_before_it_ends(
    queued_page: Page, tmp_path: Path
) -> None:
    """A counting video job's tables are there while it waits or runs, as "so far": every
    zone listed, nothing counted yet. The counts a progress message brings replace those of
    the job it follows, which keeps the rest of its video."""
    from objectvision_devstack.videos import make_video

    page = queued_page
    clip = await asyncio.to_thread(make_video, tmp_path / "street.mp4", [(BUS, 10)], fps=10)
    await sign_up_and_log_in(page)
    await page.get_by_test_id("video-track").check()
    await page.get_by_test_id("video-zones").fill("bay: 0,0,640,0,640,480,0,480")
    await page.get_by_test_id("file-input").set_input_files(clip)

    progress = page.get_by_test_id("job-progress")
    await expect(progress).to_have_attribute("data-status", "pending", timeout=SLOW_MS)
    table = page.get_by_test_id("zone-counts")
    await expect(table).to_contain_text("Zone counts so far")
    cells = [text.split("\t") for text in await page.get_by_test_id("zone-count").all_inner_texts()]
    assert cells == [["bay", "\N{EM DASH}", "0", "0", "\N{EM DASH}"]]
    await expect(page.get_by_test_id("video-frames")).to_have_count(0)

    merged = await page.evaluate(
        """async () => {
          const { normaliseJob } = await import("./console/js/jobs.js");
          const job = normaliseJob({
            job_id: "j", status: "processing", kind: "video",
            video: { filename: "street.mp4", zones: [{ name: "bay" }], zone_counts: [] },
          });
          const count = { zone: "bay", class_id: 5, class_name: "bus", visited: 1, peak: 1,
                          mean_stay_seconds: 0.5 };
          return normaliseJob({ type: "job.progress", job_id: "j", processed: 4,
                                zone_counts: [count] }, job);
        }"""
    )
    assert merged["processed"] == 4 and merged["video"]["filename"] == "street.mp4"
    assert merged["video"]["zone_counts"] == [
        {
            "zone": "bay",
            "class_id": 5,
            "class_name": "bus",
            "visited": 1,
            "peak": 1,
            "mean_stay_seconds": 0.5,
        }
    ]


async def test_a_pending_job_is_cancelled_from_its_page_or_from_elsewhere(
    queued_page: Page, queued_stack: Stack, tmp_path: Path
) -> None:
    """No worker takes the jobs here, so they wait. Cancel asks first (a dismissed question
    sends nothing); then the job shows cancelled with Delete instead of Cancel. A video job
    cancelled elsewhere (another tab; here the API) loses its Cancel button when the page
    hears of it. The Jobs page lists both, the video by its file name."""
    from objectvision_devstack.videos import make_video

    page = queued_page
    answers = iter([False, True])
    questions: list[str] = []
    cancels: list[str] = []

    async def answer(dialog: Dialog) -> None:
        questions.append(dialog.message)
        await (dialog.accept() if next(answers) else dialog.dismiss())

    page.on("dialog", answer)
    page.on(
        "request",
        lambda request: cancels.append(request.url) if request.url.endswith("/cancel") else None,
    )
    # No worker runs in this stack: the job waits, and the page says so.
    waiting = "pending"
    await sign_up_and_log_in(page)
    await page.get_by_test_id("file-input").set_input_files(BATCH)
    progress = page.get_by_test_id("job-progress")
    await expect(progress).to_have_attribute("data-status", waiting, timeout=SLOW_MS)
    batch_id = await page.get_by_test_id("job-id").text_content()
    cancel = page.get_by_test_id("cancel-job")
    delete = page.get_by_test_id("delete-job")
    await expect(cancel).to_be_visible()
    await expect(delete).to_be_hidden()

    await cancel.click()  # dismissed: nothing is sent, the job still waits
    await expect(progress).to_have_attribute("data-status", waiting)
    await cancel.click()

    await expect(page.get_by_test_id("status")).to_have_text(
        "The job was cancelled after 0 images; what was done is kept."
    )
    await expect(progress).to_have_attribute("data-status", "cancelled")
    await expect(page.get_by_test_id("job-status")).to_contain_text("Cancelled: 0 of 3 images")
    await expect(cancel).to_be_hidden()
    await expect(delete).to_be_visible()
    # What a cancelled job did (here nothing) exports like a finished job's.
    await expect(page.get_by_test_id("job-exports")).to_be_visible()
    items = page.get_by_test_id("job-item")
    await expect(items).to_have_count(3)
    for item in await items.all():
        assert await item.get_attribute("data-status") == "cancelled"
    question = "Cancel this job? Images not yet processed will not be; what was done is kept."
    assert questions == [question, question]
    assert cancels == [f"{queued_stack.gateway_url}/api/v1/detect/jobs/{batch_id}/cancel"]

    clip = await asyncio.to_thread(make_video, tmp_path / "street.mp4", [(BUS, 10)], fps=10)
    await page.get_by_test_id("file-input").set_input_files(clip)
    await expect(page.get_by_role("heading", name="Video job")).to_be_visible(timeout=SLOW_MS)
    await expect(progress).to_have_attribute("data-status", waiting)
    await expect(cancel).to_be_visible()
    video_id = await page.get_by_test_id("job-id").text_content()
    assert video_id != batch_id
    token = await page.evaluate(
        "key => JSON.parse(sessionStorage.getItem(key)).accessToken", SESSION_KEY
    )
    async with httpx.AsyncClient(base_url=queued_stack.gateway_url, timeout=60) as client:
        elsewhere = await client.post(
            f"/api/v1/detect/jobs/{video_id}/cancel", headers={"Authorization": f"Bearer {token}"}
        )
    assert elsewhere.status_code == 200, elsewhere.text

    await expect(page.get_by_test_id("status")).to_have_text(
        "The job was cancelled after 0 frames; what was done is kept.", timeout=SLOW_MS
    )
    await expect(progress).to_have_attribute("data-status", "cancelled")
    await expect(cancel).to_be_hidden()
    await expect(delete).to_be_visible()

    await page.get_by_role("link", name="Jobs").click()
    rows = page.get_by_test_id("job-row")
    await expect(rows).to_have_count(2)
    await expect(rows.nth(0)).to_have_attribute("data-job-id", video_id)
    await expect(rows.nth(0)).to_contain_text("Video: street.mp4")
    await expect(rows.nth(1)).to_have_attribute("data-job-id", batch_id)
    for row in await rows.all():
        await expect(row).to_have_attribute("data-status", "cancelled")
    await page.get_by_test_id("jobs-status").select_option("pending")
    await expect(page.get_by_test_id("jobs-table")).to_contain_text("No pending jobs.")
    assert len(questions) == 2


async def test_an_admin_finds_suspends_and_restores_an_account(page: Page, stack: Stack) -> None:
    """The Accounts entry shows only where the access token says `admin`; a plain user who
    opens `#/accounts` sees the server's refusal. An admin finds an account by part of its
    email, suspends it (its password logs in no more) and restores it, the row following each
    answer; the admin's own row offers neither Suspend nor Demote."""
    page.on("dialog", lambda dialog: dialog.accept())
    async with httpx.AsyncClient(base_url=stack.gateway_url, timeout=60) as client:
        admin = await admin_signed_in(
            client, stack.database_url, prefix="console-admin", name="Admin"
        )

    # The account to suspend signs up here: a plain user, without the entry or the view.
    target = await sign_up_and_log_in(page)
    entry = page.get_by_role("link", name="Accounts")
    await expect(page.get_by_role("link", name="Settings")).to_be_visible()
    await expect(entry).to_be_hidden()
    await page.goto("/#/accounts")
    await expect(page.get_by_test_id("error")).to_have_attribute("data-code", "permission_denied")
    await expect(page.get_by_role("alert")).to_contain_text("not allowed")
    await page.get_by_role("button", name="Log out", exact=True).click()

    # Made admin before this login, so the console's token says so.
    await log_in(page, admin.email)
    await page.get_by_role("link", name="Detect").click()
    await entry.click()
    view = visible_view(page)
    await expect(view.get_by_role("heading", name="Accounts")).to_be_visible()
    search = view.get_by_label("Email or account id")
    rows = view.get_by_test_id("account-row")

    await search.fill(target.split("@")[0].removeprefix("ada-"))
    await view.get_by_role("button", name="Search").click()
    await expect(rows).to_have_count(1)
    await expect(view.get_by_test_id("accounts-range")).to_have_text("1\N{EN DASH}1 of 1")
    row = rows.and_(view.locator(f'[data-email="{target}"]'))
    state = row.locator('td[data-label="State"]')
    await expect(state).to_have_text("Active")
    await expect(row.locator('td[data-label="Role"]')).to_have_text("—")

    await row.get_by_role("button", name=f"Suspend {target}").click()
    await expect(row).to_have_attribute("data-active", "false")
    await expect(state).to_have_text("Suspended")
    await expect(page.get_by_test_id("status")).to_have_text(f"{target} is suspended.")
    async with httpx.AsyncClient(base_url=stack.gateway_url, timeout=60) as client:
        refused = await client.post(
            "/api/v1/auth/login",
            json={"email": target, "password": PASSWORD},
            headers=fresh_network(),
        )
    assert refused.status_code == 401, refused.text

    await row.get_by_role("button", name=f"Restore {target}").click()
    await expect(row).to_have_attribute("data-active", "true")
    await expect(state).to_have_text("Active")
    await expect(row.get_by_role("button", name=f"Suspend {target}")).to_be_visible()

    # By id: the admin's own row, which the server would not let them suspend or demote.
    await search.fill(admin.id)
    await view.get_by_role("button", name="Search").click()
    own = rows.and_(view.locator(f'[data-user-id="{admin.id}"]'))
    await expect(own).to_have_attribute("data-admin", "true")
    await expect(rows).to_have_count(1)
    await expect(own.get_by_role("button")).to_have_count(0)


# ADR 0048: share links.


async def test_a_shared_detection_is_seen_without_an_account_until_its_owner_revokes_the_link(
    page: Page, browser: Browser, stack: Stack
) -> None:
    """The owner opens a stored detection and creates a link in its Share section: the URL is
    shown once. A browser with no session opens it and sees the objects and the image, the
    token sent as the X-Share-Token header and never in a request's URL. The owner revokes the
    link; the viewer, reloaded, says so, with no sign-in in the way. A detection with 10
    active links refuses another, in the section."""
    email, auth = await _api_account(stack)
    async with httpx.AsyncClient(base_url=stack.gateway_url, timeout=60) as client:
        detected = await client.post(
            "/api/v1/detect/image",
            files={"file": ("gate-7.jpg", BUS.read_bytes(), "image/jpeg")},
            headers=auth,
        )
    assert detected.status_code == 200, detected.text
    detection_id = detected.json()["detection_id"]
    page.on("dialog", lambda dialog: dialog.accept())

    await page.goto(f"/#/detections/{detection_id}")
    await log_in(page, email)
    share = page.get_by_test_id("share")
    await expect(share).to_be_visible(timeout=SLOW_MS)
    lifetime = share.get_by_label("The link works for")
    await expect(lifetime).to_have_value("7")
    await expect(share.get_by_test_id("share-links")).to_contain_text("No links yet")
    await lifetime.select_option("1")
    await share.get_by_role("button", name="Create link").click()
    field = share.get_by_test_id("share-url")
    await expect(field).to_have_value(
        re.compile(rf"^{re.escape(stack.gateway_url)}/#/shared\?token=ovs_[\w-]{{43}}$")
    )
    await expect(field).to_have_attribute("readonly", "")
    await expect(share.get_by_test_id("share-new-link")).to_contain_text("shown only this once")
    await expect(share.get_by_role("button", name="Copy")).to_be_visible()
    url = await field.input_value()
    token = url.split("token=", 1)[1]
    row = share.get_by_test_id("share-link-row")
    await expect(row).to_have_count(1)
    await expect(row).to_have_attribute("data-state", "active")
    await expect(row.locator('td[data-label="Token"]')).to_have_text(f"{token[:12]}…")

    async with _console_page(browser, stack) as visitor:
        requests: list[Request] = []
        visitor.on("request", lambda sent: requests.append(sent))
        await visitor.goto(url)
        objects = visitor.get_by_test_id("shared-object")
        await expect(objects).to_have_count(5, timeout=SLOW_MS)
        shown = Counter([await item.get_attribute("data-class") for item in await objects.all()])
        assert shown == {"person": 4, "bus": 1}
        await expect(visitor.get_by_test_id("shared-summary")).to_have_text(
            "5 objects found: 4 person, 1 bus."
        )
        image = visitor.locator('[data-testid="shared-image"][data-loaded="true"]')
        await expect(image).to_have_attribute("data-annotated", "true", timeout=SLOW_MS)
        assert (await image.get_attribute("src") or "").startswith("blob:")
        width = detected.json()["image"]["width"]
        assert width > 0
        assert await image.evaluate("image => image.naturalWidth") == width
        await visitor.get_by_label("Show boxes").uncheck()
        await expect(image).to_have_attribute("data-annotated", "false", timeout=SLOW_MS)
        await expect(visitor.get_by_test_id("login-form")).to_be_hidden()
        await expect(visitor.locator("#nav")).to_be_hidden()

        reads = [sent for sent in requests if "/api/v1/shared" in sent.url]
        assert len(reads) == 3, [sent.url for sent in reads]
        for sent in reads:
            headers = await sent.all_headers()
            assert headers["x-share-token"] == token
            assert "authorization" not in headers
        assert not [sent.url for sent in requests if token in sent.url.split("#")[0]]

        await share.get_by_role("button", name=f"Revoke link {token[:12]}…").click()
        await expect(row).to_have_attribute("data-state", "revoked")
        await expect(row.get_by_role("button")).to_have_count(0)
        await expect(row.locator('td[data-label="Views"]')).to_contain_text("1, last ")
        await expect(field).to_have_count(0)

        await visitor.reload()
        message = visitor.get_by_test_id("shared-message")
        await expect(message).to_have_text("This link was revoked by its owner.")
        await expect(message).to_have_attribute("data-state", "share_link_revoked")
        await expect(visitor.get_by_test_id("shared-result")).to_be_hidden()
        await expect(visitor.get_by_test_id("login-form")).to_be_hidden()
        await visitor.goto(f"/#/shared?token=ovs_{uuid.uuid4().hex}")
        await expect(message).to_have_attribute("data-state", "share_link_not_found")
        await expect(message).to_contain_text("This link doesn't lead to anything")
    assert token not in (stack.logs_dir / "gateway.log").read_text(errors="replace")

    # The most active links a detection may have: one more is refused in the section.
    async with httpx.AsyncClient(base_url=stack.gateway_url, timeout=60) as client:
        for _ in range(10):
            made = await client.post(
                "/api/v1/share-links", json={"detection_id": detection_id}, headers=auth
            )
            assert made.status_code == 201, made.text
    await share.get_by_role("button", name="Create link").click()
    await expect(share.get_by_test_id("share-error")).to_contain_text("10 active share links")
    await expect(share.get_by_test_id("share-url")).to_have_count(0)
    await expect(row).to_have_count(11)


# ADR 0049: redacted images.


def _fine_detail(image: np.ndarray, box: dict[str, float]) -> float:
    """How much neighbouring pixels differ inside `box` (inset a few pixels from its edges):
    high in a photograph, near zero in flat blocks, whose only edges are between blocks."""
    x1, y1 = int(box["x1"]) + 4, int(box["y1"]) + 4
    x2, y2 = int(box["x2"]) - 4, int(box["y2"]) - 4
    region = image[y1:y2, x1:x2].astype(np.float32)
    across = np.abs(np.diff(region, axis=1)).mean()
    down = np.abs(np.diff(region, axis=0)).mean()
    return float(across + down)


async def test_a_link_that_pixelates_people_never_shows_them_even_without_boxes(
    page: Page, browser: Browser, stack: Stack
) -> None:
    """The owner ticks "Pixelate people" under the image (the console reloads it with
    redact=person), then in the Share section, and creates a link: the list says the link's
    people are pixelated. A browser with no session opens it and unticks "Show boxes": the
    image it is sent differs from the upload, and the largest person's box holds flat blocks
    (far less fine detail than in bus.jpg) while the picture above everyone is unchanged."""
    email, auth = await _api_account(stack)
    async with httpx.AsyncClient(base_url=stack.gateway_url, timeout=60) as client:
        detected = await client.post(
            "/api/v1/detect/image",
            files={"file": ("street.jpg", BUS.read_bytes(), "image/jpeg")},
            headers=auth,
        )
    assert detected.status_code == 200, detected.text
    detection_id = detected.json()["detection_id"]
    people = [item for item in detected.json()["detections"] if item["class"] == "person"]
    assert people

    await page.goto(f"/#/detections/{detection_id}")
    await log_in(page, email)
    stage_image = page.locator("#stage-image")
    await expect(stage_image).to_have_attribute("data-pixelated", "false", timeout=SLOW_MS)
    as_given = await stage_image.get_attribute("src")
    async with page.expect_response(
        lambda answer: f"/api/v1/detect/{detection_id}/image" in answer.url
    ) as answered:
        await page.get_by_test_id("stage-redact").check()
    pixelated = await answered.value
    assert pixelated.status == 200
    assert "redact=person" in pixelated.url and "annotated=false" in pixelated.url
    await expect(stage_image).to_have_attribute("data-pixelated", "true")
    assert (await stage_image.get_attribute("src") or "").startswith("blob:")
    assert await stage_image.get_attribute("src") != as_given
    await page.get_by_test_id("stage-redact").uncheck()
    await expect(stage_image).to_have_attribute("src", as_given or "")

    share = page.get_by_test_id("share")
    await expect(share).to_be_visible(timeout=SLOW_MS)
    await expect(share.get_by_test_id("share-form")).to_contain_text(
        "only the people the model found"
    )
    await share.get_by_label("Pixelate people").check()
    await share.get_by_role("button", name="Create link").click()
    field = share.get_by_test_id("share-url")
    await expect(field).to_have_value(re.compile(r"#/shared\?token=ovs_"))
    await expect(share.get_by_test_id("share-new-link")).to_contain_text("people pixelated")
    url = await field.input_value()
    row = share.get_by_test_id("share-link-row")
    await expect(row).to_have_attribute("data-redact", "person")
    await expect(row.get_by_test_id("share-link-redaction")).to_have_text("People pixelated")

    async with _console_page(browser, stack) as visitor:
        await visitor.goto(url)
        image = visitor.locator('[data-testid="shared-image"][data-loaded="true"]')
        await expect(image).to_have_attribute("data-annotated", "true", timeout=SLOW_MS)
        async with visitor.expect_response(
            lambda answer: "/api/v1/shared/image" in answer.url and "annotated=false" in answer.url
        ) as answered:
            await visitor.get_by_label("Show boxes").uncheck()
        answer = await answered.value
        assert (answer.status, answer.headers["content-type"]) == (200, "image/jpeg")
        await expect(image).to_have_attribute("data-annotated", "false", timeout=SLOW_MS)
        await expect(visitor.get_by_text("original image")).to_have_count(0)
        # The pixels the page shows, read back losslessly: the blob: URL cannot be fetched
        # under the console's connect-src, and Chromium keeps no body of a no-store answer.
        data_url = await image.evaluate(
            """image => {
                const canvas = document.createElement("canvas");
                canvas.width = image.naturalWidth;
                canvas.height = image.naturalHeight;
                canvas.getContext("2d").drawImage(image, 0, 0);
                return canvas.toDataURL("image/png");
            }"""
        )

    original = cv2.imdecode(np.frombuffer(BUS.read_bytes(), np.uint8), cv2.IMREAD_COLOR)
    png = base64.b64decode(data_url.split(",", 1)[1])
    shown = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_COLOR)
    assert shown is not None and shown.shape == original.shape
    largest = max(
        people,
        key=lambda item: (
            (item["bbox"]["x2"] - item["bbox"]["x1"]) * (item["bbox"]["y2"] - item["bbox"]["y1"])
        ),
    )
    before, after = _fine_detail(original, largest["bbox"]), _fine_detail(shown, largest["bbox"])
    assert after < 0.4 * before, (before, after)
    # Above every box nothing is pixelated: there, only the JPEG's re-encoding differs.
    top = int(min(item["bbox"]["y1"] for item in detected.json()["detections"])) - 2
    if top > 8:
        change = np.abs(shown[:top].astype(np.float32) - original[:top].astype(np.float32))
        assert float(change.mean()) < 6, float(change.mean())


async def test_a_video_job_can_pixelate_people_in_its_annotated_video(
    page: Page, tmp_path: Path
) -> None:
    """ADR 0049: "Pixelate people in the annotated video", with its hint that only the people
    the model found are covered, sends one `redact=person` field beside the file; the API's
    answer lists it (the job's `video.redact`), and the job's page says its people are
    pixelated from that answer on and still once the job has finished.

    Chromium does not expose a request body that holds a file, so the form's fields are read
    where the page hands them to fetch."""
    from objectvision_devstack.videos import make_video

    clip = await asyncio.to_thread(
        make_video,
        tmp_path / "street.mp4",
        [(BUS, 20), (IMAGES / "zidane.jpg", 20)],
        fps=10,
    )
    await page.add_init_script(
        """(() => {
            const fetched = window.fetch;
            window.videoForms = [];
            window.fetch = function (resource, options) {
                const body = options?.body;
                if (String(resource).includes("detect/video") && body instanceof FormData) {
                    window.videoForms.push([...body.entries()].map(([name, value]) =>
                        [name, typeof value === "string" ? value : `file:${value.name}`]));
                }
                return fetched.apply(this, arguments);
            };
        })();"""
    )
    await sign_up_and_log_in(page)

    await page.get_by_test_id("video-fps").fill("2")
    redact = page.get_by_label("Pixelate people in the annotated video")
    await expect(page.locator("#video-redact-hint")).to_contain_text(
        "only the people the model found"
    )
    await redact.check()
    async with page.expect_response(
        lambda answer: "/api/v1/detect/video" in answer.url and answer.request.method == "POST"
    ) as answered:
        await page.get_by_test_id("file-input").set_input_files(clip)
    submitted = await answered.value
    assert submitted.status == 202
    assert (await submitted.json())["video"]["redact"] == ["person"]
    (fields,) = await page.evaluate("window.videoForms")
    assert [field for field in fields if field[0] in ("file", "redact")] == [
        ["file", "file:street.mp4"],
        ["redact", "person"],
    ]

    redaction = page.get_by_test_id("video-redaction")
    await expect(redaction).to_have_text(
        "People pixelated in every frame of the annotated video (only those the model found).",
        timeout=SLOW_MS,
    )
    await expect(redaction).to_have_attribute("data-redact", "person")
    progress = page.get_by_test_id("job-progress")
    await expect(progress).to_have_attribute("data-status", "completed", timeout=SLOW_MS)
    await expect(page.get_by_test_id("video-frame")).to_have_count(8, timeout=SLOW_MS)
    await expect(redaction).to_contain_text("People pixelated")
    await expect(page.get_by_test_id("download-video")).to_be_visible()


# ADR 0052: share links for completed video jobs.


async def _finished_video_job(
    stack: Stack, auth: dict[str, str], clip: Path, fields: dict[str, str]
) -> dict:
    """A video job submitted through the API with `fields`, once it has completed."""
    data = await asyncio.to_thread(clip.read_bytes)
    async with httpx.AsyncClient(base_url=stack.gateway_url, timeout=60) as client:
        submitted = await client.post(
            "/api/v1/detect/video",
            files={"file": (clip.name, data, "video/mp4")},
            data=fields,
            headers=auth,
        )
        assert submitted.status_code == 202, submitted.text
        job_id = submitted.json()["job_id"]
        for _ in range(240):
            job = (await client.get(f"/api/v1/detect/jobs/{job_id}", headers=auth)).json()
            if job["status"] in ("completed", "failed", "cancelled"):
                assert job["status"] == "completed", job
                return job
            await asyncio.sleep(0.5)
    raise AssertionError(f"video job {job_id} did not finish: {job}")


async def test_a_shared_video_job_plays_its_annotated_video_without_an_account(
    page: Page, browser: Browser, stack: Stack, tmp_path: Path
) -> None:
    """A completed video job's page has a Share section like a detection's, without "Pixelate
    people" (its video is shared as the job drew it): the link it creates is shown once and
    listed with the job's links. A browser with no session opens it and sees the annotated
    video play from a blob: URL (fetched with the X-Share-Token header, never the token in a
    URL), the objects per class the job found, its line counts, the model and the expiry."""
    from objectvision_devstack.videos import panned, write_video

    clip = await asyncio.to_thread(
        lambda: write_video(tmp_path / "gate.mp4", panned(BUS, 8, step=6), fps=10)
    )
    email, auth = await _api_account(stack)
    lines = [{"name": "gate", "start": [320, 0], "end": [320, 480]}]
    job = await _finished_video_job(
        stack, auth, clip, {"fps": "10", "track": "true", "lines": json.dumps(lines)}
    )
    job_id = job["job_id"]
    assert job["class_counts"], job

    await page.goto(f"/#/jobs/{job_id}")
    await log_in(page, email)
    share = page.get_by_test_id("job-share")
    await expect(share).to_be_visible(timeout=SLOW_MS)
    await expect(page.get_by_test_id("share")).to_be_hidden()
    await expect(share).to_contain_text("shared as the job drew it")
    await expect(share.get_by_label("Pixelate people")).to_have_count(0)
    await expect(share.get_by_test_id("share-links")).to_contain_text(
        "No links yet: this video job is not shared."
    )
    await share.get_by_label("The link works for").select_option("30")
    async with page.expect_request(
        lambda sent: sent.url.endswith("/api/v1/share-links") and sent.method == "POST"
    ) as posted:
        await share.get_by_role("button", name="Create link").click()
    assert (await posted.value).post_data_json == {"job_id": job_id, "expires_in_days": 30}
    field = share.get_by_test_id("share-url")
    await expect(field).to_have_value(
        re.compile(rf"^{re.escape(stack.gateway_url)}/#/shared\?token=ovs_[\w-]{{43}}$")
    )
    await expect(share.get_by_test_id("share-new-link")).to_contain_text(
        "this job's annotated video and what it counted"
    )
    url = await field.input_value()
    token = url.split("token=", 1)[1]
    row = share.get_by_test_id("share-link-row")
    await expect(row).to_have_count(1)
    await expect(row).to_have_attribute("data-state", "active")
    await expect(row.get_by_test_id("share-link-redaction")).to_have_text("As the job drew it")
    async with httpx.AsyncClient(base_url=stack.gateway_url, timeout=60) as client:
        listed = await client.get("/api/v1/share-links", params={"job_id": job_id}, headers=auth)
    assert [(link["job_id"], link["detection_id"]) for link in listed.json()["items"]] == [
        (job_id, None)
    ]

    async with _console_page(browser, stack) as visitor:
        requests: list[Request] = []
        visitor.on("request", lambda sent: requests.append(sent))
        await visitor.goto(url)
        await expect(visitor.get_by_test_id("shared-title")).to_have_text("Shared video")
        video = visitor.locator('[data-testid="shared-video"][data-loaded="true"]')
        await expect(video).to_be_visible(timeout=SLOW_MS)
        assert (await video.get_attribute("src") or "").startswith("blob:")
        assert await video.evaluate("video => video.controls")
        played = await video.evaluate(
            "video => ({ state: video.readyState, duration: video.duration,"
            " width: video.videoWidth, error: video.error && video.error.code })"
        )
        assert played["error"] is None and played["state"] >= 1, played
        assert played["duration"] > 0 and played["width"] == 640, played
        await expect(visitor.get_by_test_id("shared-result")).to_be_hidden()

        counts = visitor.get_by_test_id("shared-count")
        await expect(counts).to_have_count(len(job["class_counts"]))
        shown = {
            await item.get_attribute("data-class"): int(await item.get_attribute("data-count") or 0)
            for item in await counts.all()
        }
        assert shown == job["class_counts"]
        facts = visitor.get_by_test_id("shared-video-facts")
        await expect(facts).to_contain_text(f"{job['video']['duration_seconds']:.1f} s")
        await expect(facts).to_contain_text("8 frames")
        await expect(facts).to_contain_text(job["model"])
        await expect(facts).to_contain_text("Link works until")
        line_rows = visitor.get_by_test_id("line-count")
        await expect(line_rows.first).to_contain_text("gate")
        cells = [text.split("\t") for text in await line_rows.all_inner_texts()]
        counted = sorted(job["video"]["line_counts"], key=lambda count: count["class_name"])
        expected = [
            ["gate", count["class_name"], str(count["crossed_in"]), str(count["crossed_out"])]
            for count in counted
        ] or [["gate", "\N{EM DASH}", "0", "0"]]
        assert cells == expected
        await expect(visitor.get_by_test_id("login-form")).to_be_hidden()

        reads = [sent for sent in requests if "/api/v1/shared" in sent.url]
        assert sorted(sent.url.split("/api/v1/")[1] for sent in reads) == [
            "shared",
            "shared/video",
        ]
        for sent in reads:
            headers = await sent.all_headers()
            assert headers["x-share-token"] == token
            assert "authorization" not in headers
        assert not [sent.url for sent in requests if token in sent.url.split("#")[0]]

    # The owner's list, read again, counts the visitor's view.
    await page.reload()
    await expect(share.get_by_test_id("share-link-row")).to_have_count(1, timeout=SLOW_MS)
    await expect(share.locator('td[data-label="Views"]')).to_contain_text("1, last ")
    await expect(share.get_by_test_id("share-url")).to_have_count(0)


# ADR 0059: the Live page, the camera's picture detected over /api/v1/ws/detect.

# Chromium's fake camera, allowed without asking: a file it plays in a loop, 30 frames a
# second. The flags are read at launch, so these tests launch a Chromium of their own.
FAKE_CAMERA_ARGS = ["--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream"]
LIVE_STREAM = re.compile(r".*/api/v1/ws/detect$")


def _bus_camera(path: Path, frames: int = 30) -> Path:
    """A second of bus.jpg as MJPEG (JPEGs one after another), a format the fake camera plays."""
    encoded = cv2.imencode(".jpg", cv2.imread(str(BUS)), [cv2.IMWRITE_JPEG_QUALITY, 95])[1]
    path.write_bytes(encoded.tobytes() * frames)
    return path


@asynccontextmanager
async def _camera_browser(chromium: Path, camera: Path) -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(
            executable_path=str(chromium),
            args=[*CHROMIUM_ARGS, *FAKE_CAMERA_ARGS, f"--use-file-for-fake-video-capture={camera}"],
        )
        try:
            yield launched
        finally:
            await launched.close()


# A relayed stream's URL and every message of it, in order: ("sent", message) from the page,
# ("received", message) from the gateway, ("page closed", code), ("server closed", code).
StreamRecord = list[tuple[str, str | bytes | int | None]]


async def _relay_streams(page: Page) -> list[tuple[str, StreamRecord]]:
    """Pass each live stream the page opens through the test to the gateway, every message
    noted each way (the browser does not report the binary frames a page sends)."""
    streams: list[tuple[str, StreamRecord]] = []

    def relay(socket: WebSocketRoute) -> None:
        frames: StreamRecord = []
        streams.append((socket.url, frames))
        server = socket.connect_to_server()

        def to_server(message: str | bytes) -> None:
            frames.append(("sent", message))
            server.send(message)

        def to_page(message: str | bytes) -> None:
            frames.append(("received", message))
            socket.send(message)

        async def page_closed(code: int | None, reason: str | None) -> None:
            frames.append(("page closed", code))
            await server.close(code=code, reason=reason)

        async def server_closed(code: int | None, reason: str | None) -> None:
            frames.append(("server closed", code))
            await socket.close(code=code, reason=reason)

        socket.on_message(to_server)
        server.on_message(to_page)
        socket.on_close(page_closed)
        server.on_close(server_closed)

    await page.route_web_socket(LIVE_STREAM, relay)
    return streams


async def _overlay_colours_near(page: Page, x: float, y: float, radius: int = 3) -> set[str]:
    """The colours (#rrggbb) the overlay has drawn, opaque, within `radius` CSS pixels of the
    point (x, y) of the canvas."""
    colours = await page.get_by_test_id("live-overlay").evaluate(
        """(canvas, [x, y, radius]) => {
          const ratio = canvas.width / canvas.clientWidth;
          const side = Math.round((2 * radius + 1) * ratio);
          const pixels = canvas.getContext("2d").getImageData(
            Math.round((x - radius) * ratio), Math.round((y - radius) * ratio), side, side).data;
          const found = [];
          for (let i = 0; i < pixels.length; i += 4) {
            if (pixels[i + 3] !== 255) continue;
            const hex = [0, 1, 2].map((c) => pixels[i + c].toString(16).padStart(2, "0"));
            found.push(`#${hex.join("")}`);
          }
          return found;
        }""",
        [x, y, radius],
    )
    return set(colours)


async def test_the_live_page_detects_the_cameras_picture_until_it_is_stopped(
    chromium: Path, stack: Stack, tmp_path: Path
) -> None:
    """Start opens the camera and the stream (the token, then the settings); no more frames
    than `max_in_flight` are ever unanswered; each answer redraws the boxes over the video,
    scaled to its size on screen, and the readouts, and the counts are the API's own for the
    picture. Stop sends `end` and gets every answer owed, `ended` and the server's close, with
    the camera released and no error. Tracking labels each object with its id, and leaving the
    view ends the stream as Stop does."""
    camera = _bus_camera(tmp_path / "bus.mjpeg")
    async with _camera_browser(chromium, camera) as browser, _console_page(browser, stack) as page:
        streams = await _relay_streams(page)
        await sign_up_and_log_in(page)
        await page.get_by_role("link", name="Live").click()
        await expect(page.get_by_role("heading", name="Live detection")).to_be_visible()
        await expect(page.get_by_test_id("live-model")).to_have_attribute(
            "data-loaded", "true", timeout=SLOW_MS
        )
        await expect(page.get_by_test_id("live-stop")).to_be_disabled()
        await page.get_by_test_id("live-start").click()
        status = page.get_by_test_id("live-status")
        await expect(status).to_have_attribute("data-state", "running", timeout=SLOW_MS)
        await expect(page.get_by_test_id("live-video")).to_be_visible()
        # Frames keep being answered: past a handful, the first one's slow start behind them.
        frames_answered = page.get_by_test_id("live-frames")
        await expect(frames_answered).not_to_have_text(re.compile(r"^[0-9]$"), timeout=SLOW_MS)
        # The camera's picture is bus.jpg, a bus and four people (as the API finds them in the
        # file; the frame the page encodes may hold a marginal object more or less).
        await expect(page.locator('[data-testid="live-count"][data-class="bus"]')).to_have_text(
            "bus 1"
        )
        await expect(page.locator('[data-testid="live-count"][data-class="person"]')).to_have_text(
            "person 4"
        )
        # The API finds in a frame the page sent what the stream found in it: the same boxes,
        # and the counts the page shows.
        [(_, frames)] = streams
        sent_frames = [payload for way, payload in frames if isinstance(payload, bytes)]
        streamed = [
            message
            for way, payload in frames
            if way == "received" and (message := json.loads(str(payload)))["type"] == "detections"
        ][-1]
        sent_frame = sent_frames[streamed["sequence"] - 1]
        assert isinstance(sent_frame, bytes) and sent_frame.startswith(b"\xff\xd8")
        token = await page.evaluate(
            "key => JSON.parse(sessionStorage.getItem(key)).accessToken", SESSION_KEY
        )
        detected = await page.request.post(
            "/api/v1/detect/image",
            multipart={
                "file": {"name": "frame.jpg", "mimeType": "image/jpeg", "buffer": sent_frame},
                "store": "false",
            },
            headers={"Authorization": f"Bearer {token}"},
        )
        assert detected.ok, await detected.text()
        answer = await detected.json()
        expected = answer["detections"]
        frame_size = (streamed["image"]["width"], streamed["image"]["height"])
        assert frame_size == (answer["image"]["width"], answer["image"]["height"]) == (810, 1080)
        assert [(found["class"], found["bbox"]) for found in streamed["detections"]] == [
            (found["class"], pytest.approx(found["bbox"], abs=0.5)) for found in expected
        ]
        counted = sorted(Counter(found["class"] for found in expected).items())
        await expect(page.get_by_test_id("live-count")).to_have_text(
            [f"{name} {count}" for name, count in sorted(counted, key=lambda pair: -pair[1])]
        )
        await expect(page.get_by_test_id("live-fps")).to_have_text(re.compile(r"^\d+\.\d$"))
        await expect(page.get_by_test_id("live-latency")).to_have_text(re.compile(r"^\d+ ms$"))

        # The boxes, scaled from the frame's pixels to the video as shown: the bus's top edge
        # is drawn where the API's box puts it, in the palette's colour for a bus.
        overlay = page.get_by_test_id("live-overlay")
        await expect(overlay).to_have_attribute("data-boxes", str(len(expected)))
        await expect(overlay).to_have_attribute("data-labels", re.compile(r"\bbus 0\.\d\d\b"))
        assert "#" not in (await overlay.get_attribute("data-labels") or "")
        shown = await page.get_by_test_id("live-video").evaluate(
            "video => ({ width: video.clientWidth, height: video.clientHeight,"
            " frameWidth: video.videoWidth, frameHeight: video.videoHeight })"
        )
        assert (shown["frameWidth"], shown["frameHeight"]) == (810, 1080), shown
        assert shown["width"] < shown["frameWidth"], "the video is shown smaller than its frames"
        bus_colour = await page.evaluate(
            "async () => (await import('./console/js/palette.js')).classColour(5)"
        )
        (bus,) = (found["bbox"] for found in expected if found["class"] == "bus")
        scale = shown["width"] / shown["frameWidth"]
        top_edge = ((bus["x1"] + bus["x2"]) / 2 * scale, bus["y1"] * scale)
        assert bus_colour in await _overlay_colours_near(page, *top_edge)
        assert bus_colour not in await _overlay_colours_near(page, top_edge[0], top_edge[1] + 20)

        await page.get_by_test_id("live-stop").click()
        await expect(status).to_have_attribute("data-state", "stopped", timeout=SLOW_MS)
        await expect(page.get_by_test_id("live-error")).to_be_hidden()
        await expect(page.get_by_test_id("live-stage")).to_be_hidden()
        assert await page.get_by_test_id("live-video").evaluate("video => video.srcObject") is None
        await expect(page.get_by_test_id("live-start")).to_be_enabled()

        [(url, _)] = streams
        assert url == f"{stack.gateway_url.replace('http', 'ws', 1)}/api/v1/ws/detect"
        # The server closed the stream, normally, once it had said `ended`.
        await eventually(
            lambda: ("server closed", 1000) in frames, within=20, what="the stream's close"
        )
        texts = [(way, json.loads(text)) for way, text in frames if isinstance(text, str)]
        assert texts[0] == ("sent", {"token": token})
        assert texts[1] == ("sent", {"confidence": 0.25, "track": False, "model": "yolov8n"})
        ready = texts[2][1]
        assert ready["type"] == "ready" and ready["max_in_flight"] >= 1, ready
        # `end` is the last thing sent; the answers still owed and `ended` come after it.
        [end] = [at for at, frame in enumerate(frames) if frame == ("sent", '{"type":"end"}')]
        assert not [way for way, _ in frames[end + 1 :] if way == "sent"]
        sent = sum(1 for way, payload in frames if way == "sent" and isinstance(payload, bytes))
        assert texts[-1] == ("received", {"type": "ended", "frames": sent})
        await expect(status).to_have_text(f"Stopped after {sent} frames detected.")
        await expect(frames_answered).to_have_text(str(sent))
        # Never more frames out than the server allows: camera frames were skipped instead.
        unanswered = most = 0
        for way, payload in frames:
            if way == "sent" and isinstance(payload, bytes):
                unanswered += 1
            elif way == "received" and json.loads(str(payload)).get("type") == "detections":
                unanswered -= 1
            most = max(most, unanswered)
        assert most <= ready["max_in_flight"], most

        # Tracking: each object is labelled with its track id once the tracker confirms it.
        await page.get_by_test_id("live-track").check()
        await page.get_by_test_id("live-start").click()
        await expect(overlay).to_have_attribute(
            "data-labels", re.compile(r"#\d+ bus 0\.\d\d\b"), timeout=SLOW_MS
        )
        assert len(streams) == 2
        tracked = streams[1][1]
        assert json.loads(str(tracked[1][1]))["track"] is True
        # Leaving the view ends the stream as Stop does, and releases the camera.
        await page.get_by_role("link", name="Detect").click()
        await eventually(
            lambda: ("server closed", 1000) in tracked, within=20, what="the tracked close"
        )
        assert ("sent", '{"type":"end"}') in tracked
        assert await page.get_by_test_id("live-video").evaluate("video => video.srcObject") is None
        await page.get_by_role("link", name="Live").click()
        await expect(status).to_have_attribute("data-state", "stopped")
        await expect(page.get_by_test_id("live-error")).to_be_hidden()


# The counting line's scene: bus.jpg panned right a few pixels a frame, each frame filmed
# LINE_CAMERA_REPEAT times, so the fake camera (30 frames a second, looping) shows the bus
# moving right for about a second, then jumping back.
LINE_CAMERA_REPEAT = 4


def _panning_camera(path: Path, frames: list[np.ndarray]) -> Path:
    """A fake camera's MJPEG file at `path`: the frames in order, each LINE_CAMERA_REPEAT
    times (the camera loops the file)."""
    jpegs = [cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, 95])[1] for frame in frames]
    path.write_bytes(b"".join(jpeg.tobytes() for jpeg in jpegs for _ in range(LINE_CAMERA_REPEAT)))
    return path


async def _counting_on_the_live_page(page: Page, mode: str) -> Locator:
    """A new user on the Live page with the counting box `mode` checked (which checks
    tracking too) and the camera started; the status line, once running."""
    await sign_up_and_log_in(page)
    await page.goto("/#/live")
    await expect(page.get_by_test_id("live-model")).to_have_attribute(
        "data-loaded", "true", timeout=SLOW_MS
    )
    await page.get_by_test_id(mode).check()
    await expect(page.get_by_test_id("live-track")).to_be_checked()
    await page.get_by_test_id("live-start").click()
    status = page.get_by_test_id("live-status")
    await expect(status).to_have_attribute("data-state", "running", timeout=SLOW_MS)
    return status


async def test_a_line_drawn_on_the_live_picture_counts_the_crossings_each_way(
    chromium: Path,
    stack: Stack,
    tmp_path: Path,
    panned_frames: list[np.ndarray],
    bus_passes_x: int,
) -> None:
    """With "Count a line" (which turns tracking on), a drag across the picture draws the line
    in the sent frames' pixels; the stream opens again with it as its `lines`, the camera kept,
    and the crossings the answers report are added up each way. The bus passes the line
    halfway through its pan, so the stream sees it cross "in"; the page's totals are exactly
    the crossings of the answers it got."""
    camera = _panning_camera(tmp_path / "pan.mjpeg", panned_frames)
    async with _camera_browser(chromium, camera) as browser, _console_page(browser, stack) as page:
        streams = await _relay_streams(page)
        status = await _counting_on_the_live_page(page, "live-line")
        counts = page.get_by_test_id("live-line-counts")
        await expect(counts).to_have_text("Drag across the picture to draw the line.")

        # A vertical line where the bus passes, drawn top to bottom on the picture as shown.
        video = await page.get_by_test_id("live-video").bounding_box()
        assert video is not None
        width, height = PANNED_SIZE
        scale = video["width"] / width
        x = video["x"] + bus_passes_x * scale
        await page.mouse.move(x, video["y"] + 0.1 * video["height"])
        await page.mouse.down()
        await page.mouse.move(x, video["y"] + 0.9 * video["height"], steps=8)
        await page.mouse.up()

        await eventually(lambda: len(streams) == 2, within=30, what="the stream opened again")
        await expect(status).to_have_attribute("data-state", "running", timeout=SLOW_MS)
        await expect(counts).to_have_text(re.compile(r"^\d+ in · \d+ out$"))
        overlay = page.get_by_test_id("live-overlay")
        drawn = [float(v) for v in (await overlay.get_attribute("data-line") or "").split(",")]
        assert drawn == pytest.approx(
            [bus_passes_x, 0.1 * height, bus_passes_x, 0.9 * height], abs=1.5
        ), drawn
        # The line is drawn over the picture halfway along: white over its dark edge.
        near = await _overlay_colours_near(page, x - video["x"], video["height"] / 2)
        assert {"#ffffff", "#111827"} <= near, near

        # The first stream was closed for the second, which carries the line.
        first, second = (record for _, record in streams)
        assert ("page closed", 1000) in first
        settings = json.loads(str(second[1][1]))
        assert settings["track"] is True
        [line] = settings["lines"]
        assert line["name"] == "line"
        assert [*line["start"], *line["end"]] == drawn

        await expect(counts).not_to_have_attribute("data-in", "0", timeout=SLOW_MS)
        await page.get_by_test_id("live-stop").click()
        await expect(status).to_have_attribute("data-state", "stopped", timeout=SLOW_MS)
        crossings = [
            crossing
            for way, payload in second
            if way == "received" and isinstance(payload, str)
            for crossing in json.loads(payload).get("crossings", [])
        ]
        crossed = Counter(crossing["direction"] for crossing in crossings)
        assert crossed["in"] >= 1
        await expect(counts).to_have_attribute("data-in", str(crossed["in"]))
        await expect(counts).to_have_attribute("data-out", str(crossed["out"]))
        await expect(counts).to_have_text(f"{crossed['in']} in · {crossed['out']} out")
        # And per class, as the answers' crossings name them.
        by_class = Counter(
            (crossing["class_name"], crossing["direction"]) for crossing in crossings
        )
        assert by_class[("bus", "in")] >= 1
        assert await _class_counts(page) == {
            name: (by_class[(name, "in")], by_class[(name, "out")], 0)
            for name in {name for name, _ in by_class}
        }
        await expect(
            page.locator('[data-testid="live-class-count"][data-class="bus"]')
        ).to_have_text(f"bus: {by_class[('bus', 'in')]} in · {by_class[('bus', 'out')]} out")


async def _class_counts(page: Page) -> dict[str, tuple[int, int, int]]:
    """The Live page's counts per class: class name -> (in, out, visited)."""
    rows = await page.get_by_test_id("live-class-count").evaluate_all(
        "items => items.map(item => [item.dataset.class,"
        " [+item.dataset.in, +item.dataset.out, +item.dataset.visited]])"
    )
    return {name: (counts[0], counts[1], counts[2]) for name, counts in rows}


async def test_a_zone_drawn_on_the_live_picture_counts_who_stands_in_it(
    chromium: Path,
    stack: Stack,
    tmp_path: Path,
    panned_frames: list[np.ndarray],
    bus_passes_x: int,
) -> None:
    """With "Count in a zone" (which turns tracking on), clicks place a zone's corners in the
    sent frames' pixels. Corners whose edges cross are refused on the page, said why, and no
    stream is opened for them; a zone closed on its first corner opens the stream again with it
    as its `zones`, the camera kept. The page says how many objects stand in it in the last
    frame answered and how many tracks were seen in it, exactly as the answers name them: the
    bus, panned right, walks into the zone from the middle of the picture to its right edge."""
    camera = _panning_camera(tmp_path / "pan.mjpeg", panned_frames)
    async with _camera_browser(chromium, camera) as browser, _console_page(browser, stack) as page:
        streams = await _relay_streams(page)
        status = await _counting_on_the_live_page(page, "live-zone")
        counts = page.get_by_test_id("live-zone-counts")
        await expect(counts).to_have_text(
            "Click the zone's corners on the picture, then its first corner again."
        )
        await expect(page.get_by_test_id("live-line-counts")).to_have_text("—")

        # Each click must land on the picture: all of it in the window.
        await page.get_by_test_id("live-video").scroll_into_view_if_needed()
        video = await page.get_by_test_id("live-video").bounding_box()
        assert video is not None
        width, height = PANNED_SIZE
        scale = video["width"] / width
        overlay = page.get_by_test_id("live-overlay")

        async def click_at(x: float, y: float) -> None:
            await page.mouse.click(video["x"] + x * scale, video["y"] + y * scale)

        # A bow tie: its first and third edges cross. Enter closes it; the page refuses it.
        for corner in [(100, 100), (300, 300), (300, 100), (100, 300)]:
            await click_at(*corner)
        await expect(overlay).to_have_attribute("data-corners", "4")
        await page.keyboard.press("Enter")
        await expect(status).to_have_text(
            "The zone's edges cross: click its corners in order around it. Draw it again."
        )
        await expect(overlay).to_have_attribute("data-corners", "0")
        await expect(overlay).to_have_attribute("data-zone", "")
        assert len(streams) == 1

        # From where the bus passes halfway to the right edge, closed on its first corner. The
        # right-hand corners are clicked 3 pixels short of the edge: the page puts them on it.
        corners = [
            (bus_passes_x, 0.05 * height),
            (width, 0.05 * height),
            (width, 0.95 * height),
            (bus_passes_x, 0.95 * height),
        ]
        for x, y in corners:
            await click_at(min(x, width - 3 / scale), y)
        # Closed with a double click: its second click starts no new zone.
        first_x, first_y = corners[0]
        await page.mouse.dblclick(video["x"] + first_x * scale, video["y"] + first_y * scale)
        await eventually(lambda: len(streams) == 2, within=30, what="the stream opened again")
        await expect(overlay).to_have_attribute("data-corners", "0")
        await expect(status).to_have_attribute("data-state", "running", timeout=SLOW_MS)
        await expect(counts).to_have_text(re.compile(r"^\d+ now · \d+ visited$"))
        drawn = [float(v) for v in (await overlay.get_attribute("data-zone") or "").split(",")]
        assert drawn == pytest.approx([v for corner in corners for v in corner], abs=1.5), drawn
        # The zone's edge is drawn over the picture: white over its dark edge.
        left_edge = await _overlay_colours_near(page, bus_passes_x * scale, video["height"] / 2)
        assert {"#ffffff", "#111827"} <= left_edge, left_edge

        first, second = (record for _, record in streams)
        assert ("page closed", 1000) in first
        settings = json.loads(str(second[1][1]))
        assert settings["track"] is True and "lines" not in settings
        [zone] = settings["zones"]
        assert zone["name"] == "zone"
        assert [v for corner in zone["polygon"] for v in corner] == drawn

        def in_zone() -> list[list[dict[str, Any]]]:
            """Each answer's objects standing in the zone, in the order the page got them."""
            return [
                [found for found in message["detections"] if "zone" in found["zones"]]
                for way, payload in second
                if way == "received"
                and isinstance(payload, str)
                and (message := json.loads(payload))["type"] == "detections"
            ]

        await eventually(
            lambda: any(found["class"] == "bus" for frame in in_zone() for found in frame),
            within=60,
            what="the bus standing in the zone",
        )
        await expect(counts).not_to_have_attribute("data-visited", "0")
        await page.get_by_test_id("live-stop").click()
        await expect(status).to_have_attribute("data-state", "stopped", timeout=SLOW_MS)
        inside = in_zone()
        visited = {found["track_id"] for frame in inside for found in frame} - {None}
        await expect(counts).to_have_attribute("data-visited", str(len(visited)))
        await expect(counts).to_have_attribute("data-now", str(len(inside[-1])))
        await expect(counts).to_have_text(f"{len(inside[-1])} now · {len(visited)} visited")
        visitors: dict[str, set[int]] = {}
        for frame in inside:
            for found in frame:
                if found["track_id"] is not None:
                    visitors.setdefault(found["class"], set()).add(found["track_id"])
        assert await _class_counts(page) == {
            name: (0, 0, len(tracks)) for name, tracks in visitors.items()
        }
        await expect(
            page.locator('[data-testid="live-class-count"][data-class="bus"]')
        ).to_have_text(f"bus: {len(visitors['bus'])} visited")


async def test_the_live_page_says_a_frames_error_and_goes_on_then_why_the_stream_ended(
    chromium: Path, stack: Stack, tmp_path: Path
) -> None:
    """The server is played by the test (page.route_web_socket), so each case is certain: a
    `frame_error` answer is said in the status line and the stream goes on; with
    `max_in_flight` frames unanswered no more are sent; an `error` message and the close after
    it are said as the stream's end, and the camera is released."""
    camera = _bus_camera(tmp_path / "bus.mjpeg")
    async with _camera_browser(chromium, camera) as browser, _console_page(browser, stack) as page:
        served: list[WebSocketRoute] = []
        received: list[str | bytes] = []

        def serve(socket: WebSocketRoute) -> None:
            served.append(socket)

            def answer(message: str | bytes) -> None:
                received.append(message)
                frames = sum(isinstance(item, bytes) for item in received)
                if isinstance(message, str):
                    if len(received) == 2:
                        ready = {"type": "ready", "max_frame_bytes": 10_000_000, "max_in_flight": 2}
                        socket.send(json.dumps(ready))
                elif frames == 1:
                    socket.send(
                        json.dumps(
                            {
                                "type": "frame_error",
                                "sequence": 1,
                                "message": "over this month's quota of images",
                            }
                        )
                    )
                elif frames == 2:
                    bus = {"x1": 17.0, "y1": 231.0, "x2": 801.0, "y2": 768.0}
                    found = {
                        "class": "bus",
                        "class_id": 5,
                        "confidence": 0.87,
                        "bbox": {**bus, "width": 784.0, "height": 537.0},
                        "track_id": None,
                        "zones": [],
                    }
                    socket.send(
                        json.dumps(
                            {
                                "type": "detections",
                                "sequence": 2,
                                "image": {"width": 810, "height": 1080},
                                "detections": [found],
                                "counts": {"bus": 1},
                                "crossings": [],
                                "timings": {"total_ms": 12.5},
                                "cached": False,
                                "model": "yolov8n",
                                "model_version": "1",
                            }
                        )
                    )
                # Later frames stay unanswered.

            socket.on_message(answer)

        await page.route_web_socket(LIVE_STREAM, serve)
        await sign_up_and_log_in(page)
        await page.goto("/#/live")
        await page.get_by_test_id("live-start").click()

        status = page.get_by_test_id("live-status")
        await expect(status).to_have_text(
            "Frame 1 could not be detected: over this month's quota of images (1 frame so far).",
            timeout=SLOW_MS,
        )
        await expect(status).to_have_attribute("data-state", "running")
        await expect(page.get_by_test_id("live-frames")).to_have_text("1")
        await expect(page.get_by_test_id("live-count")).to_have_text(["bus 1"])
        overlay = page.get_by_test_id("live-overlay")
        await expect(overlay).to_have_attribute("data-labels", "bus 0.87")
        # Two frames out unanswered (3 and 4): the camera's next frames are skipped, not sent.
        await eventually(
            lambda: sum(isinstance(item, bytes) for item in received) == 4,
            within=20,
            what="frames 3 and 4",
        )
        await asyncio.sleep(1.0)
        assert sum(isinstance(item, bytes) for item in received) == 4
        await expect(page.get_by_test_id("live-error")).to_be_hidden()

        [socket] = served
        socket.send(
            json.dumps(
                {
                    "type": "error",
                    "code": "service_unavailable",
                    "message": "the detection service is unavailable; try again in a few seconds",
                }
            )
        )
        await socket.close(code=1013, reason="try again later")
        await expect(page.get_by_test_id("live-error")).to_have_text(
            "Live detection stopped: the detection service is unavailable; try again in a few"
            " seconds."
        )
        await expect(status).to_have_attribute("data-state", "failed")
        await expect(page.get_by_test_id("live-stage")).to_be_hidden()
        assert await page.get_by_test_id("live-video").evaluate("video => video.srcObject") is None
        await expect(page.get_by_test_id("live-start")).to_be_enabled()
        assert not [item for item in received if item == '{"type":"end"}']
