"""The web console: static HTML, CSS and JavaScript modules from gateway/console.

`/` serves the page and `/console/{asset}` its files, nothing else: plain routes rather than
a StaticFiles mount at `/` (which `include_router` would drop, and which would answer every
unknown path with a file lookup), so /api, /health, /ready, /metrics, /docs and /openapi.json
are never shadowed and a missing asset is the standard JSON 404.
"""

import uuid
from pathlib import Path

from fastapi import APIRouter, Request, Response
from fastapi.responses import RedirectResponse
from starlette.staticfiles import StaticFiles

CONSOLE_DIR = Path(__file__).resolve().parent.parent / "console"
ASSET_PREFIX = "/console"

# Everything the page loads is its own: scripts and styles from this origin only (no inline
# code), images from here or from blob: URLs (thumbnails fetched with the Authorization
# header), media likewise (a shared video fetched with its X-Share-Token header, ADR 0052),
# and requests (fetch and the job WebSocket) to this origin only.
CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' blob: data:",
        "media-src 'self' blob:",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    )
)
_HEADERS = {
    # Revalidate every time (a cheap 304 thanks to the ETag), so a deploy is seen at once.
    "Cache-Control": "no-cache",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}

router = APIRouter(tags=["console"], include_in_schema=False)
_files = StaticFiles(directory=CONSOLE_DIR, check_dir=False)


async def _serve(relative_path: str, request: Request) -> Response:
    """One file under CONSOLE_DIR. StaticFiles resolves the path and refuses any that leaves
    the folder (`..`, absolute paths, symlinks out), and answers If-None-Match with 304."""
    response = await _files.get_response(relative_path, request.scope)
    response.headers.update(_HEADERS)
    if response.headers.get("content-type", "").startswith("text/html"):
        response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
    return response


@router.api_route("/", methods=["GET", "HEAD"])
async def console_page(request: Request) -> Response:
    return await _serve("index.html", request)


@router.api_route(ASSET_PREFIX + "/{asset:path}", methods=["GET", "HEAD"])
async def console_asset(asset: str, request: Request) -> Response:
    return await _serve(asset, request)


# Deep links. The console routes on the fragment (`/#/jobs/<id>`, `/#/detections/<id>`,
# `/#/settings`), which is what emails and webhooks carry (notification_service.links). These
# path forms answer the links that went out before, and anyone who types the obvious URL
# (`/jobs` too, the list of jobs), with a redirect to the page: never the JSON 404 a person
# cannot act on.


def _console_redirect(request: Request, fragment: str) -> RedirectResponse:
    root = request.scope.get("root_path", "").rstrip("/")
    return RedirectResponse(f"{root}/#/{fragment}", status_code=307)


@router.get("/jobs")
async def jobs_link(request: Request) -> RedirectResponse:
    return _console_redirect(request, "jobs")


@router.get("/jobs/{job_id:uuid}")
async def job_link(job_id: uuid.UUID, request: Request) -> RedirectResponse:
    return _console_redirect(request, f"jobs/{job_id}")


@router.get("/detections/{detection_id:uuid}")
async def detection_link(detection_id: uuid.UUID, request: Request) -> RedirectResponse:
    return _console_redirect(request, f"detections/{detection_id}")


@router.get("/settings")
async def settings_link(request: Request) -> RedirectResponse:
    return _console_redirect(request, "settings")
