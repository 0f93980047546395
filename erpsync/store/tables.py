"""Imports every table module so ``SQLModel.metadata`` is complete (Alembic, create_all in tests)."""

from erpsync.store import daemon_state, fulfilment, models, staging  # noqa: F401
