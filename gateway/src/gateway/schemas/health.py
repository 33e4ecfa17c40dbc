"""Bodies of the liveness and readiness probes."""

from typing import Literal

from gateway.schemas.base import ApiModel


class HealthOut(ApiModel):
    status: Literal["ok"] = "ok"


class ReadinessOut(ApiModel):
    status: Literal["ready"] = "ready"
    checks: dict[str, str]
