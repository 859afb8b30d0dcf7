"""create trades and orders

Revision ID: r1
"""

import sqlalchemy as sa
from alembic import op

revision = "r1"
down_revision = None


def upgrade() -> None:
    op.create_table(
        "trades",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("pair", sa.String(25), nullable=False),
        sa.Column("amount", sa.Numeric(18, 8), nullable=False),
        sa.Column("opened", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.UniqueConstraint("pair", "opened", name="uq_trades_pair_opened"),
    )
    op.create_table(
        "orders",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("trade_id", sa.Integer, sa.ForeignKey("trades.id", ondelete="CASCADE"), nullable=False),
        sa.Column("side", sa.Enum("buy", "sell", name="order_side"), nullable=False),
        sa.Column("fee", sa.Numeric(18, 8), nullable=False),
        sa.Column("price", sa.Numeric(18, 8), nullable=False),
        sa.CheckConstraint("price > 0", name="ck_orders_price"),
    )
    op.create_index("ix_orders_trade", "orders", ["trade_id"])
