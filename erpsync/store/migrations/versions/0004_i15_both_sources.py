"""i15_both_sources: the SOAP event that last wrote the columns only SOAP carries (source = "both"),
and which store-local SOAP dates were read in a repeated DST hour

Revision ID: 0004
Revises: 0003
Create Date: pre-release
"""
from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = '0004'
down_revision: str | None = '0003'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = ('centra_order', 'centra_customer', 'centra_account')


def upgrade() -> None:
    for table in TABLES:
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column('soap_event_seq', sa.BigInteger(), nullable=True))
            batch.add_column(sa.Column('soap_event_date', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True))
            batch.add_column(sa.Column('last_event_date_ambiguous', sa.Boolean(), nullable=True))
    with op.batch_alter_table('centra_order') as batch:
        batch.add_column(sa.Column('created_ambiguous', sa.Boolean(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('centra_order') as batch:
        batch.drop_column('created_ambiguous')
    for table in TABLES:
        with op.batch_alter_table(table) as batch:
            batch.drop_column('last_event_date_ambiguous')
            batch.drop_column('soap_event_date')
            batch.drop_column('soap_event_seq')
