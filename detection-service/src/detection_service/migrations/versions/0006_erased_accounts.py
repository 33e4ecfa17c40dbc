"""Accounts whose data was erased after their owner deleted them (ADR 0025).

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-09
"""

from alembic import op

from objectvision_common.erasure import create_erased_accounts_table

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

SCHEMA = "detection"


def upgrade() -> None:
    create_erased_accounts_table(op, schema=SCHEMA)


def downgrade() -> None:
    op.drop_table("erased_accounts", schema=SCHEMA)
