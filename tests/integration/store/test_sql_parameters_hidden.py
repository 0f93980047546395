"""SQL parameters (customer e-mails, addresses, payloads) are never logged, at any level, nor put
into an error message; on SQLite and PostgreSQL, with ``database.echo`` on or off."""

from __future__ import annotations

import io

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from erpsync.logs import configure_logging
from erpsync.store.engine import make_engine, make_read_engine

PRIVATE = "anna.private@example.com"


@pytest.mark.parametrize("echo", [False, True])
def test_bound_values_never_reach_the_log_or_an_error(db_url: str, echo: bool) -> None:
    buf = io.StringIO()
    configure_logging("DEBUG", "json", stream=buf)
    engines = [make_engine(db_url, echo=echo), make_read_engine(db_url)]
    try:
        with engines[0].begin() as conn:
            conn.execute(text("CREATE TABLE t_private (email VARCHAR(80) PRIMARY KEY)"))
            conn.execute(text("INSERT INTO t_private (email) VALUES (:e)"), {"e": PRIVATE})
        with pytest.raises(IntegrityError) as err, engines[0].begin() as conn:
            conn.execute(text("INSERT INTO t_private (email) VALUES (:e)"), {"e": PRIVATE})
        with engines[1].connect() as conn:
            assert conn.execute(text("SELECT email FROM t_private WHERE email = :e"), {"e": PRIVATE}).scalar()
    finally:
        for e in engines:
            e.dispose()
        configure_logging("INFO", "json", stream=io.StringIO())
    log = buf.getvalue()
    assert "INSERT INTO t_private" in log  # the statements are logged at DEBUG ...
    assert PRIVATE not in log  # ... their values never
    assert "[SQL parameters hidden" in str(err.value) or PRIVATE not in str(err.value)
    assert PRIVATE not in str(err.value).split("DETAIL")[0]
