"""Settings: one frozen, validated object built from a TOML file, environment and credentials.

Order of precedence (highest first): ``ERPSYNC_<SECTION>_<KEY>`` environment variables, the TOML
file, the defaults below. Secrets (``centra.soap.password``, ``centra.graphql.token``) are never
read from the file: they come from ``ERPSYNC_CENTRA_SOAP_PASSWORD`` /
``ERPSYNC_CENTRA_GRAPHQL_TOKEN`` or from the files ``centra_soap_password`` /
``centra_graphql_token`` in ``$CREDENTIALS_DIRECTORY`` (systemd ``LoadCredential=``).

Every problem is collected and raised at once as ``ConfigError``.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Collection, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator

from erpsync.errors import ConfigError, ConfigProblem

DEFAULT_CONFIG_PATH = Path("/etc/erpsync/erpsync.toml")
ENV_PREFIX = "ERPSYNC_"


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


@dataclass(frozen=True)
class SecretSpec:
    dotted: str
    env: str
    credential: str


SECRETS = (
    SecretSpec("centra.soap.password", "ERPSYNC_CENTRA_SOAP_PASSWORD", "centra_soap_password"),
    SecretSpec("centra.graphql.token", "ERPSYNC_CENTRA_GRAPHQL_TOKEN", "centra_graphql_token"),
    # needed only when the webhook listener is on (centra.webhook.port > 0), see Settings.missing_secrets
    SecretSpec("centra.webhook.secret", "ERPSYNC_CENTRA_WEBHOOK_SECRET", "centra_webhook_secret"),
)


class SoapSettings(_Section):
    url: str = Field(description="full SOAP endpoint URL, e.g. https://shop.example.com/ams/system/service/module/soap/api")
    username: str
    password: SecretStr | None = None
    connect_timeout: float = Field(5.0, gt=0)
    read_timeout: float = Field(30.0, gt=0)
    operation_timeout: float = Field(60.0, gt=0)
    event_types: tuple[str, ...] = ("all",)
    markets: tuple[str, ...] = ()

    @field_validator("url")
    @classmethod
    def _http_url(cls, v: str) -> str:
        if not v.startswith(("http://", "https://")):
            raise ValueError("must be an http:// or https:// URL")
        return v


class GraphqlSettings(_Section):
    url: str
    token: SecretStr | None = None
    connect_timeout: float = Field(5.0, gt=0)
    read_timeout: float = Field(60.0, gt=0)

    @field_validator("url")
    @classmethod
    def _http_url(cls, v: str) -> str:
        if not v.startswith(("http://", "https://")):
            raise ValueError("must be an http:// or https:// URL")
        return v


class WebhookSettings(_Section):
    """Centra's webhook (PROTOCOL.md §2.3) as a trigger for an immediate pull; port 0 = off."""

    host: str = "127.0.0.1"
    port: int = Field(0, ge=0, le=65535)
    path: str = "/centra/webhook"
    secret: SecretStr | None = None
    tolerance_seconds: float = Field(300.0, gt=0)
    max_body_bytes: int = Field(65536, ge=256)

    @field_validator("path")
    @classmethod
    def _abs_path(cls, v: str) -> str:
        if not v.startswith("/"):
            raise ValueError("must start with /")
        return v


class EventsSettings(_Section):
    """Which queue(s) the pull reads (PROTOCOL.md §2.4): the SOAP queue, the GraphQL events queue, or
    both during a cut-over (each object version applied once)."""

    source: Literal["soap", "graphql", "both"] = "soap"
    interval_seconds: float = Field(60.0, gt=0)  # the pull_graphql job's interval


class CentraSettings(_Section):
    store_timezone: str = "Europe/Stockholm"
    soap: SoapSettings
    graphql: GraphqlSettings
    webhook: WebhookSettings = WebhookSettings()
    events: EventsSettings = EventsSettings()

    @field_validator("store_timezone")
    @classmethod
    def _tz(cls, v: str) -> str:
        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {v!r}") from exc
        return v


class DatabaseSettings(_Section):
    url: str = ""
    echo: bool = False
    busy_timeout_ms: int = Field(10_000, ge=0)


class PathsSettings(_Section):
    state_dir: Path = Path("/var/lib/erpsync")


class LoggingSettings(_Section):
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    format: Literal["auto", "json", "console"] = "auto"


class QuotaSettings(_Section):
    tier: Literal["growth", "enhanced", "high_volume", "enterprise", "custom"] = "growth"
    share: float = Field(0.8, gt=0, le=1)
    # explicit limits, used when tier = "custom": [requests, mutations, complexity] per window
    limits_10s: tuple[int, int, int] | None = None
    limits_1h: tuple[int, int, int] | None = None
    stock_reserve: float = Field(0.3, ge=0, lt=1)
    prices_reserve: float = Field(0.2, ge=0, lt=1)
    refresh_seconds: float = Field(300.0, gt=0)


class PullSettings(_Section):
    interval_seconds: float = Field(60.0, gt=0)
    max_batches_per_run: int = Field(1000, gt=0)


class PushSettings(_Section):
    stock_interval_seconds: float = Field(60.0, gt=0)
    prices_interval_seconds: float = Field(300.0, gt=0)
    products_interval_seconds: float = Field(900.0, gt=0)
    stock_batch_size: int = Field(500, gt=0)
    prices_batch_size: int = Field(200, gt=0)
    products_batch_size: int = Field(20, gt=0)
    # aliased catalogue mutations per HTTP request (each still costs one mutation token)
    catalogue_mutations_per_request: int = Field(5, gt=0)
    # after a create's outcome is unknown (timeout, 499, 5xx): wait this long before reading back,
    # so a request Centra is still processing lands first (else the read-back misses it: duplicate)
    unknown_outcome_wait_seconds: float = Field(60.0, ge=0)
    max_attempts: int = Field(5, gt=0)
    on_absent: Literal["deactivate", "ignore"] = "ignore"
    # ERP warehouse code -> Centra warehouse externalId (or "id:<n>"); pricelist code -> externalId
    warehouses: dict[str, str] = {}
    pricelists: dict[str, str] = {}


class ErpSqlSettings(_Section):
    url: str = ""
    chunk_size: int = Field(5000, gt=0)
    queries: dict[str, str] = {}
    interval_seconds: float = Field(300.0, gt=0)  # the daemon's import_sql job, when url is set


class ErpSettings(_Section):
    sql: ErpSqlSettings = ErpSqlSettings()


class DaemonSettings(_Section):
    shutdown_grace_seconds: float = Field(30.0, ge=0)
    metrics_host: str = "127.0.0.1"
    metrics_port: int = Field(9464, ge=0, le=65535)
    quota_refresh_seconds: float = Field(300.0, gt=0)
    housekeeping_cron: str = "17 3 * * *"
    leader_takeover_seconds: float = Field(30.0, gt=0)


class Settings(_Section):
    centra: CentraSettings
    database: DatabaseSettings = DatabaseSettings()
    paths: PathsSettings = PathsSettings()
    logging: LoggingSettings = LoggingSettings()
    quota: QuotaSettings = QuotaSettings()
    pull: PullSettings = PullSettings()
    push: PushSettings = PushSettings()
    erp: ErpSettings = ErpSettings()
    daemon: DaemonSettings = DaemonSettings()

    @property
    def database_url(self) -> str:
        return self.database.url or f"sqlite:///{self.paths.state_dir / 'erpsync.db'}"

    @property
    def store_tz(self) -> ZoneInfo:
        return ZoneInfo(self.centra.store_timezone)

    def missing_secrets(self, only: Collection[str] | None = None) -> list[ConfigProblem]:
        """Secrets that are not set (``only``: the dotted names to consider; default all)."""
        problems = []
        for spec in SECRETS:
            if only is not None and spec.dotted not in only:
                continue
            if spec.dotted == "centra.webhook.secret" and not self.centra.webhook.port:
                continue  # the listener is off: no secret needed
            if _get(self.model_dump(), spec.dotted) is None:
                problems.append(ConfigProblem(
                    spec.dotted,
                    f"missing: set {spec.env} or the credential file {spec.credential}",
                    "environment"))
        return problems


def resolve_config_path(cli_value: str | os.PathLike[str] | None, environ: Mapping[str, str]) -> Path:
    if cli_value:
        return Path(cli_value)
    if environ.get("ERPSYNC_CONFIG"):
        return Path(environ["ERPSYNC_CONFIG"])
    return DEFAULT_CONFIG_PATH


def load_settings(
    path: Path | None,
    environ: Mapping[str, str] | None = None,
    *,
    require_secrets: bool | Collection[str] = True,
) -> Settings:
    """Read ``path`` (None: no file), apply env overrides and secrets, validate everything.

    ``require_secrets``: True (all), False (none), or the dotted names of the secrets the caller needs
    (``pull`` needs only ``centra.soap.password``).
    Raises ``ConfigError`` listing every problem with its dotted key and where it came from.
    """
    environ = os.environ if environ is None else environ
    source = str(path) if path is not None else "<no file>"
    problems: list[ConfigProblem] = []
    data: dict[str, Any] = {}
    if path is not None:
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError([ConfigProblem("-", "config file not found", source)]) from None
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError([ConfigProblem("-", f"cannot read: {exc}", source)]) from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError([ConfigProblem("-", f"not valid TOML: {exc}", source)]) from None

    origins: dict[str, str] = {}
    for spec in SECRETS:
        if _get(data, spec.dotted) is not None:
            problems.append(ConfigProblem(
                spec.dotted,
                f"secrets are not read from the file: set {spec.env} or the credential "
                f"{spec.credential} and remove the key", source))
            _delete(data, spec.dotted)

    env_map = {env_name(dotted): dotted for dotted in _leaf_keys(Settings)}
    for name, value in environ.items():
        if not name.startswith(ENV_PREFIX) or name == "ERPSYNC_CONFIG":
            continue
        dotted = env_map.get(name)
        if dotted is None:
            if name.startswith(("ERPSYNC_TEST_", "ERPSYNC_SIM_")):
                continue  # test and simulator knobs live beside the config, not in it
            problems.append(ConfigProblem(name, "unknown setting in environment", "environment"))
            continue
        _set(data, dotted, _env_value(value))
        origins[dotted] = f"environment ({name})"

    cred_dir = environ.get("CREDENTIALS_DIRECTORY")
    for spec in SECRETS:
        if spec.env in environ:
            continue
        if cred_dir and (Path(cred_dir) / spec.credential).is_file():
            secret = (Path(cred_dir) / spec.credential).read_text(encoding="utf-8").strip()
            _set(data, spec.dotted, secret)
            origins[spec.dotted] = f"credential {spec.credential}"

    settings: Settings | None = None
    try:
        settings = Settings.model_validate(data)
    except ValidationError as exc:
        for err in exc.errors():
            dotted = ".".join(str(p) for p in err["loc"])
            msg = err["msg"]
            if err["type"] == "extra_forbidden":
                msg = "unknown key"
            elif err["type"] == "missing":
                msg = "required value is missing"
            problems.append(ConfigProblem(dotted, msg, origins.get(dotted, source)))
    if settings is not None and require_secrets:
        problems.extend(settings.missing_secrets(None if require_secrets is True else require_secrets))
    if problems:
        raise ConfigError(problems)
    assert settings is not None
    return settings


def env_name(dotted: str) -> str:
    return ENV_PREFIX + dotted.replace(".", "_").upper()


def redacted_dump(settings: Settings) -> dict[str, Any]:
    """The effective settings as plain data, secrets shown as ``**********``."""
    data = settings.model_dump(mode="json")
    for spec in SECRETS:
        if _get(data, spec.dotted) is not None:
            _set(data, spec.dotted, "**********")
    data["database"]["url"] = redact_url(settings.database_url)
    return data


def redact_url(url: str) -> str:
    """Hide a password embedded in a URL (``scheme://user:pw@host``)."""
    scheme, sep, rest = url.partition("://")
    if not sep or "@" not in rest:
        return url
    creds, _, host = rest.rpartition("@")
    user, colon, _pw = creds.partition(":")
    return f"{scheme}://{user}{':***' if colon else ''}@{host}"


def _leaf_keys(model: type[BaseModel], prefix: str = "") -> Iterator[str]:
    for name, field in model.model_fields.items():
        ann = field.annotation
        if isinstance(ann, type) and issubclass(ann, BaseModel):
            yield from _leaf_keys(ann, f"{prefix}{name}.")
        else:
            yield f"{prefix}{name}"


def _env_value(raw: str) -> Any:
    """Env values are strings; TOML-looking lists/tables (``[..]``/``{..}``) are parsed as TOML."""
    stripped = raw.strip()
    if stripped.startswith(("[", "{")):
        try:
            return tomllib.loads(f"v = {stripped}")["v"]
        except tomllib.TOMLDecodeError:
            return raw
    return raw


def _get(data: Mapping[str, Any], dotted: str) -> Any:
    cur: Any = data
    for part in dotted.split("."):
        if not isinstance(cur, Mapping) or part not in cur:
            return None
        cur = cur[part]
    return cur


def _set(data: dict[str, Any], dotted: str, value: Any) -> None:
    *parents, leaf = dotted.split(".")
    cur = data
    for part in parents:
        nxt = cur.get(part)
        if not isinstance(nxt, dict):
            nxt = {}
            cur[part] = nxt
        cur = nxt
    cur[leaf] = value


def _delete(data: dict[str, Any], dotted: str) -> None:
    *parents, leaf = dotted.split(".")
    cur: Any = data
    for part in parents:
        cur = cur.get(part, {})
    if isinstance(cur, dict):
        cur.pop(leaf, None)
