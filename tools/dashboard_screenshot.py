"""Take docs/dashboard.png: the Perses dashboard, drawn by Perses, over a system under load.

    make dashboard-screenshot            # builds tools/dashboard_viewer with npm first

Starts a system of its own (the devstack Stack and Triton, as `make run` and the tests do) and
a real Prometheus scraping it with deploy/prometheus.yml's jobs and alert rules
(objectvision_devstack.prometheus). Then it sends traffic through the gateway for a few minutes:
single detections of the shared images from a few users at once, a batch job now and then, and
some requests that fail (an unsupported file, a missing job, a wrong password), and one live
detection stream, as a camera on the console's Live page sends, so that every row of the
dashboard has something to draw. Last, headless Chromium opens
tools/dashboard_viewer's build, Perses' own dashboard packages (ADR 0037), with the dashboard
of deploy/perses/resources against that Prometheus, waits until every panel has drawn its
data, fails if any panel shows an error, and shoots the whole page.
"""

import argparse
import asyncio
import contextlib
import json
import secrets
import shutil
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import headless
import httpx
from playwright.async_api import Error as PlaywrightError
from playwright.async_api import ViewportSize, async_playwright, expect
from websockets.exceptions import WebSocketException
from websockets.sync.client import connect

from objectvision_devstack.api_users import fresh_network
from objectvision_devstack.prometheus import LocalPrometheus, PrometheusMissing
from objectvision_devstack.stack import Stack, stack_with_triton

DEPLOY = headless.REPO_ROOT / "deploy"
DASHBOARD = DEPLOY / "perses" / "resources" / "dashboard-objectvision.json"
VIEWER_BUILD = headless.REPO_ROOT / "tools" / "dashboard_viewer" / "dist"
WIDTH, HEIGHT = 1600, 1000
SCRAPE_INTERVAL_S = 2
USERS = 3
BATCH_EVERY = 6  # one user's every sixth request is a batch job of BATCH_SIZE images
BATCH_SIZE = 4
# The camera's stream (ADR 0059): frames a second at most, and every n-th not an image.
LIVE_FPS = 4
LIVE_BAD_EVERY = 25
PASSWORD_BYTES = 18
REQUEST_TIMEOUT_S = 120.0
PANEL_TIMEOUT_S = 60.0


def shared_images() -> list[Path]:
    images = [headless.IMAGES / "bus.jpg", headless.IMAGES / "zidane.jpg"]
    images += sorted((headless.IMAGES / "coco8" / "images").glob("*/*.jpg"))
    return images


@contextlib.contextmanager
def monitored_system(data_dir: Path) -> Iterator[tuple[Stack, LocalPrometheus]]:
    """Triton, the Stack and a Prometheus scraping both."""
    # Every request reaches inference: cached results would leave Triton's rows flat.
    with (
        stack_with_triton(data_dir, extra_env={"RESULT_CACHE_TTL_SECONDS": "0"}) as (
            stack,
            triton,
        ),
        LocalPrometheus(
            data_dir / "prometheus",
            config=DEPLOY / "prometheus.yml",
            rules=DEPLOY / "prometheus-rules.yml",
            stack=stack,
            triton=triton,
            scrape_interval_s=SCRAPE_INTERVAL_S,
        ) as prometheus,
    ):
        yield stack, prometheus


def _user(client: httpx.Client) -> dict[str, str]:
    """A fresh signed-in account's Authorization header."""
    email = f"dashboard-{uuid.uuid4().hex[:10]}@example.com"
    password = secrets.token_urlsafe(PASSWORD_BYTES)
    network = fresh_network()
    client.post(
        "/api/v1/auth/signup",
        json={"email": email, "password": password, "name": "Dashboard"},
        headers=network,
    ).raise_for_status()
    login = client.post("/api/v1/auth/login", json={"email": email, "password": password})
    login.raise_for_status()
    return {"Authorization": f"Bearer {login.json()['access_token']}"}


def _one_user(gateway_url: str, until: float, number: int) -> Counter[int]:
    """One user's requests until ``until``; the count of its answers by status."""
    images = shared_images()
    counts: Counter[int] = Counter()
    with httpx.Client(base_url=gateway_url, timeout=REQUEST_TIMEOUT_S) as client:
        headers = _user(client)
        request = 0
        while time.monotonic() < until:
            request += 1
            image = images[(request * USERS + number) % len(images)]
            if request % BATCH_EVERY == 0:
                batch = [images[(request + k) % len(images)] for k in range(BATCH_SIZE)]
                answer = client.post(
                    "/api/v1/detect/batch",
                    files=[("files", (p.name, p.read_bytes(), "image/jpeg")) for p in batch],
                    headers=headers,
                )
            elif request % 10 == 3:
                # Refused before any work: not an image.
                answer = client.post(
                    "/api/v1/detect/image",
                    files={"file": ("notes.txt", b"not an image", "text/plain")},
                    headers=headers,
                )
            elif request % 10 == 7:
                answer = client.get(f"/api/v1/detect/jobs/{uuid.uuid4()}", headers=headers)
            else:
                answer = client.post(
                    "/api/v1/detect/image",
                    files={"file": (image.name, image.read_bytes(), "image/jpeg")},
                    headers=headers,
                )
            counts[answer.status_code] += 1
    return counts


def _camera(gateway_url: str, until: float) -> Counter[str]:
    """One live detection stream until ``until``, as the console's Live page holds one: a
    tracked frame at most every 1/LIVE_FPS s, one unanswered at a time, every
    LIVE_BAD_EVERY-th not an image; the count of its answers by type."""
    frames = [path.read_bytes() for path in shared_images()]
    counts: Counter[str] = Counter()
    with httpx.Client(base_url=gateway_url, timeout=REQUEST_TIMEOUT_S) as client:
        headers = _user(client)
    url = gateway_url.replace("http://", "ws://", 1) + "/api/v1/ws/detect"
    with connect(url, additional_headers=headers, open_timeout=30) as live:
        live.send(json.dumps({"track": True, "frame_rate": LIVE_FPS}))
        counts[json.loads(live.recv(timeout=REQUEST_TIMEOUT_S))["type"]] += 1
        sequence = 0
        while time.monotonic() < until:
            sequence += 1
            sent = time.monotonic()
            bad = sequence % LIVE_BAD_EVERY == 0
            live.send(b"not an image" if bad else frames[sequence % len(frames)])
            counts[json.loads(live.recv(timeout=REQUEST_TIMEOUT_S))["type"]] += 1
            time.sleep(max(0.0, 1 / LIVE_FPS - (time.monotonic() - sent)))
        live.send(json.dumps({"type": "end"}))
        counts[json.loads(live.recv(timeout=REQUEST_TIMEOUT_S))["type"]] += 1
    return counts


def make_traffic(gateway_url: str, seconds: float) -> tuple[Counter[int], Counter[str]]:
    """USERS users sending requests and one live camera stream for ``seconds``; the count
    of the requests' answers by status, and of the stream's by type."""
    until = time.monotonic() + seconds
    print(f"traffic for {seconds:.0f} s from {USERS} users and a camera ...", flush=True)
    with ThreadPoolExecutor(max_workers=USERS + 1) as pool:
        camera = pool.submit(_camera, gateway_url, until)
        users = [pool.submit(_one_user, gateway_url, until, n) for n in range(USERS)]
        return sum((user.result() for user in users), Counter()), camera.result()


async def screenshot(
    viewer: str, prometheus_url: str, window_s: float, panels: int, out: Path
) -> None:
    """Open the viewer on the last ``window_s`` seconds; shoot it once every panel has drawn."""
    async with async_playwright() as playwright:
        browser = await headless.launch(playwright)
        viewport: ViewportSize = {"width": WIDTH, "height": HEIGHT}
        page = await browser.new_page(viewport=viewport, base_url=viewer)
        await headless.only(page, viewer, prometheus_url)
        minutes = max(1, round(window_s / 60))
        await page.goto(
            f"/index.html?prometheus={prometheus_url}&scrapeInterval={SCRAPE_INTERVAL_S}s"
            f"&start={minutes}m&refresh=0s"
        )
        # Perses draws a panel once it is in view: the window is made as tall as the page.
        await expect(page.get_by_text("Targets up")).to_be_visible(timeout=PANEL_TIMEOUT_S * 1000)
        height = await page.evaluate("document.documentElement.scrollHeight")
        await page.set_viewport_size({"width": WIDTH, "height": height})
        drawn = page.get_by_test_id("panel")
        await expect(drawn).to_have_count(panels, timeout=PANEL_TIMEOUT_S * 1000)
        # Every query answered (nothing fetched for half a second), then the charts' animation.
        await page.wait_for_load_state("networkidle", timeout=PANEL_TIMEOUT_S * 1000)
        await asyncio.sleep(2)
        errors = await page.get_by_role("alert").all_inner_texts()
        if errors:
            raise RuntimeError(f"panels show errors: {errors}")
        await page.mouse.move(0, 0)
        await page.screenshot(path=out, full_page=True)
        await browser.close()


def empty_panels(prometheus: LocalPrometheus, dashboard: dict[str, Any]) -> list[str]:
    """The panels none of whose queries selects a series now (Perses draws "No data")."""
    rate_interval = f"{4 * SCRAPE_INTERVAL_S}s"  # Perses' floor: four scrape intervals
    empty = []
    for panel in dashboard["spec"]["panels"].values():
        queries = [query["spec"]["plugin"]["spec"]["query"] for query in panel["spec"]["queries"]]
        if not any(
            prometheus.get("/api/v1/query", query=query.replace("$__rate_interval", rate_interval))[
                "result"
            ]
            for query in queries
        ):
            empty.append(panel["spec"]["display"]["name"])
    return empty


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=240.0, help="how long traffic runs")
    args = headless.screenshot_arguments(parser, argv)
    if not (VIEWER_BUILD / "index.html").exists():
        print(f"no viewer build at {VIEWER_BUILD}: run make dashboard-screenshot", file=sys.stderr)
        return 1
    if headless.chromium_missing():
        return 1
    dashboard = json.loads(DASHBOARD.read_text())
    data_dir = Path(tempfile.mkdtemp(prefix="objectvision-dashboard-"))
    site = data_dir / "site"
    shutil.copytree(VIEWER_BUILD, site)
    shutil.copy(DASHBOARD, site / "dashboard.json")
    out = args.out / "dashboard.png"
    try:
        with monitored_system(data_dir) as (stack, prometheus):
            started = time.monotonic()
            counts, live = make_traffic(stack.gateway_url, args.seconds)
            print(f"answers by status: {dict(sorted(counts.items()))}", flush=True)
            print(f"live stream answers: {dict(sorted(live.items()))}", flush=True)
            time.sleep(3 * SCRAPE_INTERVAL_S)  # the last scrapes
            with headless.serve_folder(site) as viewer:
                window = time.monotonic() - started
                panels = len(dashboard["spec"]["panels"])
                asyncio.run(screenshot(viewer, prometheus.url, window, panels, out))
            print(f"panels with no data: {empty_panels(prometheus, dashboard) or 'none'}")
    except (
        PrometheusMissing,
        PlaywrightError,
        OSError,
        RuntimeError,
        httpx.HTTPError,
        WebSocketException,
    ) as exc:
        print(
            f"could not take the dashboard screenshot: {exc}; logs in {data_dir}", file=sys.stderr
        )
        return 1
    shutil.rmtree(data_dir, ignore_errors=True)
    headless.report_written([out])
    return 0


if __name__ == "__main__":
    sys.exit(main())
