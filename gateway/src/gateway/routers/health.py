"""Probes and metrics: liveness, readiness and the Prometheus scrape endpoint.

Only liveness (/health) is on the public API port: what the gateway can reach and its
traffic figures are for the cluster, not for callers. /ready and /metrics are on the metrics
port (GATEWAY_METRICS_PORT, gateway.app.create_ops_app), with /health again for probes there.
"""

from fastapi import APIRouter, Response
from fastapi.responses import PlainTextResponse

from gateway.dependencies import ClientsDep, MetricsDep, SettingsDep
from gateway.errors import ApiError, ErrorDetail, error_responses
from gateway.readiness import check_dependencies
from gateway.schemas.health import HealthOut, ReadinessOut

router = APIRouter(tags=["health"])
# The metrics port's routes: never part of the public app or its OpenAPI document.
ops_router = APIRouter(tags=["operations"], include_in_schema=False)


@router.get("/health", summary="Liveness: the process serves HTTP", responses=error_responses(500))
@ops_router.get("/health")
async def health() -> HealthOut:
    return HealthOut()


@ops_router.get(
    "/ready",
    summary="Readiness: Redis and every gRPC service answer",
    responses=error_responses(500, 503),
)
async def ready(clients: ClientsDep, settings: SettingsDep) -> ReadinessOut:
    results = await check_dependencies(clients, deadline_seconds=settings.readiness_timeout_seconds)
    failed = {name: reason for name, reason in results.items() if reason is not None}
    if failed:
        raise ApiError(
            503,
            "not_ready",
            f"not ready: {', '.join(sorted(failed))}",
            details=[
                ErrorDetail(loc=["dependencies", name], msg=reason, type="dependency_unavailable")
                for name, reason in sorted(failed.items())
            ],
        )
    return ReadinessOut(checks=dict.fromkeys(results, "ok"))


@ops_router.get("/metrics", response_class=PlainTextResponse)
async def metrics(registry: MetricsDep) -> Response:
    body, content_type = registry.render()
    return Response(content=body, media_type=content_type)
