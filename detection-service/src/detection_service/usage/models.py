"""Tables of metered usage: images detected per account, day and source, and quotas set by
an admin for one account."""

import sqlalchemy as sa

from detection_service.accounts.settings import setting_table
from detection_service.database import metadata
from detection_service.usage.sources import SOURCE_CALLS, SOURCE_JOBS

usage_days = sa.Table(
    "usage_days",
    metadata,
    sa.Column("user_id", sa.Text, primary_key=True),
    sa.Column("day", sa.Date, primary_key=True),
    sa.Column("source", sa.Text, primary_key=True),
    sa.Column("images", sa.BigInteger, nullable=False),
    sa.CheckConstraint(f"source IN ('{SOURCE_CALLS}', '{SOURCE_JOBS}')", name="source_known"),
    sa.CheckConstraint("images >= 0", name="images_not_negative"),
)

usage_quotas = setting_table(
    "usage_quotas",
    # Images per calendar month (UTC); 0 is no quota, as USAGE_MONTHLY_IMAGE_QUOTA=0.
    sa.Column("monthly_images", sa.BigInteger, nullable=False),
)
