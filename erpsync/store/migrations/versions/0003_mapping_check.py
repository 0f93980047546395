"""mapping_check: configured warehouse/pricelist mappings checked against Centra

Revision ID: 0003
Revises: 0002
Create Date: pre-release
"""
from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = '0003'
down_revision: str | None = '0002'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('mapping_check',
    sa.Column('kind', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('code', sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
    sa.Column('ref', sqlmodel.sql.sqltypes.AutoString(length=256), nullable=False),
    sa.Column('mapped', sa.Boolean(), nullable=False),
    sa.Column('known', sa.Boolean(), nullable=False),
    sa.Column('checked_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('kind', 'code')
    )


def downgrade() -> None:
    op.drop_table('mapping_check')
