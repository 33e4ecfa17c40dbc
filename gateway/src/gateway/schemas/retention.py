"""Bodies of the retention routes: how long an account's stored work is kept (ADR 0031)."""

from typing import Self

from pydantic import Field

from gateway.schemas.base import ApiModel
from objectvision.v1 import detection_pb2

# As RETENTION_DAYS's upper bound: a hundred years.
MAX_RETENTION_DAYS = 36_500


class RetentionOut(ApiModel):
    user_id: str
    days: int = Field(
        description="Days after which the account's finished jobs (counted from when they"
        " finished) and detections outside jobs are deleted; 0: kept until their owner"
        " deletes them."
    )
    custom: bool = Field(
        description="Whether an admin set this account's period (else the deployment's applies)."
    )
    default_days: int = Field(description="The deployment's period (RETENTION_DAYS; 0: off).")

    @classmethod
    def from_proto(cls, retention: detection_pb2.Retention) -> Self:
        return cls(
            user_id=retention.user_id,
            days=retention.days,
            custom=retention.custom,
            default_days=retention.default_days,
        )


class RetentionIn(ApiModel):
    days: int = Field(
        ge=0,
        le=MAX_RETENTION_DAYS,
        description="Days this account's finished jobs and detections outside jobs are kept;"
        " 0 keeps them until their owner deletes them, whatever the deployment's default.",
    )
