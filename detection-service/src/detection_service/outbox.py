"""The detection schema's outbox and the job events this service announces through it.

Table, staging and relay are the shared ones (objectvision_common.outbox): an event row commits
in the same transaction as the job change it describes, or not at all.
"""

import uuid
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from detection_service.database import metadata
from objectvision.v1 import notification_pb2
from objectvision_common.outbox import add_event, outbox_table

JOB_PROGRESS = "job.progress"
JOB_COMPLETED = "job.completed"
JOB_FAILED = "job.failed"
JOB_CANCELLED = "job.cancelled"
# The final event of a job, by the status it ended in (JobFinished.status).
_FINAL_EVENT_TYPES = {"completed": JOB_COMPLETED, "failed": JOB_FAILED, "cancelled": JOB_CANCELLED}

OUTBOX = outbox_table(metadata)


async def add_job_progress(
    session: AsyncSession,
    *,
    user_id: str,
    occurred_at: datetime,
    progress: notification_pb2.JobProgress,
) -> uuid.UUID:
    event = notification_pb2.Event(type=JOB_PROGRESS, user_id=user_id, job_progress=progress)
    event.occurred_at.FromDatetime(occurred_at)
    return await add_event(session, OUTBOX, event)


async def add_job_finished(
    session: AsyncSession,
    *,
    user_id: str,
    occurred_at: datetime,
    finished: notification_pb2.JobFinished,
) -> uuid.UUID:
    """job.completed, job.failed or job.cancelled, after the status the job finished with."""
    event_type = _FINAL_EVENT_TYPES[finished.status]
    event = notification_pb2.Event(type=event_type, user_id=user_id, job_finished=finished)
    event.occurred_at.FromDatetime(occurred_at)
    return await add_event(session, OUTBOX, event)
