"""Cancelled jobs and items, and a user's jobs newest first.

A job its owner cancelled ends `cancelled`; its items still pending then are `cancelled` too
(never processed). `ix_jobs_user_created` serves the jobs list as `ix_detections_user_created`
serves the history.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-05
"""

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

SCHEMA = "detection"


# 0001 named the status checks with the table prefix twice (the naming convention added one
# to a name that had it already); they are renamed here to the names the models give them.
_OLD_NAME = "ck_{table}_ck_{table}_status"
_NAME = "ck_{table}_status"


def _replace_status_check(table: str, statuses: str, *, old: str, new: str) -> None:
    op.drop_constraint(op.f(old.format(table=table)), table, schema=SCHEMA)
    op.create_check_constraint(
        op.f(new.format(table=table)), table, f"status IN ({statuses})", schema=SCHEMA
    )


def upgrade() -> None:
    _replace_status_check(
        "jobs",
        "'pending', 'processing', 'completed', 'failed', 'cancelled'",
        old=_OLD_NAME,
        new=_NAME,
    )
    _replace_status_check(
        "job_items", "'pending', 'completed', 'failed', 'cancelled'", old=_OLD_NAME, new=_NAME
    )
    op.execute(
        f"CREATE INDEX ix_jobs_user_created ON {SCHEMA}.jobs (user_id, created_at DESC, id DESC)"
    )


def downgrade() -> None:
    op.drop_index("ix_jobs_user_created", table_name="jobs", schema=SCHEMA)
    # Before cancellation existed the nearest state was failed, with the reason.
    op.execute(
        "UPDATE detection.job_items SET status = 'failed', error = 'cancelled by its owner' "
        "WHERE status = 'cancelled'"
    )
    op.execute(
        "UPDATE detection.jobs SET status = 'failed', error = 'cancelled by its owner' "
        "WHERE status = 'cancelled'"
    )
    _replace_status_check(
        "jobs", "'pending', 'processing', 'completed', 'failed'", old=_NAME, new=_OLD_NAME
    )
    _replace_status_check("job_items", "'pending', 'completed', 'failed'", old=_NAME, new=_OLD_NAME)
