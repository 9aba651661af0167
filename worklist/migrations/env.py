"""Alembic environment: runs on the connection :func:`worklist.db.migrate` hands over (no alembic.ini)."""
from alembic import context

from worklist.db import Base

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True,
                  compare_type=True)
with context.begin_transaction():
    context.run_migrations()
