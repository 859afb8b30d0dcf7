"""orders get notes; trades lose their exchange (run on the restore)

Revision ID: r4
"""

import sqlalchemy as sa
from alembic import op

revision = "r4"
down_revision = "r3"


def upgrade() -> None:
    op.add_column("orders", sa.Column("note", sa.Text))
    op.drop_index("ix_trades_exchange_pair", table_name="trades")
    with op.batch_alter_table("trades") as batch:
        batch.drop_column("exchange")
