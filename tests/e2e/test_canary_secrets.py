"""The canary test: no secret reaches any output.

Every CLI command and the daemon run at DEBUG with canary secrets in the environment, in the
credentials directory and inside every URL (``user:pw@``, ``?password=``, ``&password=``), against
endpoints that fail, time out and echo the request (headers and body: the token, the SOAP password)
back in their error answer. Then stdout, stderr, the JSON log, the database, ``status --json`` and
``/metrics`` are scanned for each canary: zero hits.

The commands run in-process (Click's runner; the secret registry is emptied before each, as in a
fresh process); the daemon runs as a real subprocess.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

import pytest
from click.testing import CliRunner
from sqlalchemy import create_engine, inspect, text

import erpsync.logs
from erpsync.cli.main import cli
from tests.integration.daemon.procs import ROOT, base_env, free_port

SOAP_PW = "cnry-soap-7Qx1"  # env
TOKEN = "cnry-tok-8Wz2"  # credentials directory
SOAP_URL_PW = "cnry-soapurl-3Kd9"  # user:pw@ in the SOAP URL
GQL_URL_PW = "cnry-gqlurl-4Lp0"  # user:pw@ in the GraphQL URL
GQL_QUERY_PW = "cnry-gqlq-5Hn4"  # ?password= in the GraphQL URL
ERP_PW = "cnry-erp-6Jm5"  # user:pw@ in [erp.sql] url
ERP_QUERY_PW = "cnry-erpq-2Vb8"  # &password= in [erp.sql] url
DB_PW = "cnry-db-9Tr3"  # user:pw@ in the database URL (PostgreSQL)
DB_QUERY_PW = "cnry-dbq-1Ge7"  # &password= in the database URL (PostgreSQL)
CANARIES = (SOAP_PW, TOKEN, SOAP_URL_PW, GQL_URL_PW, GQL_QUERY_PW, ERP_PW, ERP_QUERY_PW, DB_PW, DB_QUERY_PW)


class _Echo(BaseHTTPRequestHandler):
    """Fails every request, echoing what it was sent (a GraphQL error; a SOAP Client fault whose
    faultstring holds the request, ``<password>`` included); ``/slow`` answers after 3 s."""

    def _answer(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode("utf-8", "replace")
        if self.path.startswith("/slow"):
            time.sleep(3)
        echo = f"upstream error for {self.path}; you sent {dict(self.headers)!r} and {body!r}"
        if "graphql" in self.path:
            out = json.dumps({"errors": [{"message": echo}]}).encode()
            ctype = "application/json"
        else:
            out = ('<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body>'
                   f'<soap:Fault><faultcode>soap:Client</faultcode><faultstring>{escape(echo)}</faultstring>'
                   '</soap:Fault></soap:Body></soap:Envelope>').encode()
            ctype = "text/xml"
        try:
            self.send_response(500)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(out)))
            self.end_headers()
            self.wfile.write(out)
        except OSError:
            pass  # the client timed out and left

    do_POST = do_GET = _answer

    def log_message(self, format: str, *args: Any) -> None:
        return None


@pytest.fixture
def echo_server() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Echo)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def _secret_db_url(db_url: str) -> str:
    if not db_url.startswith("postgresql"):
        return db_url  # SQLite has no password; the other canaries still reach its file
    scheme, _, rest = db_url.partition("://")
    user_host = rest.split("@", 1)
    hostpart = user_host[1] if len(user_host) == 2 else user_host[0]
    user = user_host[0].split(":")[0] if len(user_host) == 2 else "postgres"
    sep = "&" if "?" in hostpart else "?"
    # the test server trusts local connections: the passwords are carried, never checked
    return f"{scheme}://{user}:{DB_PW}@{hostpart}{sep}password={DB_QUERY_PW}"


@pytest.fixture
def canary_env(tmp_path: Path, db_url: str, echo_server: str) -> dict[str, str]:
    creds = tmp_path / "creds"
    creds.mkdir()
    (creds / "centra_graphql_token").write_text(TOKEN)
    (creds / "centra_graphql_token").chmod(0o600)
    config = tmp_path / "erpsync.toml"
    config.write_text(f"""
[centra.soap]
url = "http://erp:{SOAP_URL_PW}@{echo_server}/soap"
username = "erp-user"
read_timeout = 1.0
operation_timeout = 2.0
[centra.graphql]
url = "http://u:{GQL_URL_PW}@{echo_server}/graphql?password={GQL_QUERY_PW}"
read_timeout = 1.0
[erp.sql]
url = "postgresql+psycopg://erp:{ERP_PW}@127.0.0.1:1/erp?connect_timeout=1&password={ERP_QUERY_PW}"
queries = {{ stock = "select 1" }}
[logging]
level = "DEBUG"
format = "json"
[push]
max_attempts = 1
unknown_outcome_wait_seconds = 0
[daemon]
metrics_port = {free_port()}
shutdown_grace_seconds = 5
""")
    env = {k: v for k, v in base_env(_secret_db_url(db_url)).items() if k != "ERPSYNC_CENTRA_GRAPHQL_TOKEN"}
    env.update({"ERPSYNC_CONFIG": str(config), "ERPSYNC_CENTRA_SOAP_PASSWORD": SOAP_PW,
                "CREDENTIALS_DIRECTORY": str(creds)})
    return env


def _commands(tmp_path: Path) -> list[list[str]]:
    sample = tmp_path / "sample"
    return [
        ["config", "check"], ["config", "show"], ["db", "status"], ["db", "upgrade"], ["db", "status"],
        ["sample", "generate", str(sample), "--products", "3"], ["import", str(sample)],
        ["import", "--from-sql"], ["plan"], ["plan", "--json"], ["resync", "stock"],
        ["push", "all", "--once", "--dry-run"], ["push", "all", "--once"], ["push", "stock", "--once"],
        ["quota"], ["quota", "--remote"], ["pull", "--once"], ["pull", "--once", "--json"],
        ["events", "stats"], ["export", "--out", str(tmp_path / "export")], ["parked", "list", "--json"],
        ["parked", "retry", "--all"], ["parked", "drop", "--all"], ["status"], ["status", "--json"],
        ["sample", "path"],
    ]


def _run_in_process(args: list[str], env: dict[str, str]) -> str:
    erpsync.logs._secrets.clear()  # a fresh process knows no secret until it reads its settings
    saved = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        result = CliRunner().invoke(cli, args, env=env, catch_exceptions=True)
    finally:
        for s, h in saved.items():
            signal.signal(s, h)
    exc = result.exception
    trace = "" if exc is None or isinstance(exc, SystemExit) else repr(exc)
    return f"$ erpsync {' '.join(args)} -> {result.exit_code}\n{result.stdout}\n{result.stderr}\n{trace}\n"


def _database_text(db_url: str) -> str:
    if db_url.startswith("sqlite"):
        path = Path(db_url.removeprefix("sqlite:///"))
        return "".join(p.read_bytes().decode("latin-1") for p in path.parent.glob(path.name + "*"))
    engine = create_engine(db_url)
    try:
        out = []
        with engine.connect() as conn:
            for table in inspect(engine).get_table_names():
                out += [repr(tuple(row)) for row in conn.execute(text(f'SELECT * FROM "{table}"'))]
        return "\n".join(out)
    finally:
        engine.dispose()


def _hits(text_: str) -> list[str]:
    return [c for c in CANARIES if c in text_]


def test_no_canary_secret_in_any_output(tmp_path: Path, db_url: str, canary_env: dict[str, str]) -> None:
    outputs = [_run_in_process(args, canary_env) for args in _commands(tmp_path)]
    # a GraphQL endpoint that times out
    slow = {**canary_env, "ERPSYNC_CENTRA_GRAPHQL_URL":
            f"http://u:{GQL_URL_PW}@{_echo_host(canary_env)}/slow/graphql?password={GQL_QUERY_PW}"}
    outputs += [_run_in_process(["resync", "product"], slow), _run_in_process(["push", "products", "--once"], slow)]
    joined = "".join(outputs)
    assert "db upgrade -> 0" in joined and "push all --once -> " in joined  # the commands really ran
    assert "Traceback" not in joined
    assert _hits(joined) == [], joined

    # the daemon: a real process, its journal-format log, /metrics and status while it runs
    metrics_port = _metrics_port(canary_env)
    with (tmp_path / "out").open("w+") as out_f, (tmp_path / "err").open("w+") as err_f:
        proc = subprocess.Popen([sys.executable, "-m", "erpsync", "run"], env=canary_env, cwd=ROOT,
                                stdout=out_f, stderr=err_f, text=True)
        try:
            metrics = _wait_for_runs(metrics_port, proc)
            status = _run_in_process(["status", "--json"], canary_env)
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=60)
    out, err = (tmp_path / "out").read_text(), (tmp_path / "err").read_text()
    assert '"event": "daemon.started"' in err, err[-3000:]
    for name, found in (("daemon stdout+stderr", out + err), ("/metrics", metrics), ("status --json", status),
                        ("database", _database_text(_plain_url(canary_env)))):
        assert _hits(found) == [], f"{name}: {_hits(found)}"


def _echo_host(env: dict[str, str]) -> str:
    return Path(env["ERPSYNC_CONFIG"]).read_text().split("@", 1)[1].split("/", 1)[0]


def _metrics_port(env: dict[str, str]) -> int:
    for line in Path(env["ERPSYNC_CONFIG"]).read_text().splitlines():
        if line.startswith("metrics_port"):
            return int(line.split("=")[1])
    raise AssertionError("no metrics_port")


def _plain_url(env: dict[str, str]) -> str:
    return env["ERPSYNC_DATABASE_URL"]


def _wait_for_runs(port: int, proc: subprocess.Popen[str]) -> str:
    """/metrics once the pull and a push job have each finished a run (they fail: the echo server)."""
    body = ""
    for _ in range(300):
        if proc.poll() is not None:
            raise AssertionError(f"the daemon ended: {proc.returncode}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as r:
                body = r.read().decode()
        except OSError:
            body = ""
        if 'erpsync_job_runs_total{job="pull"' in body and 'erpsync_job_runs_total{job="push_products"' in body:
            return body
        time.sleep(0.1)
    raise AssertionError(f"no job runs seen in /metrics: {body[-2000:]}")
