"""One router per resource. A new resource adds its module here and nothing else."""

from fastapi import APIRouter

from gateway.routers import (
    api_keys,
    auth,
    console,
    detect,
    evaluation,
    exports,
    health,
    jobs_ws,
    live_detect,
    models,
    retention,
    sessions,
    share_links,
    two_factor,
    usage,
    users,
    video,
    webhooks,
)

ROUTERS: tuple[APIRouter, ...] = (
    health.router,
    auth.router,
    users.router,
    usage.router,
    retention.router,
    two_factor.router,
    sessions.router,
    api_keys.router,
    webhooks.router,
    jobs_ws.router,
    live_detect.router,
    video.router,
    detect.router,
    exports.router,
    evaluation.router,
    models.router,
    share_links.router,
    share_links.shared_router,
    console.router,
)
