"""Share links (ADR 0048): creating, listing and revoking a user's, and opening one by its token.

A link shows one stored detection, or one finished video job's annotated video and what the job
counted (ADR 0052).

A token is 256 random bits; the table keeps its SHA-256, so the lookup is one index probe
and a copy of the database opens no link. Opening a link checks, in one query, that the
token is known, that the link is neither revoked nor expired, and that its owner's account
is neither suspended nor erased; each refusal is NOT_FOUND with a code of its own, which
only the token's holder ever sees.
"""

import hashlib
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from detection_service.accounts.models import ERASED_ACCOUNTS
from detection_service.history import service as history
from detection_service.history.models import detections
from detection_service.history.service import DetectionRecord
from detection_service.images import service as stored_images
from detection_service.images.service import ImageRecord
from detection_service.jobs import service as jobs
from detection_service.jobs.models import jobs as jobs_table
from detection_service.jobs.service import JobView
from detection_service.sharing.models import account_standings, share_links
from detection_service.video import service as video_jobs
from objectvision_common.errors import FailedPrecondition, InvalidArgument, NotFound
from objectvision_common.limits import (
    DEFAULT_SHARE_LINK_DAYS,
    MAX_ACTIVE_SHARE_LINKS,
    MAX_SHARE_LINK_DAYS,
)

# Every token starts so, for secret scanners and for people reading one in a chat.
TOKEN_PREFIX = "ovs_"  # noqa: S105 - a public prefix, not a secret
# Characters of the token kept in clear (the prefix and 8 more), to tell links apart.
_SHOWN_CHARS = len(TOKEN_PREFIX) + 8
# Long enough to be a token at all; anything shorter or longer is refused unread.
_TOKEN_CHARS = len(TOKEN_PREFIX) + 43


@dataclass(frozen=True)
class ShareLinkRecord:
    id: uuid.UUID
    # What it shows: a detection, or a video job (exactly one of the two).
    detection_id: uuid.UUID | None
    created_at: datetime
    expires_at: datetime
    revoked_at: datetime | None
    views: int
    last_viewed_at: datetime | None
    token_prefix: str
    # The owner's account is suspended (its links show nothing until it is restored).
    owner_suspended: bool
    # Classes (lower-case names) whose objects its image shows pixelated (ADR 0049).
    redact: tuple[str, ...] = ()
    job_id: uuid.UUID | None = None

    def active(self, now: datetime) -> bool:
        return self.revoked_at is None and self.expires_at > now and not self.owner_suspended


@dataclass(frozen=True)
class CreatedLink:
    link: ShareLinkRecord
    # The secret itself, answered once and never stored.
    token: str


@dataclass(frozen=True)
class SharedView:
    """What an open link shows: the detection and its stored image, the link's end, and the
    classes its image pixelates."""

    detection: DetectionRecord
    image: ImageRecord
    expires_at: datetime
    redact: frozenset[str]


@dataclass(frozen=True)
class SharedVideoView:
    """What an open link to a video job shows: the job (its video, counts, model) and where its
    annotated video is stored, and the link's end."""

    job: JobView
    annotated_key: str
    expires_at: datetime


def token_hash(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def checked_days(days: int) -> int:
    """A link's lifetime in days; 0 is the default, outside 1..MAX_SHARE_LINK_DAYS refused."""
    if days == 0:
        return DEFAULT_SHARE_LINK_DAYS
    if not 1 <= days <= MAX_SHARE_LINK_DAYS:
        raise InvalidArgument(
            f"a share link lasts 1 to {MAX_SHARE_LINK_DAYS} days (0 = {DEFAULT_SHARE_LINK_DAYS})"
        )
    return days


def _suspended() -> sa.ColumnElement[bool]:
    """Whether the link's owner is suspended, as a correlated subquery on `share_links`."""
    return sa.exists().where(
        account_standings.c.user_id == share_links.c.user_id,
        account_standings.c.suspended.is_(True),
    )


def _columns() -> tuple[sa.ColumnElement[Any], ...]:
    return (
        share_links.c.id,
        share_links.c.detection_id,
        share_links.c.job_id,
        share_links.c.created_at,
        share_links.c.expires_at,
        share_links.c.revoked_at,
        share_links.c.views,
        share_links.c.last_viewed_at,
        share_links.c.token_prefix,
        share_links.c.redact_classes,
        _suspended().label("owner_suspended"),
    )


def _record(row: sa.Row[Any]) -> ShareLinkRecord:
    return ShareLinkRecord(
        id=row.id,
        detection_id=row.detection_id,
        created_at=row.created_at,
        expires_at=row.expires_at,
        revoked_at=row.revoked_at,
        views=row.views,
        last_viewed_at=row.last_viewed_at,
        token_prefix=row.token_prefix,
        owner_suspended=row.owner_suspended,
        redact=tuple(row.redact_classes),
        job_id=row.job_id,
    )


async def _lock_detection(session: AsyncSession, user_id: str, detection_id: uuid.UUID) -> None:
    owned = await session.scalar(
        sa.select(detections.c.id)
        .where(detections.c.id == detection_id, detections.c.user_id == user_id)
        .with_for_update()
    )
    if owned is None:
        raise NotFound("no such detection")


async def _lock_video_job(session: AsyncSession, user_id: str, job_id: uuid.UUID) -> None:
    """NotFound unless it is `user_id`'s video job, FailedPrecondition until its annotated
    video is made (a job cancelled or failed has none); its row locked."""
    await video_jobs.annotated_key(session=session, job_id=job_id, user_id=user_id)
    await session.execute(
        sa.select(jobs_table.c.id).where(jobs_table.c.id == job_id).with_for_update()
    )


async def create_link(
    *,
    session: AsyncSession,
    user_id: str,
    days: int,
    now: datetime,
    detection_id: uuid.UUID | None = None,
    job_id: uuid.UUID | None = None,
    redact: frozenset[str] = frozenset(),
) -> CreatedLink:
    """A new link for `days` (checked_days) to one of `user_id`'s detections, its image
    pixelating the `redact` classes (checked names), or to one of its finished video jobs
    (ADR 0052: its annotated video as the job drew it, so no `redact` of the link's own).
    NotFound for anyone else's, FailedPrecondition once MAX_ACTIVE_SHARE_LINKS of it are
    active. What it shows is locked, so concurrent requests cannot pass the cap together."""
    lifetime = checked_days(days)
    if detection_id is not None and job_id is None:
        await _lock_detection(session, user_id, detection_id)
        target, what = share_links.c.detection_id == detection_id, "detection"
    elif job_id is not None and detection_id is None:
        if redact:
            raise InvalidArgument(
                "a video job's link shows its annotated video as the job drew it: submit the"
                " video with `redact` to share it with those classes pixelated"
            )
        await _lock_video_job(session, user_id, job_id)
        target, what = share_links.c.job_id == job_id, "video job"
    else:
        raise InvalidArgument("a share link shows one detection or one video job: name one")
    active = await session.scalar(
        sa.select(sa.func.count())
        .select_from(share_links)
        .where(target, share_links.c.revoked_at.is_(None), share_links.c.expires_at > now)
    )
    if (active or 0) >= MAX_ACTIVE_SHARE_LINKS:
        raise FailedPrecondition(
            f"this {what} already has {MAX_ACTIVE_SHARE_LINKS} active share links, the most"
            " allowed: revoke one first",
            code="too_many_share_links",
        )
    token = new_token()
    link_id = uuid.uuid4()
    await session.execute(
        sa.insert(share_links).values(
            id=link_id,
            user_id=user_id,
            detection_id=detection_id,
            job_id=job_id,
            token_hash=token_hash(token),
            token_prefix=token[:_SHOWN_CHARS],
            created_at=now,
            expires_at=now + timedelta(days=lifetime),
            redact_classes=sorted(redact),
        )
    )
    return CreatedLink(await _owned_link(session, user_id, link_id), token)


async def _owned_link(session: AsyncSession, user_id: str, link_id: uuid.UUID) -> ShareLinkRecord:
    row = (
        await session.execute(
            sa.select(*_columns()).where(
                share_links.c.id == link_id, share_links.c.user_id == user_id
            )
        )
    ).first()
    if row is None:
        raise NotFound("no such share link")
    return _record(row)


async def list_links(
    *,
    session: AsyncSession,
    user_id: str,
    detection_id: uuid.UUID | None,
    limit: int,
    offset: int,
    job_id: uuid.UUID | None = None,
) -> tuple[list[ShareLinkRecord], int]:
    """A page of `user_id`'s links (of one detection or video job, or all), newest first, and
    how many."""
    conditions = [share_links.c.user_id == user_id]
    if detection_id is not None:
        conditions.append(share_links.c.detection_id == detection_id)
    if job_id is not None:
        conditions.append(share_links.c.job_id == job_id)
    total = await session.scalar(
        sa.select(sa.func.count()).select_from(share_links).where(*conditions)
    )
    rows = (
        await session.execute(
            sa.select(*_columns())
            .where(*conditions)
            .order_by(share_links.c.created_at.desc(), share_links.c.id.desc())
            .limit(limit)
            .offset(offset)
        )
    ).all()
    return [_record(row) for row in rows], total or 0


async def revoke_link(
    *, session: AsyncSession, user_id: str, link_id: uuid.UUID, now: datetime
) -> ShareLinkRecord:
    """End one of `user_id`'s links now; a revoked link keeps its first revocation time."""
    await session.execute(
        sa.update(share_links)
        .where(
            share_links.c.id == link_id,
            share_links.c.user_id == user_id,
            share_links.c.revoked_at.is_(None),
        )
        .values(revoked_at=now)
    )
    return await _owned_link(session, user_id, link_id)


async def open_link(
    *, session: AsyncSession, token: str, now: datetime, count_view: bool
) -> SharedView | SharedVideoView:
    """What the link of `token` shows, or NotFound saying why it shows nothing:
    `share_link_not_found`, `share_link_revoked`, `share_link_expired` or
    `share_link_unavailable` (the owner's account is suspended or deleted). `count_view` adds
    one to the link's views (reading what it shows; its image or video is not counted
    again)."""
    if not token.startswith(TOKEN_PREFIX) or len(token) != _TOKEN_CHARS:
        raise NotFound("no such share link", code="share_link_not_found")
    erased = sa.exists().where(ERASED_ACCOUNTS.c.user_id == share_links.c.user_id)
    row = (
        await session.execute(
            sa.select(
                share_links.c.id,
                share_links.c.user_id,
                share_links.c.detection_id,
                share_links.c.job_id,
                share_links.c.expires_at,
                share_links.c.revoked_at,
                share_links.c.redact_classes,
                sa.or_(_suspended(), erased).label("unavailable"),
            ).where(share_links.c.token_hash == token_hash(token))
        )
    ).first()
    if row is None:
        raise NotFound("no such share link", code="share_link_not_found")
    if row.revoked_at is not None:
        raise NotFound("this share link was revoked by its owner", code="share_link_revoked")
    if row.expires_at <= now:
        raise NotFound("this share link has expired", code="share_link_expired")
    if row.unavailable:
        raise NotFound("what this share link shows is not available", code="share_link_unavailable")
    if count_view:
        await session.execute(
            sa.update(share_links)
            .where(share_links.c.id == row.id)
            .values(views=share_links.c.views + 1, last_viewed_at=now)
        )
    if row.job_id is not None:
        return SharedVideoView(
            job=await jobs.get_job(session=session, job_id=row.job_id, user_id=row.user_id),
            annotated_key=await video_jobs.annotated_key(
                session=session, job_id=row.job_id, user_id=row.user_id
            ),
            expires_at=row.expires_at,
        )
    record = await history.get_detection(
        session=session, user_id=row.user_id, detection_id=row.detection_id
    )
    image = await stored_images.get_image(
        session=session, user_id=row.user_id, detection_id=row.detection_id
    )
    return SharedView(
        detection=record,
        image=image,
        expires_at=row.expires_at,
        redact=frozenset(row.redact_classes),
    )


async def record_standing(
    *, session: AsyncSession, user_id: str, suspended: bool, changed_at: datetime
) -> None:
    """Remember that `user_id`'s account was suspended or restored at `changed_at`, unless a
    later change is already recorded (events can arrive out of order after a redelivery)."""
    statement = pg_insert(account_standings).values(
        user_id=user_id, suspended=suspended, changed_at=changed_at
    )
    await session.execute(
        statement.on_conflict_do_update(
            index_elements=[account_standings.c.user_id],
            set_={"suspended": statement.excluded.suspended, "changed_at": changed_at},
            where=account_standings.c.changed_at < statement.excluded.changed_at,
        )
    )


async def forget_standing(*, session: AsyncSession, user_id: str) -> None:
    """Drop what is known of an erased account's standing (nothing of it is left to show)."""
    await session.execute(
        sa.delete(account_standings).where(account_standings.c.user_id == user_id)
    )
