"""Imports every table module so ``SQLModel.metadata`` is complete (Alembic, create_all in tests)."""

from erpsync.store import models  # noqa: F401
from erpsync.store import staging  # noqa: F401
from erpsync.store import daemon_state  # noqa: F401
