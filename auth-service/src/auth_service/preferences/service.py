"""Reading and changing a user's settings."""

import uuid
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from auth_service.database import utcnow
from auth_service.preferences.models import DEFAULT_THEME, THEMES, UserSettings
from objectvision_common.errors import InvalidArgument


def add_defaults(*, session: AsyncSession, user_id: uuid.UUID, now: datetime) -> UserSettings:
    """Stage the settings of a new account; they commit with the account."""
    settings = UserSettings(
        user_id=user_id, theme=DEFAULT_THEME, notifications_enabled=True, updated_at=now
    )
    session.add(settings)
    return settings


async def get(*, session: AsyncSession, user_id: uuid.UUID) -> UserSettings:
    settings = await session.get(UserSettings, user_id)
    if settings is None:
        # Every account gets a row at sign-up; this only covers rows lost to manual repair.
        settings = add_defaults(session=session, user_id=user_id, now=utcnow())
        await session.commit()
    return settings


async def update(
    *,
    session: AsyncSession,
    user_id: uuid.UUID,
    theme: str | None,
    notifications_enabled: bool | None,
) -> UserSettings:
    if theme is not None and theme not in THEMES:
        raise InvalidArgument(f"theme must be one of {', '.join(THEMES)}")
    settings = await get(session=session, user_id=user_id)
    if theme is not None:
        settings.theme = theme
    if notifications_enabled is not None:
        settings.notifications_enabled = notifications_enabled
    settings.updated_at = utcnow()
    await session.commit()
    return settings
