"""Alembic environment for the journal: runs on the connection the Journal hands over.

The journal opens its own engine and passes a live connection in
`config.attributes["connection"]`, so migrations need no alembic.ini or URL.
"""

from __future__ import annotations

from alembic import context

connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - only when run by hand with `alembic -x url=...`
    from sqlalchemy import create_engine

    url = context.get_x_argument(as_dictionary=True).get("url")
    if not url:
        raise SystemExit("journal migrations: pass -x url=sqlite:///path/to/journal.sqlite")
    with create_engine(url).begin() as conn:
        context.configure(connection=conn, render_as_batch=True)
        with context.begin_transaction():
            context.run_migrations()
else:
    context.configure(connection=connection, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()
