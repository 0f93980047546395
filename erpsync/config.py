"""Settings: one frozen, validated object built from a TOML file, environment and credentials.

Order of precedence (highest first): ``ERPSYNC_<SECTION>_<KEY>`` environment variables, the TOML
file, the defaults below. The URLs that may hold a password (``database.url``, ``erp.sql.url``)
may also come from the credential files ``database_url`` / ``erp_sql_url`` in
``$CREDENTIALS_DIRECTORY`` (after the environment, before the file).
Secrets (``centra.soap.password``, ``centra.graphql.token``) are never
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
from typing import Any, Literal, get_args
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator, model_validator

from erpsync.errors import ConfigError, ConfigProblem
from erpsync.logs import REDACTED, redact, register_secrets, scrub

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


#: URLs that may carry a password: besides the file, from ``ERPSYNC_<KEY>`` or the credential file
#: of this name in ``$CREDENTIALS_DIRECTORY`` (systemd ``LoadCredential=``), the environment first
URL_CREDENTIALS = (
    SecretSpec("database.url", "ERPSYNC_DATABASE_URL", "database_url"),
    SecretSpec("erp.sql.url", "ERPSYNC_ERP_SQL_URL", "erp_sql_url"),
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
    # each side may run alone: [centra.soap] alone pulls, [centra.graphql] alone pushes
    soap: SoapSettings | None = None
    graphql: GraphqlSettings | None = None
    webhook: WebhookSettings = WebhookSettings()
    events: EventsSettings = EventsSettings()

    @model_validator(mode="after")
    def _one_side_at_least(self) -> CentraSettings:
        if self.soap is None and self.graphql is None:
            raise ValueError("configure [centra.soap] (pull events) and/or [centra.graphql] (push master data)")
        return self

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
    # deprecated, without effect: fixed lane floors before the work-conserving lanes
    # (erpsync.graphql.quota); still accepted so an existing config loads, with a warning
    stock_reserve: float | None = Field(None, ge=0, lt=1)
    prices_reserve: float | None = Field(None, ge=0, lt=1)
    refresh_seconds: float = Field(300.0, gt=0)


class PullSettings(_Section):
    interval_seconds: float = Field(60.0, gt=0)
    max_batches_per_run: int = Field(1000, gt=0)
    # the same malformed events_Get answer this many times in a row: salvage it (park what is unreadable)
    malformed_retries: int = Field(3, gt=0)


class PushSettings(_Section):
    # the longest gap between two push_stock runs (with stock_mutation_share = 0: the fixed interval)
    stock_interval_seconds: float = Field(60.0, gt=0)
    # live stock changes spend at most this fraction of erpsync's hourly mutation allowance: staged
    # changes are coalesced within the window that budget allows (erpsync.outbound.pacing); 0: off
    stock_mutation_share: float = Field(0.25, ge=0, le=1)
    # push_stock never runs more often than this, however large the tier (each run diffs the stock)
    stock_min_interval_seconds: float = Field(5.0, gt=0)
    prices_interval_seconds: float = Field(300.0, gt=0)
    products_interval_seconds: float = Field(900.0, gt=0)
    # first size of setStock batches; adapts (erpsync.outbound.batching) up to stock_batch_max
    stock_batch_size: int = Field(500, gt=0)
    stock_batch_max: int = Field(5000, gt=0)
    # a batch answered slower than this (real seconds of the request, quota waits excluded) halves the
    # batch size; faster full batches grow it
    batch_target_seconds: float = Field(5.0, gt=0)
    # product prices per setPricesBatch; Centra takes at most 100 per call (PROTOCOL.md §2.2)
    prices_batch_size: int = Field(100, gt=0, le=100)
    # [open] how setPricesBatch's limit counts: "total" (100 product prices per call, safe under any
    # reading) or "per_entry" (100 per pricelist entry, several pricelists in one call)
    prices_batch_limit: Literal["total", "per_entry"] = "total"
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


class FulfilmentSettings(_Section):
    """Shipments, captures and line cancellations from the ERP's tables back to Centra (§2.5)."""

    interval_seconds: float = Field(60.0, gt=0)  # the daemon's push_fulfilment job
    send_email: bool = False  # shipping confirmation e-mail, when the delivery row leaves send_email empty
    # [open] whether ShipmentCreateInput takes externalId: true saves one mutation per delivery
    external_id_on_create: bool = False
    # a PENDING capture (asynchronous PSP) is read again each run; parked after waiting this long
    capture_pending_max_wait_seconds: float = Field(3600.0, ge=0)
    # shippedAt may not lie in the future: an ERP time at or after "now" is sent this much in the past
    shipped_at_margin_seconds: float = Field(5.0, ge=0)
    max_deliveries_per_run: int = Field(500, gt=0)


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
    # a job that failed this many runs in a row is reported degraded (erpsync_job_degraded = 1)
    alert_after_failures: int = Field(5, gt=0)


class RetentionSettings(_Section):
    """What housekeeping prunes, and after how many days. Never the latest version of an object,
    never an event that is not acknowledged and applied, never an open parked item."""

    inbox_days: float = Field(90.0, gt=0)  # inbox rows of acknowledged, applied (or superseded) events
    job_run_days: float = Field(30.0, gt=0)  # finished job runs
    parked_days: float = Field(90.0, gt=0)  # resolved parked items
    instance_days: float = Field(7.0, gt=0)  # daemon instances not heard from


class Settings(_Section):
    centra: CentraSettings
    database: DatabaseSettings = DatabaseSettings()
    paths: PathsSettings = PathsSettings()
    logging: LoggingSettings = LoggingSettings()
    quota: QuotaSettings = QuotaSettings()
    pull: PullSettings = PullSettings()
    push: PushSettings = PushSettings()
    fulfilment: FulfilmentSettings = FulfilmentSettings()
    erp: ErpSettings = ErpSettings()
    daemon: DaemonSettings = DaemonSettings()
    retention: RetentionSettings = RetentionSettings()

    @property
    def database_url(self) -> str:
        return self.database.url or f"sqlite:///{self.paths.state_dir / 'erpsync.db'}"

    @property
    def store_tz(self) -> ZoneInfo:
        return ZoneInfo(self.centra.store_timezone)

    def secret_values(self) -> list[str]:
        """Every secret value in play: the credentials (``SECRETS``) and the passwords inside every
        configured URL (``user:pw@``, ``?password=``), raw and percent-decoded. ``erpsync.logs``
        scrubs them from every output once registered (``register_settings_secrets``)."""
        values: list[str] = []
        for spec in SECRETS:
            v = _get_attr(self, spec.dotted)
            if isinstance(v, SecretStr):
                values.append(v.get_secret_value())
            elif isinstance(v, str) and v:
                values.append(v)
        for url in self.urls():
            values.extend(url_secrets(url))
        return [v for v in values if v]

    def urls(self) -> list[str]:
        """Every configured URL that may carry a password."""
        sides = [side.url for side in (self.centra.soap, self.centra.graphql) if side is not None]
        return [self.database_url, self.erp.sql.url, *sides]

    def deprecations(self) -> list[str]:
        """Keys set in this configuration that no longer have an effect (``config check`` and the
        daemon's start warn about each; the config still loads)."""
        out = []
        for key, value in (("quota.stock_reserve", self.quota.stock_reserve),
                           ("quota.prices_reserve", self.quota.prices_reserve)):
            if value is not None:
                out.append(f"{key} = {value:g} has no effect any more and will be refused in a later "
                           "release: the quota lanes lend what they do not use (a lane keeps back what "
                           "the higher lanes' backlog and demand need); remove the key. Stock's share of "
                           "the mutations is push.stock_mutation_share")
        return out

    def missing_secrets(self, only: Collection[str] | None = None) -> list[ConfigProblem]:
        """Secrets that are not set (``only``: the dotted names to consider; default all)."""
        problems = []
        for spec in SECRETS:
            if only is not None and spec.dotted not in only:
                continue
            if _get(self.model_dump(), spec.dotted.rpartition(".")[0]) is None:
                continue  # that side ([centra.soap] / [centra.graphql]) is not configured
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
    for spec in URL_CREDENTIALS:
        if spec.env in environ:
            continue
        if cred_dir and (Path(cred_dir) / spec.credential).is_file():
            _set(data, spec.dotted, (Path(cred_dir) / spec.credential).read_text(encoding="utf-8").strip())
            origins[spec.dotted] = f"credential {spec.credential}"
    for spec in SECRETS:
        if spec.env in environ:
            continue
        if cred_dir and (Path(cred_dir) / spec.credential).is_file():
            secret = (Path(cred_dir) / spec.credential).read_text(encoding="utf-8").strip()
            _set(data, spec.dotted, secret)
            origins[spec.dotted] = f"credential {spec.credential}"

    for spec in SECRETS:
        section = _get(data, spec.dotted.rpartition(".")[0])
        if isinstance(section, dict) and set(section) == {spec.dotted.rpartition(".")[2]}:
            # a secret for a side the configuration does not use (no [centra.soap] / [centra.graphql])
            _delete(data, spec.dotted.rpartition(".")[0])
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
    if settings is not None:
        for dotted, msg in semantic_problems(settings):
            problems.append(ConfigProblem(dotted, msg, origins.get(dotted, source)))
    if settings is not None and require_secrets:
        problems.extend(settings.missing_secrets(None if require_secrets is True else require_secrets))
    if problems:
        raise ConfigError(problems)
    assert settings is not None
    return settings


def semantic_problems(settings: Settings) -> list[tuple[str, str]]:
    """What the commands and the daemon check when they start, checked here once for all of them
    (so `config check` finds it too): ``(dotted key, message)`` per problem."""
    out: list[tuple[str, str]] = []
    cron = settings.daemon.housekeeping_cron
    try:
        from apscheduler.triggers.cron import CronTrigger

        CronTrigger.from_crontab(cron, timezone="UTC")  # the scheduler's own parser
    except ValueError as exc:
        out.append(("daemon.housekeeping_cron", f"not a crontab expression ({exc}): e.g. \"17 3 * * *\""))
    q = settings.quota
    if (q.limits_10s is None) != (q.limits_1h is None):
        missing = "quota.limits_1h" if q.limits_1h is None else "quota.limits_10s"
        out.append((missing, "give both quota.limits_10s and quota.limits_1h, or neither"))
    elif q.tier == "custom" and q.limits_10s is None:
        out.append(("quota.tier", "tier \"custom\" needs quota.limits_10s and quota.limits_1h "
                                  "([requests, mutations, complexity] per window)"))
    for key, limits in (("quota.limits_10s", q.limits_10s), ("quota.limits_1h", q.limits_1h)):
        if limits is not None and any(v <= 0 for v in limits):
            out.append((key, "every limit must be > 0"))
    out += _database_url_problems("database.url", settings.database_url, backends=("sqlite", "postgresql"))
    if settings.erp.sql.url:
        out += _database_url_problems("erp.sql.url", settings.erp.sql.url, backends=None)
    centra = settings.centra
    for key, side in (("centra.soap.url", centra.soap), ("centra.graphql.url", centra.graphql)):
        if side is not None:
            out += _http_url_problems(key, side.url)
    if settings.daemon.metrics_port:  # 0: no listener
        out += _host_problems("daemon.metrics_host", settings.daemon.metrics_host)
    return out


def _database_url_problems(key: str, url: str, backends: tuple[str, ...] | None) -> list[tuple[str, str]]:
    """URL syntax, a known dialect and its driver installed (the engine would fail at first use)."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError, NoSuchModuleError

    shown = scrub(url)
    try:
        parsed = make_url(url)
        _port = parsed.port
    except (ArgumentError, ValueError) as exc:
        return [(key, f"not a valid database URL ({scrub(str(exc))}): {shown}")]
    backend = parsed.get_backend_name()
    if backends is not None and backend not in backends:
        return [(key, f"erpsync keeps its state in SQLite or PostgreSQL, not {backend!r}: {shown}")]
    if parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")  # what erpsync's engines use
    try:
        dialect = parsed.get_dialect()
    except NoSuchModuleError:
        return [(key, f"unknown database dialect {parsed.drivername!r}: {shown}")]
    try:
        dialect.import_dbapi()
    except ImportError as exc:
        return [(key, f"the driver for {parsed.drivername!r} is not installed ({exc.name or exc}); "
                      + ("use postgresql+psycopg://" if backend == "postgresql" else "install it or pick another"))]
    return []


def _http_url_problems(key: str, url: str) -> list[tuple[str, str]]:
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(url)
        _port = parts.port
    except ValueError as exc:
        return [(key, f"not a valid URL ({exc})")]
    if not parts.hostname:
        return [(key, "the URL names no host")]
    return []


def _host_problems(key: str, host: str) -> list[tuple[str, str]]:
    import ipaddress
    import socket

    try:
        ipaddress.ip_address(host)
    except ValueError:
        if not host or any(c in host for c in "/:@ "):
            return [(key, f"not a host name or IP address: {host!r}")]
    try:
        infos = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as exc:
        return [(key, f"cannot resolve {host!r} ({exc})")]
    family, _type, _proto, _name, addr = infos[0]
    try:  # what the metrics listener will do, on a port the system picks
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            probe.bind((addr[0], 0, *addr[2:]))
    except OSError as exc:
        return [(key, f"cannot listen on {host!r}: {exc.strerror or exc} (not an address of this host)")]
    return []


def env_name(dotted: str) -> str:
    return ENV_PREFIX + dotted.replace(".", "_").upper()


def file_permission_warnings(path: Path | None) -> list[str]:
    """Warnings for a config file that holds a URL with a password and that others can read."""
    if path is None:
        return []
    try:
        mode = path.stat().st_mode & 0o777
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return []
    if not mode & 0o077:
        return []
    out = []
    for key in ("database.url", "erp.sql.url", "centra.soap.url", "centra.graphql.url"):
        url = _get(data, key)
        if isinstance(url, str) and url_secrets(url):
            cred = next((c.credential for c in URL_CREDENTIALS if c.dotted == key), None)
            out.append(f"{path}: {key}: holds a password and the file is readable by group or others "
                       f"(mode {mode:04o}): chmod 600 it"
                       + (f", or move the URL to the credential {cred} / {env_name(key)}" if cred else ""))
    return out


def register_settings_secrets(settings: Settings) -> None:
    """Make every secret value of ``settings`` unprintable on every channel (``erpsync.logs.scrub``)."""
    register_secrets(settings.secret_values())


def redacted_dump(settings: Settings) -> dict[str, Any]:
    """The effective settings as plain data, secrets shown as ``**********``: the credentials, and
    every secret value wherever it appears (URL passwords in any form included)."""
    register_settings_secrets(settings)
    data = settings.model_dump(mode="json")
    for spec in SECRETS:
        if _get(data, spec.dotted) is not None:
            _set(data, spec.dotted, REDACTED)
    data["database"]["url"] = settings.database_url
    redacted: dict[str, Any] = redact(data)
    return redacted


def redact_url(url: str) -> str:
    """Hide a password embedded in a URL (``scheme://user:pw@host``, ``?password=``)."""
    return scrub(url)


def url_secrets(url: str) -> list[str]:
    """The passwords inside ``url``: the userinfo password and ``password``-like query values,
    as written and percent-decoded."""
    from urllib.parse import parse_qsl, unquote, urlsplit

    out: list[str] = []
    if not url:
        return out
    _scheme, sep, rest = url.partition("://")
    if not sep:
        return out
    netloc = rest.split("/", 1)[0].split("?", 1)[0]
    if "@" in netloc:
        creds = netloc.rpartition("@")[0]
        _user, colon, pw = creds.partition(":")
        if colon and pw:
            out += [pw, unquote(pw)]
    try:
        query = urlsplit(url).query
    except ValueError:
        query = rest.partition("?")[2]
    for k, v in parse_qsl(query, keep_blank_values=False):
        if k.lower() in ("password", "passwd", "pwd", "token", "secret", "api_key", "apikey", "access_token"):
            out += [v]
    return [v for v in dict.fromkeys(out) if v]


def _get_attr(obj: Any, dotted: str) -> Any:
    for part in dotted.split("."):
        obj = getattr(obj, part, None)
        if obj is None:
            return None
    return obj


def _leaf_keys(model: type[BaseModel], prefix: str = "") -> Iterator[str]:
    for name, field in model.model_fields.items():
        ann = field.annotation
        # an optional section (``SoapSettings | None``) has the keys of the section
        ann = next((a for a in get_args(ann) if isinstance(a, type) and issubclass(a, BaseModel)), ann)
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
