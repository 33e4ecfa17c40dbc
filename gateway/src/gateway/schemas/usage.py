"""Bodies of the usage routes: images detected per day and the month against its quota
(ADR 0030)."""

from datetime import date
from typing import Self

from pydantic import Field

from gateway.schemas.base import ApiModel
from objectvision.v1 import detection_pb2


class UsageDayOut(ApiModel):
    date: date
    calls: int = Field(description="Images sent by a waiting caller (detect routes, streams).")
    jobs: int = Field(description="Images of job work (batch items, video frames).")
    images: int = Field(description="calls + jobs.")


class UsageOut(ApiModel):
    user_id: str
    month_start: date = Field(description="First day of the month counted (UTC).")
    renews_on: date = Field(description="When the count starts again: the next month's first.")
    month_images: int = Field(description="Images detected this month so far.")
    monthly_quota: int | None = Field(
        description="Images allowed per calendar month; null: no quota."
    )
    held_images: int = Field(
        description="Images your unfinished jobs have still to detect: held against the quota"
        " from the moment each job was accepted."
    )
    remaining: int | None = Field(
        description="Images that may still be sent this month (the quota less those used and"
        " those held); null without a quota."
    )
    custom_quota: bool = Field(
        description="Whether an admin set this account's quota (else the deployment's applies)."
    )
    days: list[UsageDayOut] = Field(
        description="Each day of the window asked for that had any usage, oldest first."
    )

    @classmethod
    def from_proto(cls, usage: detection_pb2.Usage) -> Self:
        return cls(
            user_id=usage.user_id,
            month_start=date.fromisoformat(usage.month_start),
            renews_on=date.fromisoformat(usage.renews_on),
            month_images=usage.month_images,
            held_images=usage.held_images,
            monthly_quota=usage.monthly_quota or None,
            remaining=usage.remaining if usage.HasField("remaining") else None,
            custom_quota=usage.custom_quota,
            days=[
                UsageDayOut(
                    date=date.fromisoformat(day.date),
                    calls=day.calls,
                    jobs=day.jobs,
                    images=day.calls + day.jobs,
                )
                for day in usage.days
            ],
        )


class QuotaIn(ApiModel):
    monthly_images: int = Field(
        ge=0,
        le=2**62,
        description="Images this account may have detected per calendar month (UTC); 0 for no"
        " quota, whatever the deployment's default.",
    )
