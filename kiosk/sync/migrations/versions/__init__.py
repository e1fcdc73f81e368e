"""Journal schema versions, oldest first (Alembic skips this file)."""
