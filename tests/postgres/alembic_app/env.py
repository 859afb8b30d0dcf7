"""The application's Alembic environment: online migrations against ``sqlalchemy.url``."""

import sqlalchemy as sa
from alembic import context

with sa.create_engine(context.config.get_main_option("sqlalchemy.url")).connect() as connection:
    context.configure(connection=connection, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()
