import io
import json
import logging
from pathlib import Path

import pytest

from erpsync.config import load_settings
from erpsync.logs import configure_logging, get_logger

MINIMAL = """
[centra.soap]
url = "http://127.0.0.1:1/soap"
username = "erp"
[centra.graphql]
url = "http://127.0.0.1:1/graphql"
"""


@pytest.fixture
def captured() -> io.StringIO:
    return io.StringIO()


def lines(buf: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in buf.getvalue().splitlines()]


@pytest.mark.parametrize("source", ["env", "credentials"])
def test_secret_never_appears_in_any_log_line(tmp_path: Path, captured: io.StringIO, source: str) -> None:
    (tmp_path / "c.toml").write_text(MINIMAL)
    env: dict[str, str] = {}
    if source == "env":
        env = {"ERPSYNC_CENTRA_SOAP_PASSWORD": "pw-Zq81xx", "ERPSYNC_CENTRA_GRAPHQL_TOKEN": "tk-Yy73kk"}
    else:
        (tmp_path / "creds").mkdir()
        (tmp_path / "creds" / "centra_soap_password").write_text("pw-Zq81xx")
        (tmp_path / "creds" / "centra_graphql_token").write_text("tk-Yy73kk")
        env = {"CREDENTIALS_DIRECTORY": str(tmp_path / "creds")}
    s = load_settings(tmp_path / "c.toml", env)
    assert s.centra.soap.password is not None and s.centra.graphql.token is not None
    configure_logging("DEBUG", "json", stream=captured, secrets=[
        s.centra.soap.password.get_secret_value(), s.centra.graphql.token.get_secret_value()])
    log = get_logger("erpsync.test")
    # every way a secret can leak: revealed into a field, inside the whole settings object, in a URL,
    # in a SOAP body logged by a library, in a bearer header, under an innocent key
    log.info("t.settings", settings=s.model_dump(), revealed=s.centra.soap.password.get_secret_value())
    log.info("t.innocent", note=f"x {s.centra.graphql.token.get_secret_value()} y")
    logging.getLogger("zeep.transports").debug(
        "HTTP Post to %s: <ns1:password>%s</ns1:password>", "https://erp:pw-Zq81xx@shop/soap", "pw-Zq81xx")
    logging.getLogger("gql.transport.requests").info("headers %s", {"Authorization": "Bearer tk-Yy73kk"})
    logging.getLogger("urllib3").warning("retrying https://user:pw-Zq81xx@host/x")
    logging.getLogger("some.lib").warning("settings: %r", s)
    out = captured.getvalue()
    assert len(out.splitlines()) == 6
    assert "pw-Zq81xx" not in out
    assert "tk-Yy73kk" not in out


def test_json_lines_have_the_journald_fields(captured: io.StringIO) -> None:
    configure_logging("INFO", "json", stream=captured)
    get_logger("erpsync.x").info("events.fetched", count=3)
    logging.getLogger("apscheduler.scheduler").warning("Job missed")
    first, second = lines(captured)
    for rec in (first, second):
        assert set(rec) >= {"timestamp", "level", "event", "logger"}
        assert str(rec["timestamp"]).endswith("Z")
    assert first["event"] == "events.fetched" and first["count"] == 3 and first["logger"] == "erpsync.x"
    assert second["logger"] == "apscheduler.scheduler" and second["level"] == "warning"


def test_console_format_is_not_json(captured: io.StringIO) -> None:
    configure_logging("INFO", "console", stream=captured)
    get_logger().info("hello.world", a=1)
    assert "hello.world" in captured.getvalue()
    with pytest.raises(json.JSONDecodeError):
        json.loads(captured.getvalue().splitlines()[0])


def test_journald_stream_gets_priority_prefix_and_other_streams_plain_json(tmp_path: Path) -> None:
    import os

    out = tmp_path / "journal"
    with out.open("w") as stream:
        st = os.fstat(stream.fileno())
        configure_logging("INFO", "json", stream=stream,
                          environ={"JOURNAL_STREAM": f"{st.st_dev}:{st.st_ino}"})
        get_logger("erpsync.x").error("job.failed", job="pull")
        get_logger("erpsync.x").info("job.finished", job="pull")
        stream.flush()
    first, second = out.read_text().splitlines()
    assert first.startswith("<3>{") and json.loads(first[3:])["event"] == "job.failed"
    assert second.startswith("<6>{")
    # an inherited JOURNAL_STREAM naming another stream (e.g. a test runner under systemd) is ignored
    other = tmp_path / "other"
    with other.open("w") as stream:
        configure_logging("INFO", "json", stream=stream, environ={"JOURNAL_STREAM": "1:2"})
        get_logger("erpsync.x").info("job.finished")
        stream.flush()
    assert json.loads(other.read_text())["event"] == "job.finished"
