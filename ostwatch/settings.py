"""Settings, one frozen class per component, read from ``OSTWATCH_*`` environment variables.

Each class is built once at an entry point and passed down; nothing reads the environment
at import time. Credentials are ``SecretStr`` so they never print.
"""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from schemas.alerts import ALERT_KINDS, ChangeKind, Severity
from schemas.models import DEFAULT_MAX_LINE_BYTES, EARLIEST_OCCURRED_AT, MAX_AHEAD, EventBounds

DEFAULT_DATA_DIR = Path(".ostwatch")
SettingsT = TypeVar("SettingsT", bound=BaseSettings)


class SettingsError(RuntimeError):
    """A setting is missing or invalid; the message names it without echoing its value."""


def _frozen(prefix: str) -> SettingsConfigDict:
    return SettingsConfigDict(env_prefix=prefix, frozen=True, extra="ignore")


class BrokerSettings(BaseSettings):
    """Where Kafka is and how to talk to it. No bootstrap servers means the embedded broker."""

    model_config = _frozen("OSTWATCH_BROKER_")

    bootstrap_servers: str | None = Field(
        default=None, description="host:port[,host:port]; unset starts the embedded broker"
    )
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = None
    sasl_username: str | None = None
    sasl_password: SecretStr | None = None
    ssl_cafile: Path | None = None
    events_topic: str = "ostwatch.events"
    dead_letter_topic: str = "ostwatch.events.dlq"
    alerts_topic: str = Field(
        default="ostwatch.alerts", description="alert changes (schemas.alerts.AlertChange JSON)"
    )
    partitions: int = Field(default=4, ge=1, le=1024)
    replication_factor: int = Field(default=1, ge=1, le=7)
    embedded_port: int = Field(default=0, ge=0, le=65535, description="0 picks a free port")
    embedded_quirks: bool | None = Field(
        default=None,
        description="apply the Tansu work-arounds (short group timeouts); default: when embedded",
    )

    @model_validator(mode="after")
    def _security_is_complete(self) -> BrokerSettings:
        """Refuse half-configured security at start, naming the settings (never a value)."""
        sasl = self.security_protocol.startswith("SASL_")
        if self.is_embedded and self.security_protocol != "PLAINTEXT":
            raise PydanticCustomError(
                "security",
                "the embedded broker (Tansu) speaks PLAINTEXT only; set "
                "OSTWATCH_BROKER_BOOTSTRAP_SERVERS to a Kafka cluster to use SSL or SASL",
            )
        if sasl and not self.sasl_mechanism:
            raise PydanticCustomError(
                "security", "OSTWATCH_BROKER_SASL_MECHANISM is required with a SASL_* protocol"
            )
        if self.sasl_mechanism and not sasl:
            raise PydanticCustomError(
                "security",
                "OSTWATCH_BROKER_SASL_MECHANISM needs OSTWATCH_BROKER_SECURITY_PROTOCOL "
                "SASL_SSL (or SASL_PLAINTEXT on a trusted network)",
            )
        if self.sasl_mechanism and (not self.sasl_username or self.sasl_password is None):
            raise PydanticCustomError(
                "security",
                "OSTWATCH_BROKER_SASL_USERNAME and OSTWATCH_BROKER_SASL_PASSWORD are required "
                "when OSTWATCH_BROKER_SASL_MECHANISM is set",
            )
        if self.ssl_cafile is not None and not self.ssl_cafile.is_file():
            raise PydanticCustomError(
                "security",
                "OSTWATCH_BROKER_SSL_CAFILE: no such file {path}",
                {"path": str(self.ssl_cafile)},
            )
        return self

    @property
    def is_embedded(self) -> bool:
        return self.bootstrap_servers is None

    @property
    def quirks(self) -> bool:
        return self.is_embedded if self.embedded_quirks is None else self.embedded_quirks

    def kafka_python_security(self) -> dict[str, object]:
        """Security keyword arguments for kafka-python clients."""
        options: dict[str, object] = {"security_protocol": self.security_protocol}
        if self.sasl_mechanism:
            if not self.sasl_username or self.sasl_password is None:
                raise SettingsError(
                    "OSTWATCH_BROKER_SASL_USERNAME and OSTWATCH_BROKER_SASL_PASSWORD are required "
                    "when OSTWATCH_BROKER_SASL_MECHANISM is set"
                )
            options.update(
                sasl_mechanism=self.sasl_mechanism,
                sasl_plain_username=self.sasl_username,
                sasl_plain_password=self.sasl_password.get_secret_value(),
            )
        if self.ssl_cafile:
            options["ssl_cafile"] = str(self.ssl_cafile)
        return options


class ClickHouseSettings(BaseSettings):
    """The ClickHouse store. No URL means the embedded engine (chDB) inside the data directory."""

    model_config = _frozen("OSTWATCH_CLICKHOUSE_")

    url: str | None = Field(
        default=None,
        description="http(s)://host:port or chdb:///dir; unset uses chDB under the data directory",
    )
    username: str = "default"
    password: SecretStr = SecretStr("")
    database: str = Field(default="ostwatch", pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
    insert_retry_max_s: float = Field(default=30.0, gt=0, description="cap of the retry back-off")
    cluster: str = Field(
        default="",
        pattern=r"^([A-Za-z_][A-Za-z0-9_]{0,63})?$",
        description="a cluster in remote_servers: migrations create Replicated tables ON CLUSTER "
        "behind Distributed ones (sinks/cluster.py); empty = one node",
    )
    embedded_cache_mb: int = Field(
        default=64,
        ge=8,
        le=65536,
        description="size of each of the embedded engine's caches (marks, primary index, "
        "skip-index marks, query conditions); ClickHouse's server defaults are 5 GiB each",
    )


class StreamSettings(BaseSettings):
    """The Faust intake worker."""

    model_config = _frozen("OSTWATCH_STREAM_")

    app_id: str = "ostwatch"
    group_id: str = Field(default="ostwatch-intake", description="consumer group of the intake")
    batch_max: int = Field(default=5000, ge=1, le=100_000)
    batch_within_s: float = Field(default=0.25, gt=0, le=10)
    registry_refresh_s: float = Field(default=2.0, gt=0)
    fetch_max_wait_ms: int = Field(
        default=100,
        ge=1,
        le=10_000,
        description="longest a consumer fetch may wait for records (Faust fixes 1500)",
    )
    # Ingest limits (streams/intake/limits.py); the defaults there are the documented ones.
    max_line_bytes: int = Field(default=DEFAULT_MAX_LINE_BYTES, ge=1024, le=1024 * 1024)
    # Submissions one message may carry: ostwatch's producer packs 500; the intake takes
    # up to batch_max messages at once, so a message may hold as many as one intake batch.
    max_batch_items: int = Field(default=5000, ge=1, le=100_000)
    # Generous by default, so that importing years of one facility's history passes; a
    # production province tightens them (docs/operations.md, "Privacy and security").
    facility_rate_per_s: float = Field(
        default=1000.0, ge=0, description="new events a second per facility; 0 switches it off"
    )
    facility_burst: int = Field(
        default=1_000_000, ge=1, description="new events at once per facility"
    )
    # CONTRACT §1's bounds on event time (schemas.models.EventBounds): the publisher and the
    # stream processor both apply them, against when the event reached each.
    occurred_at_earliest: AwareDatetime = Field(
        default=EARLIEST_OCCURRED_AT,
        description="no event with an earlier occurred_at is accepted (RFC 3339 with offset)",
    )
    occurred_at_max_ahead_s: float = Field(
        default=MAX_AHEAD.total_seconds(),
        ge=0,
        le=366 * 86400,
        description="no event whose occurred_at is more than this after its arrival",
    )
    # The duplicate filter (streams/intake/seen.py): a Bloom filter of fixed size, so the
    # worker's memory does not grow with the archive. Sized at start for this many ids or
    # twice the archive, whichever is larger; 10 million at 1e-4 take 24 MB.
    duplicate_filter_capacity: int = Field(default=10_000_000, ge=1000)
    duplicate_filter_error_rate: float = Field(default=1e-4, gt=0, lt=0.5)

    def event_bounds(self) -> EventBounds:
        """The event-time bounds these settings give (CONTRACT §1)."""
        return EventBounds(
            self.occurred_at_earliest, timedelta(seconds=self.occurred_at_max_ahead_s)
        )


class AlertSettings(BaseSettings):
    """Thresholds and policy of the alerts (CONTRACT §4); every default is the contract's."""

    model_config = _frozen("OSTWATCH_ALERT_")

    enabled: bool = Field(
        default=True, description="judge alerts in the worker (off: an ingest-only worker)"
    )
    stock_warning_days: float = Field(default=14, gt=0, description="days of supply: warning")
    stock_critical_days: float = Field(default=7, gt=0, description="days of supply: critical")
    count_tolerance_percent: float = Field(default=2.0, ge=0)
    count_tolerance_units: float = Field(default=1.0, ge=0)
    take_home_policy_max_days: int = Field(default=7, ge=1, le=30)
    report_due_soon_days: int = Field(default=3, ge=0, le=60)
    supervision_visits_per_year: int = Field(default=2, ge=0, le=52)
    supervised_types: tuple[str, ...] = (
        "treatment_facility",
        "dispensing_point",
        "commune_health_station",
    )
    commune_escalation_days: float = Field(
        default=7, gt=0, description="an unacknowledged commune notification escalates after"
    )
    clock_interval_s: float = Field(
        default=30, gt=0, description="how often deadlines and escalations are re-judged"
    )
    sweep_interval_s: float = Field(
        default=1.0,
        gt=0,
        description="with several workers: how often the judging worker reads what the others "
        "archived (streams/alerts/judge.py)",
    )
    signing_key_file: Path | None = Field(
        default=None,
        description="HMAC key alert changes are signed with (streams/alerts/signing.py); "
        "default <data_dir>/alert-signing.key, made on first start; workers of one "
        "deployment share it",
    )
    sweep_margin_s: float = Field(
        default=60,
        gt=0,
        description="how far the judge looks back past the newest event it judged, for "
        "batches other workers were still writing and clocks that differ",
    )

    @model_validator(mode="after")
    def _critical_below_warning(self) -> AlertSettings:
        if self.stock_critical_days > self.stock_warning_days:
            raise ValueError("stock_critical_days must not exceed stock_warning_days")
        return self


LOOPBACK_HOSTS: frozenset[str] = frozenset({"127.0.0.1", "localhost", "::1"})


class StackSettings(BaseSettings):
    """Where a stack keeps its files and serves its local API.

    The API always asks for a token (``ostwatch up`` makes one per start and writes it into
    ``stack.json``); off loopback it is served over TLS only, so that the token never
    crosses a network in clear (docs/security.md).
    """

    model_config = _frozen("OSTWATCH_")

    data_dir: Path = Field(default=DEFAULT_DATA_DIR)
    api_host: str = "127.0.0.1"
    api_port: int = Field(default=0, ge=0, le=65535, description="0 picks a free port")
    api_token: SecretStr | None = Field(
        default=None,
        description="the API's bearer token; `ostwatch up` makes a random one per start",
    )
    api_tls_cert: Path | None = Field(
        default=None, description="PEM certificate (chain): serve the API over HTTPS"
    )
    api_tls_key: Path | None = Field(default=None, description="PEM private key of the certificate")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"

    @model_validator(mode="after")
    def _tls_off_loopback(self) -> StackSettings:
        """Refuse to serve the API beyond this machine without TLS, naming the settings."""
        if self.api_token is not None and len(self.api_token.get_secret_value()) < 16:
            raise PydanticCustomError(
                "token", "OSTWATCH_API_TOKEN: at least 16 characters (or leave it unset)"
            )
        if (self.api_tls_cert is None) != (self.api_tls_key is None):
            raise PydanticCustomError(
                "tls", "OSTWATCH_API_TLS_CERT and OSTWATCH_API_TLS_KEY go together"
            )
        for name, path in (("CERT", self.api_tls_cert), ("KEY", self.api_tls_key)):
            if path is not None and not path.is_file():
                raise PydanticCustomError(
                    "tls",
                    "OSTWATCH_API_TLS_{name}: no such file {path}",
                    {"name": name, "path": str(path)},
                )
        if not self.api_on_loopback and self.api_tls_cert is None:
            raise PydanticCustomError(
                "tls",
                "OSTWATCH_API_HOST {host} is not loopback: set OSTWATCH_API_TLS_CERT and "
                "OSTWATCH_API_TLS_KEY to serve the API over HTTPS, or keep 127.0.0.1",
                {"host": self.api_host},
            )
        return self

    @property
    def api_on_loopback(self) -> bool:
        return self.api_host in LOOPBACK_HOSTS or self.api_host.startswith("127.")

    @property
    def api_scheme(self) -> str:
        return "https" if self.api_tls_cert is not None else "http"


class SupervisorSettings(BaseSettings):
    """How ``ostwatch up`` looks after its stream worker (docs/operations.md, "Reliability")."""

    model_config = _frozen("OSTWATCH_SUPERVISOR_")

    start_failures: int = Field(
        default=3,
        ge=1,
        le=100,
        description="worker exits before the stack was ever ready, after which `ostwatch up` "
        "gives up with the worker's last error",
    )
    ready_timeout_s: float = Field(
        default=180.0, gt=0, description="longest `ostwatch up` waits for the stack to be ready"
    )
    watchdog_stall_s: float = Field(
        default=30.0,
        ge=0,
        le=3600,
        description="restart a worker that has lag and has decided (committed) nothing for "
        "this long; 0 switches the watchdog off",
    )
    watchdog_interval_s: float = Field(
        default=2.0, gt=0, le=60, description="how often the watchdog looks"
    )
    watchdog_batch_limit_s: float = Field(
        default=600.0,
        gt=0,
        description="a worker that says it is deciding a batch is working, not stalled, "
        "for this long (the alert judge's first catch-up on a national archive: 3 s quiet, 31 s "
        "seen on a loaded machine)",
    )
    watchdog_kill_grace_s: float = Field(
        default=5.0,
        ge=0,
        le=300,
        description="a stalled worker that still answers gets SIGTERM, then SIGKILL after this",
    )
    broker_lost_grace_s: float = Field(
        default=5.0,
        ge=0,
        le=300,
        description="when the embedded broker died, its worker gets SIGTERM, then SIGKILL after "
        "this: its last commit has no broker to go to (the broker's offsets died with it), and "
        "every second here is a second the stack decides nothing",
    )


class NotifyRoute(BaseModel):
    """Which alert changes one notifier receives: kinds (``*`` = all), a minimum severity and
    the kinds of change (opened, updated, resolved)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    notifier: Literal["webhook", "email", "outbox"]
    kinds: tuple[str, ...] = ("*",)
    min_severity: Severity = "info"
    changes: tuple[ChangeKind, ...] = ("opened", "updated", "resolved")

    @field_validator("kinds")
    @classmethod
    def _known_kinds(cls, kinds: tuple[str, ...]) -> tuple[str, ...]:
        unknown = sorted(set(kinds) - {"*", *ALERT_KINDS})
        if unknown:
            raise ValueError(f"unknown alert kind(s) {', '.join(unknown)}")
        return kinds


def _split_list(value: Any) -> Any:
    """``a@x, b@y`` (or a JSON list) from the environment → a tuple of stripped strings."""
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            import json

            return tuple(json.loads(text))
        return tuple(part.strip() for part in text.replace(";", ",").split(",") if part.strip())
    return value


class NotifySettings(BaseSettings):
    """Delivery of alert changes to people: webhook, e-mail (SMTP) and a file outbox.

    Unset ``routes`` sends every change to every configured notifier (e-mail: warning and
    above). Commune notifications go to the commune's contacts in ``recipients_csv``, or to
    the default recipients (``email_to``, ``webhook_url``) when the commune has none.
    """

    model_config = _frozen("OSTWATCH_NOTIFY_")

    enabled: bool = Field(default=True, description="consume the alerts topic and deliver")
    state_path: Path | None = Field(
        default=None, description="delivery state (SQLite); default <data_dir>/notify.sqlite"
    )
    routes: tuple[NotifyRoute, ...] | None = Field(
        default=None,
        description='JSON list, e.g. [{"notifier":"email","kinds":["stock_out"],'
        '"min_severity":"critical"}]; unset: everything to every configured notifier',
    )
    outbox_enabled: bool = True
    outbox_path: Path | None = Field(
        default=None, description="JSON lines file; default <data_dir>/outbox/alerts.jsonl"
    )
    webhook_url: str | None = Field(default=None, pattern=r"^https?://")
    webhook_token: SecretStr | None = Field(
        default=None, description="sent as 'Authorization: Bearer …'"
    )
    webhook_timeout_s: float = Field(default=10.0, gt=0, le=300)
    webhook_rate_per_s: float = Field(
        default=20.0, gt=0, description="most POSTs per second to one endpoint"
    )
    smtp_host: str | None = None
    smtp_port: int = Field(default=25, ge=1, le=65535)
    smtp_starttls: bool = False
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_timeout_s: float = Field(default=30.0, gt=0, le=300)
    email_from: str = Field(default="ostwatch@localhost", pattern=r"^[^@\s]+@[^@\s]+$")
    email_to: Annotated[tuple[str, ...], NoDecode] = Field(
        default=(), description="default recipients, comma separated"
    )
    email_digest_interval_s: float = Field(
        default=60.0, ge=0, description="at most one e-mail per recipient per interval (digest)"
    )
    email_digest_max: int = Field(default=200, ge=1, le=10_000)
    recipients_csv: Path | None = Field(
        default=None, description="commune_code,commune_name,email,webhook_url"
    )
    max_attempts: int = Field(default=12, ge=1, le=1000)
    backoff_base_s: float = Field(default=2.0, gt=0)
    backoff_max_s: float = Field(default=900.0, gt=0)
    concurrency: int = Field(default=8, ge=1, le=256, description="deliveries in flight")

    @field_validator("email_to", mode="before")
    @classmethod
    def _split_email_to(cls, value: Any) -> Any:
        return _split_list(value)

    @field_validator("email_to")
    @classmethod
    def _addresses(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        bad = [address for address in value if "@" not in address]
        if bad:
            raise ValueError(f"not an e-mail address: {bad[0]!r}")
        return value

    @property
    def email_enabled(self) -> bool:
        return self.smtp_host is not None

    @property
    def webhook_enabled(self) -> bool:
        return self.webhook_url is not None

    def state_file(self, data_dir: Path) -> Path:
        return self.state_path or data_dir / "notify.sqlite"

    def outbox_file(self, data_dir: Path) -> Path:
        return self.outbox_path or data_dir / "outbox" / "alerts.jsonl"


class PseudonymSettings(BaseSettings):
    """The province's pseudonymisation key (producers/pseudonym.py), held on the facility side.

    Give the key inline (``KEY``) or, better, as a file readable only by its owner
    (``KEY_FILE``, e.g. ``openssl rand -base64 48 > key; chmod 600 key``). During a key
    rotation the previous key is given too (``PREVIOUS_KEY``/``PREVIOUS_KEY_FILE``).
    """

    # An empty variable (``OSTWATCH_PSEUDONYM_KEY_FILE=``) means unset, not the current directory.
    model_config = SettingsConfigDict(
        env_prefix="OSTWATCH_PSEUDONYM_", frozen=True, extra="ignore", env_ignore_empty=True
    )

    key: SecretStr | None = Field(default=None, description="the key itself (≥ 32 characters)")
    key_file: Path | None = Field(default=None, description="a file holding the key (chmod 600)")
    key_id: str = Field(
        default="1",
        pattern=r"^[a-z0-9]{1,8}$",
        description="short name of the key, written into every patient_ref it makes",
    )
    previous_key: SecretStr | None = None
    previous_key_file: Path | None = None
    previous_key_id: str | None = Field(default=None, pattern=r"^[a-z0-9]{1,8}$")


def load(cls: type[SettingsT], **overrides: Any) -> SettingsT:
    """Build a settings class, turning validation errors into a message that names the setting.

    Values are never echoed: a wrong password must not end up in a terminal or a log.
    """
    try:
        return cls(**{k: v for k, v in overrides.items() if v is not None})
    except ValidationError as exc:
        prefix = cls.model_config.get("env_prefix", "")
        problems = "; ".join(
            f"{prefix}{'_'.join(str(p) for p in err['loc']).upper()}: {err['msg']}"
            if err["loc"]
            else err["msg"]  # a rule across settings names them itself
            for err in exc.errors(include_input=False)
        )
        raise SettingsError(f"invalid settings: {problems}") from None


def data_dir_from_env() -> Path:
    """The data directory named by OSTWATCH_DATA_DIR, or the default ./.ostwatch."""
    return Path(os.environ.get("OSTWATCH_DATA_DIR") or DEFAULT_DATA_DIR)
