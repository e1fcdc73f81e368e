"""Alembic environment and versions for the kiosk's durable journal, run on every open."""
