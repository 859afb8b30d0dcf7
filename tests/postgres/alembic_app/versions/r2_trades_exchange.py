"""trades get their exchange

Revision ID: r2
"""

import sqlalchemy as sa
from alembic import op

revision = "r2"
down_revision = "r1"


def upgrade() -> None:
    op.add_column("trades", sa.Column("exchange", sa.String(25), server_default="binance", nullable=False))
    op.create_index("ix_trades_exchange_pair", "trades", ["exchange", "pair"])
