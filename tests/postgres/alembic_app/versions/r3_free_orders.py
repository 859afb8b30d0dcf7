"""orders may be free: fee optional, price zero allowed, short side

Revision ID: r3
"""

import sqlalchemy as sa
from alembic import op

revision = "r3"
down_revision = "r2"


def upgrade() -> None:
    with op.batch_alter_table("orders") as batch:
        batch.alter_column("fee", existing_type=sa.Numeric(18, 8), nullable=True)
        batch.drop_constraint("ck_orders_price", type_="check")
        batch.create_check_constraint("ck_orders_price", "price >= 0")
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TYPE order_side ADD VALUE 'short'")
