from pathlib import Path

import pytest
from pydantic import SecretStr

from erpsync.config import load_settings, redact_url, redacted_dump, resolve_config_path
from erpsync.errors import ConfigError

EXAMPLE = Path(__file__).parents[3] / "config" / "erpsync.example.toml"
SECRETS = {"ERPSYNC_CENTRA_SOAP_PASSWORD": "s3cret-pw", "ERPSYNC_CENTRA_GRAPHQL_TOKEN": "tok-123456"}

MINIMAL = """
[centra.soap]
url = "http://127.0.0.1:1/soap"
username = "erp"
[centra.graphql]
url = "http://127.0.0.1:1/graphql"
"""


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "erpsync.toml"
    p.write_text(text)
    return p


def test_example_config_is_valid_and_frozen() -> None:
    s = load_settings(EXAMPLE, SECRETS)
    assert s.centra.soap.username == "erp-user"
    assert isinstance(s.centra.soap.password, SecretStr)
    assert s.centra.soap.password.get_secret_value() == "s3cret-pw"
    with pytest.raises(Exception, match="frozen"):
        s.quota.share = 0.1  # type: ignore[misc]


def test_three_mistakes_are_reported_together_with_dotted_keys_and_file(tmp_path: Path) -> None:
    path = write(tmp_path, """
[centra.soap]
url = "http://x/soap"
read_timeout = "soon"
colour = "blue"
[centra.graphql]
url = "http://x/graphql"
""")
    with pytest.raises(ConfigError) as err:
        load_settings(path, SECRETS)
    problems = {p.key: p for p in err.value.problems}
    assert set(problems) == {"centra.soap.username", "centra.soap.read_timeout", "centra.soap.colour"}
    assert problems["centra.soap.colour"].message == "unknown key"
    assert problems["centra.soap.username"].message == "required value is missing"
    assert all(p.source == str(path) for p in problems.values())


def test_secret_in_the_file_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, MINIMAL.replace('username = "erp"', 'username = "erp"\npassword = "pw"'))
    with pytest.raises(ConfigError) as err:
        load_settings(path, SECRETS)
    [problem] = err.value.problems
    assert problem.key == "centra.soap.password"
    assert "not read from the file" in problem.message


def test_missing_secrets_are_named_with_where_to_put_them(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        load_settings(write(tmp_path, MINIMAL), {})
    msgs = {p.key: p.message for p in err.value.problems}
    assert "ERPSYNC_CENTRA_SOAP_PASSWORD" in msgs["centra.soap.password"]
    assert "centra_graphql_token" in msgs["centra.graphql.token"]
    assert load_settings(write(tmp_path, MINIMAL), {}, require_secrets=False).centra.soap.password is None


def test_secrets_from_systemd_credentials_directory(tmp_path: Path) -> None:
    creds = tmp_path / "creds"
    creds.mkdir()
    (creds / "centra_soap_password").write_text("from-cred\n")
    (creds / "centra_graphql_token").write_text("tok-cred")
    s = load_settings(write(tmp_path, MINIMAL), {"CREDENTIALS_DIRECTORY": str(creds)})
    assert s.centra.soap.password is not None
    assert s.centra.soap.password.get_secret_value() == "from-cred"
    assert s.centra.graphql.token is not None
    assert s.centra.graphql.token.get_secret_value() == "tok-cred"


def test_env_overrides_are_validated_like_the_file(tmp_path: Path) -> None:
    env = {**SECRETS, "ERPSYNC_DATABASE_URL": "postgresql+psycopg://u@h/db",
           "ERPSYNC_QUOTA_SHARE": "0.5", "ERPSYNC_CENTRA_SOAP_EVENT_TYPES": '["order", "customer"]'}
    s = load_settings(write(tmp_path, MINIMAL), env)
    assert s.database_url == "postgresql+psycopg://u@h/db"
    assert s.quota.share == 0.5
    assert s.centra.soap.event_types == ("order", "customer")
    with pytest.raises(ConfigError) as err:
        load_settings(write(tmp_path, MINIMAL), {**SECRETS, "ERPSYNC_QUOTA_SHARE": "lots",
                                                  "ERPSYNC_QUOTA_SHAER": "1"})
    by_key = {p.key: p for p in err.value.problems}
    assert by_key["quota.share"].source == "environment (ERPSYNC_QUOTA_SHARE)"
    assert by_key["ERPSYNC_QUOTA_SHAER"].message == "unknown setting in environment"


def test_default_database_is_sqlite_in_state_dir(tmp_path: Path) -> None:
    s = load_settings(write(tmp_path, MINIMAL + f'[paths]\nstate_dir = "{tmp_path}"\n'), SECRETS)
    assert s.database_url == f"sqlite:///{tmp_path}/erpsync.db"


def test_bad_toml_and_missing_file_are_config_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_settings(write(tmp_path, "[centra\n"), SECRETS)
    with pytest.raises(ConfigError, match="not found"):
        load_settings(tmp_path / "nope.toml", SECRETS)


def test_config_path_precedence() -> None:
    assert resolve_config_path("a.toml", {"ERPSYNC_CONFIG": "b.toml"}) == Path("a.toml")
    assert resolve_config_path(None, {"ERPSYNC_CONFIG": "b.toml"}) == Path("b.toml")
    assert resolve_config_path(None, {}) == Path("/etc/erpsync/erpsync.toml")


def test_redacted_dump_hides_secrets_and_url_passwords(tmp_path: Path) -> None:
    env = {**SECRETS, "ERPSYNC_DATABASE_URL": "postgresql+psycopg://u:dbpw@h/db"}
    dump = redacted_dump(load_settings(write(tmp_path, MINIMAL), env))
    text = repr(dump)
    assert "s3cret-pw" not in text and "tok-123456" not in text and "dbpw" not in text
    assert dump["centra"]["soap"]["password"] == "**********"
    assert redact_url("sqlite:///x.db") == "sqlite:///x.db"


def test_a_command_can_require_only_the_secret_it_uses(tmp_path: Path) -> None:
    path = write(tmp_path, MINIMAL)
    only_soap = {"ERPSYNC_CENTRA_SOAP_PASSWORD": "pw-1234"}
    s = load_settings(path, only_soap, require_secrets={"centra.soap.password"})
    assert s.centra.graphql.token is None
    with pytest.raises(ConfigError) as err:
        load_settings(path, only_soap, require_secrets={"centra.graphql.token"})
    assert [p.key for p in err.value.problems] == ["centra.graphql.token"]


SOAP_ONLY = """
[centra.soap]
url = "http://127.0.0.1:1/soap"
username = "erp"
"""
GRAPHQL_ONLY = """
[centra.graphql]
url = "http://127.0.0.1:1/graphql"
"""


def test_each_side_of_centra_can_be_configured_alone(tmp_path: Path) -> None:
    from erpsync.app import default_jobs, jobs_off

    soap = load_settings(write(tmp_path, SOAP_ONLY), {"ERPSYNC_CENTRA_SOAP_PASSWORD": "pw"})
    assert soap.centra.graphql is None and soap.missing_secrets() == []
    assert default_jobs(soap) == ["pull", "housekeeping"]
    assert jobs_off(soap)["push_stock"] == "no [centra.graphql] section"
    # a token in the environment for the side that is not configured is not a reason to refuse
    gql = load_settings(write(tmp_path, GRAPHQL_ONLY), {"ERPSYNC_CENTRA_GRAPHQL_TOKEN": "t",
                                                        "ERPSYNC_CENTRA_SOAP_PASSWORD": "pw"})
    assert gql.centra.soap is None
    assert default_jobs(gql) == ["push_stock", "push_prices", "push_products", "push_fulfilment", "quota_refresh",
                                 "housekeeping"]
    # the optional sections keep their environment overrides
    env_soap = load_settings(write(tmp_path, GRAPHQL_ONLY), {
        "ERPSYNC_CENTRA_GRAPHQL_TOKEN": "t", "ERPSYNC_CENTRA_SOAP_PASSWORD": "pw",
        "ERPSYNC_CENTRA_SOAP_URL": "http://127.0.0.1:2/soap", "ERPSYNC_CENTRA_SOAP_USERNAME": "u"})
    assert env_soap.centra.soap is not None and env_soap.centra.soap.username == "u"


def test_a_configuration_with_neither_side_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        load_settings(write(tmp_path, "[centra]\nstore_timezone = \"Europe/Stockholm\"\n"), {})
    [problem] = err.value.problems
    assert problem.key == "centra" and "[centra.soap]" in problem.message
def test_database_and_erp_urls_come_from_credentials_or_env(tmp_path: Path) -> None:
    creds = tmp_path / "creds"
    creds.mkdir()
    (creds / "database_url").write_text("postgresql+psycopg://erpsync:db-pw-77@db/erpsync\n")
    (creds / "erp_sql_url").write_text("postgresql+psycopg://erp:erp-pw-88@erp/erp")
    path = write(tmp_path, MINIMAL + '[database]\nurl = "sqlite:///from-file.db"\n')
    s = load_settings(path, {**SECRETS, "CREDENTIALS_DIRECTORY": str(creds)})
    assert s.database_url == "postgresql+psycopg://erpsync:db-pw-77@db/erpsync"  # the credential beats the file
    assert s.erp.sql.url == "postgresql+psycopg://erp:erp-pw-88@erp/erp"
    assert {"db-pw-77", "erp-pw-88"} <= set(s.secret_values())
    env = load_settings(path, {**SECRETS, "CREDENTIALS_DIRECTORY": str(creds),
                               "ERPSYNC_DATABASE_URL": "sqlite:///from-env.db"})
    assert env.database_url == "sqlite:///from-env.db"  # the environment beats the credential
    shown = repr(redacted_dump(s))
    assert "db-pw-77" not in shown and "erp-pw-88" not in shown


@pytest.mark.parametrize(("url", "mode", "warned"), [
    ("postgresql+psycopg://u:pw-123@db/x", 0o644, True),
    ("postgresql+psycopg://u@db/x?password=pw-123", 0o640, True),
    ("postgresql+psycopg://u:pw-123@db/x", 0o600, False),
    ("postgresql+psycopg://u@db/x", 0o644, False),
])
def test_config_check_warns_about_a_readable_file_with_a_password(tmp_path: Path, url: str, mode: int,
                                                                   warned: bool) -> None:
    from click.testing import CliRunner

    from erpsync.cli.main import cli

    path = write(tmp_path, MINIMAL + f'[database]\nurl = "{url}"\n')
    path.chmod(mode)
    r = CliRunner().invoke(cli, ["--config", str(path), "config", "check"], env=SECRETS)
    assert r.exit_code == 0, r.output
    assert ("database.url: holds a password" in r.stderr) is warned, r.stderr
    assert "pw-123" not in r.output


def test_the_old_lane_reserves_still_load_but_are_reported_deprecated(tmp_path: Path) -> None:
    """An operator's config from before the work-conserving lanes keeps loading; each dead key is named."""
    old = load_settings(write(tmp_path, MINIMAL + "[quota]\nstock_reserve = 0.3\nprices_reserve = 0.2\n"), SECRETS)
    warnings = old.deprecations()
    assert [w.split(" = ")[0] for w in warnings] == ["quota.stock_reserve", "quota.prices_reserve"]
    assert all("no effect" in w for w in warnings)
    assert load_settings(write(tmp_path, MINIMAL), SECRETS).deprecations() == []
    assert load_settings(EXAMPLE, SECRETS).deprecations() == []  # the example no longer sets them


def test_stock_pacing_defaults() -> None:
    s = load_settings(EXAMPLE, SECRETS)
    assert (s.push.stock_mutation_share, s.push.stock_min_interval_seconds, s.push.stock_interval_seconds) == (
        0.25, 5.0, 60.0)
