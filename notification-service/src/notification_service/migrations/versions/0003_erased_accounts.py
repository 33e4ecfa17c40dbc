"""Accounts whose webhooks and deliveries were erased after their owner deleted them
(ADR 0025).

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-09
"""

from alembic import op

from objectvision_common.erasure import create_erased_accounts_table

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

SCHEMA = "notification"


def upgrade() -> None:
    create_erased_accounts_table(op, schema=SCHEMA)


def downgrade() -> None:
    op.drop_table("erased_accounts", schema=SCHEMA)
