"""The one typed configuration object, validated once at start-up.

Sources, later ones winning: defaults, the TOML file given with ``--config``, then environment
variables ``NUMIDENT_*`` (nested keys with ``__``: ``NUMIDENT_OPERATOR__ADMIN_TOKEN``).
``NUMIDENT_HOME`` (default ``./.numident``) holds SQLite databases and keys. Secrets have no
defaults. A bad value raises :class:`~numident.errors.ConfigurationError` naming the key.
"""

from __future__ import annotations

import re
import tomllib
from datetime import date
from pathlib import Path
from typing import Any, Literal

import phonenumbers
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from numident.camara.releases import version_names
from numident.core.identification import ANSWER_DEADLINE
from numident.errors import ConfigurationError


def national_region(default: str | None, allowed: frozenset[str]) -> str | None:
    """``default``, else the only region of ``allowed``, else None: a national number is read
    in a region only where that is no guess."""
    if default:
        return default
    return next(iter(allowed)) if len(allowed) == 1 else None

def hex_key(value: SecretStr | None) -> SecretStr | None:
    """``value`` if it is a 32-byte key in hex (or unset)."""
    if value is not None and not re.fullmatch(r"[0-9a-fA-F]{64}", value.get_secret_value()):
        raise ValueError("must be 64 hex digits (32 bytes)")
    return value


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DispatchSettings(_Section):
    initial_backoff_seconds: float = Field(1.0, gt=0)
    max_backoff_seconds: float = Field(3600.0, gt=0)
    give_up_after_hours: float = Field(24.0, gt=0)
    concurrency: int = Field(16, ge=1, le=1024)
    poll_seconds: float = Field(0.5, gt=0)
    answer_deadline_seconds: float = Field(
        ANSWER_DEADLINE.total_seconds(), gt=0, le=ANSWER_DEADLINE.total_seconds(),
        description="The deadline of an answer (answerDue): the rule's 20 minutes; only "
        "tests and benchmarks shorten it, to see the deadline at work within seconds")
    lease_seconds: float = Field(60.0, gt=0, description="How long a dispatcher owns a claimed "
                                 "notice; after a crash, others take it over when this ends")


class CamaraSettings(_Section):
    """The CAMARA APIs the gateway serves beside the identification API."""

    session_header: str | None = Field(
        None, description="Request header by which the operator's trusted enrichment proxy "
        "names a device's network session; unset, sessions are keyed by the client address")
    authorization_code_seconds: int = Field(60, ge=10, le=600)
    require_pkce: bool = Field(
        False, description="Refuse authorization requests without a PKCE S256 challenge")
    not_applicable_prefixes: tuple[str, ...] = Field(
        (), description="E.164 prefixes of lines the CAMARA APIs do not serve (hosted MVNO "
        "ranges, for example): requests about them get 422 SERVICE_NOT_APPLICABLE")
    history_starts: date | None = Field(
        None, description="The earliest day the registry's contract history can answer for "
        "(Number Recycling's specifiedDate, KYC Tenure's tenureDate): earlier days get 400 "
        "OUT_OF_RANGE; unset, any past day is answered")
    sim_swap_monitored_days: int | None = Field(
        None, ge=1, le=36_500, description="How far back (days) SIM changes may be answered, "
        "when local rules limit it: older changes are answered as null with monitoredPeriod, "
        "and a check with a longer maxAge is 400 OUT_OF_RANGE; unset, there is no limit")
    sim_swap_sweep_seconds: float = Field(
        30.0, gt=0, description="How often SIM swap subscriptions past their expiry time (or "
        "their sink token's) are ended and their subscription-ended event queued")
    sim_swap_http_sinks: bool = Field(
        False, description="Accept plain http:// sinks for SIM swap subscriptions (loopback "
        "tests and demos); otherwise only https:// sinks are accepted")
    sim_swap_private_sinks: bool = Field(
        False, description="Accept SIM swap subscription sinks whose host is, or resolves to, "
        "a loopback, private, link-local or other non-global address, and deliver to them "
        "(loopback tests, demos, private deployments); otherwise such sinks, and names that do "
        "not resolve, are refused at creation and before every delivery")
    holder_key: SecretStr | None = Field(
        None, description="The key (64 hex digits) of the digests that stand for exact-match "
        "KYC holder attributes; replicas and the import must share it; when unset a random key "
        "is kept in <home>/operator/holder-key")
    disabled_versions: tuple[str, ...] = Field(
        (), description="CAMARA API versions not to serve, as <api>/<version> "
        "(\"sim-swap/v2\", \"kyc-match/vwip\"); their paths answer 404 naming the versions "
        "served")
    kyc_match_id_document_required: bool = Field(
        False, description="KYC Match second-level validation, in the versions that define it "
        "(0.4): a request without idDocument is 403 KNOW_YOUR_CUSTOMER.ID_DOCUMENT_REQUIRED, "
        "one whose idDocument is not the holder's 403 KNOW_YOUR_CUSTOMER.ID_DOCUMENT_MISMATCH")

    @field_validator("holder_key")
    @classmethod
    def _hex_key(cls, value: SecretStr | None) -> SecretStr | None:
        return hex_key(value)

    @field_validator("disabled_versions")
    @classmethod
    def _known_versions(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        unknown = [name for name in value if name not in version_names()]
        if unknown:
            raise ValueError(f"unknown CAMARA API version {', '.join(unknown)}; the versions "
                             f"are {', '.join(version_names())}")
        return value


class OAuthSettings(_Section):
    """The gateway as an OAuth 2.0 authorization server."""

    strict_audience: bool = Field(
        False, description="Accept client assertions only with the issuer identifier as their "
        "sole audience (draft-ietf-oauth-rfc7523bis); otherwise the token endpoint URL of "
        "RFC 7523 is accepted too")


DEFAULT_LISTEN_URL = "http://127.0.0.1:8080"
"""Where ``serve`` listens by default: the issuer of commands that run no server."""


class ConsentSenderSettings(_Section):
    """How the gateway asks a subscriber to approve a CIBA request: ``file`` appends one JSON
    line ``{"to","text","url","at"}`` per message (demo, tests; an SMS or push adapter takes
    its place in production)."""

    kind: Literal["file"] = "file"
    path: Path | None = Field(None, description="file kind: where to append; default "
                              "<home>/operator/ciba-consent.jsonl")


class CibaSettings(_Section):
    """Client-Initiated Backchannel Authentication (OpenID CIBA Core 1.0)."""

    purposes: dict[str, Literal["legitimate_interest", "consent"]] = Field(
        {"dpv:FraudPreventionAndDetection": "legitimate_interest"},
        description="The dpv: purposes a request may name, each with its legal basis: "
        "legitimate_interest approves at once, consent asks the subscriber")
    request_seconds: int = Field(300, ge=10, le=3600,
                                 description="How long an auth_req_id lives (expires_in)")
    interval_seconds: int = Field(5, ge=1, le=60,
                                  description="The least wait between polls (interval)")
    binding_message_length: int = Field(100, ge=1, le=1000)
    sender: ConsentSenderSettings = ConsentSenderSettings()

    @field_validator("purposes")
    @classmethod
    def _dpv(cls, value: dict[str, str]) -> dict[str, str]:
        bad = [p for p in value if not re.fullmatch(r"dpv:[A-Za-z0-9]{1,120}", p)]
        if bad:
            raise ValueError(f"purposes must be dpv: names, not {bad}")
        return value


class HttpSettings(_Section):
    """Bounds on what one HTTP client may hold of a server (``serve``), see numident.web.server.
    """

    header_timeout_seconds: float = Field(
        10.0, gt=0, description="A request's head must arrive whole within this time of the "
        "connection opening or of the previous response; otherwise 408 and the connection "
        "closes")
    body_timeout_seconds: float = Field(
        30.0, gt=0, description="A request's body must arrive whole within this time of its "
        "head; otherwise 408 and the connection closes")
    keep_alive_seconds: int = Field(5, ge=1, description="An idle kept-alive connection "
                                    "closes after this time")
    max_header_bytes: int = Field(16_384, ge=1024, le=1_048_576,
                                  description="The largest request head; larger gets 431")
    max_concurrency: int = Field(1000, ge=1, description="Connections and requests in "
                                 "progress at once; past it new requests get 503")


class LimitSettings(_Section):
    """Gateway-wide defaults of the per-organizer limits on identification items.

    An organizer's own values (admin API, ``add-organizer``, ``set-limits``) override them;
    unset, identification is unlimited. Batch items count one by one.
    """

    rate_limit: int | None = Field(
        None, ge=1, description="Items per second per organizer, enforced by each replica on "
        "its own (N replicas admit up to N times this)")
    daily_quota: int | None = Field(
        None, ge=1, description="Items per UTC day per organizer, counted in the database "
        "and so shared by all replicas")
    audit_interval_seconds: float = Field(
        60.0, gt=0, description="At most one audit entry per organizer and limit in this time "
        "(per replica), however many requests are refused")


class AuditSettings(_Section):
    """The hash chain of the audit trail (docs/audit.md); each server seals in the background."""

    seal_seconds: float = Field(
        1.0, gt=0, description="How often the server chains the audit entries written since "
        "(every replica does; they take turns under one database lock)")
    seal_batch: int = Field(
        500, ge=1, le=100_000, description="Entries chained per transaction: bounds how long "
        "one sealer holds the chain's lock")
    checkpoint_seconds: float = Field(
        3600.0, gt=0, description="How often the chain's head is signed with the side's key "
        "(the operator's notice key; the organizer's key on the messenger side), when "
        "entries were added since the last checkpoint")


class OperatorSettings(_Section):
    name: str = "operator"
    public_url: str | None = Field(
        None, description="Base URL organizers use: the OAuth issuer identifier and the source "
        "of notices; unset, the http://HOST:PORT that serve listens on")
    deferred: bool = Field(False, description="Answer with 202 and a poll URL instead of at once")
    check_seconds: float = Field(0.0, ge=0, description="Time a registry check takes (deferred)")
    workers: int = Field(4, ge=1, le=256)
    max_pending: int = Field(100_000, ge=1)
    answer_deadline_seconds: float = Field(
        ANSWER_DEADLINE.total_seconds(), gt=0, le=ANSWER_DEADLINE.total_seconds(),
        description="The deadline of an answer (answerDue): the rule's 20 minutes; only "
        "tests and benchmarks shorten it, to see the deadline at work within seconds")
    lease_seconds: float = Field(
        30.0, gt=0, description="How long a replica owns the deferred requests it claimed; "
        "then another replica may answer them. Must exceed the time of four checks")
    admin_token: SecretStr | None = None
    token_lifetime_seconds: int = Field(600, ge=30, le=3600)
    max_body_bytes: int = Field(1_000_000, ge=1024)
    allowed_regions: frozenset[str] = Field(
        frozenset({"RU"}), description="ISO 3166 regions whose numbers the registry holds: "
        "an import refuses numbers of any other country")

    @property
    def national_region(self) -> str | None:
        """The region the staff's national forms (``89161234567``) are read in: the only
        allowed region, else None (then only E.164 is taken)."""
        return national_region(None, self.allowed_regions)
    dispatch: DispatchSettings = DispatchSettings()
    nats_url: str | None = None
    nats_prefix: str = "numident"
    camara: CamaraSettings = CamaraSettings()
    oauth: OAuthSettings = OAuthSettings()
    ciba: CibaSettings = CibaSettings()
    limits: LimitSettings = LimitSettings()
    http: HttpSettings = HttpSettings()
    audit: AuditSettings = AuditSettings()

    def base_url(self, listening: str | None = None) -> str:
        """The gateway's public base URL, without a trailing slash: ``public_url`` when set,
        else ``listening`` (the server's own address), else :data:`DEFAULT_LISTEN_URL`."""
        return (self.public_url or listening or DEFAULT_LISTEN_URL).rstrip("/")


class OperatorEndpoint(_Section):
    """How the messenger service reaches one operator (keyed by the operator's ИНН)."""

    inn: str
    name: str = ""
    gateway_url: str
    token_url: str | None = None
    client_id: str | None = None
    notice_public_key: str = Field(description="PEM or JWK text, or a path to a file holding it")
    owner_ids: tuple[str, ...] = Field((), description="The operator's OwnerId values in the "
                                       "national portability database")
    mncs: tuple[str, ...] = Field((), description="Its mobile network codes (MNC)")


class ProviderSettings(_Section):
    """How one channel's provider is reached: ``file`` appends JSON lines (demo, tests),
    ``http`` sends one request per code to ``url``.

    The HTTP request's shape: ``body`` maps each field to a template over ``{to}`` (E.164),
    ``{to_digits}`` (without the ``+``), ``{code}`` and ``{text}``, sent as JSON or as a form
    (``encoding``); credentials are a bearer ``token``, ``username`` and ``password`` (basic),
    or ``token`` under the header ``token_header``. A flash call's provider answers with the
    calling number at ``caller_field`` (a dotted path in its JSON answer)."""

    kind: Literal["file", "http"] = "file"
    path: Path | None = Field(None, description="file kind: where to append; default "
                              "<home>/messenger/<channel>.jsonl")
    url: str | None = None
    token: SecretStr | None = None
    token_header: str | None = Field(
        None, description="send token in this header (an API key) instead of as a bearer")
    username: str | None = None
    password: SecretStr | None = None
    body: dict[str, str] | None = Field(
        None, description="the request's fields and their templates; default {to, text} (SMS "
        "and voice call: also code for the voice call) or {to} (flash call)")
    encoding: Literal["json", "form"] = "json"
    caller_field: str = "from"
    timeout_seconds: float | None = Field(
        None, gt=0, description="default messenger.request_timeout_seconds")

    @field_validator("body")
    @classmethod
    def _known_placeholders(cls, value: dict[str, str] | None) -> dict[str, str] | None:
        for field, template in (value or {}).items():
            unknown = sorted(set(_PLACEHOLDER.findall(template)) - PLACEHOLDERS)
            if unknown:
                raise ValueError(f"field {field!r} uses unknown placeholder(s) "
                                 f"{', '.join(unknown)} (known: {', '.join(sorted(PLACEHOLDERS))})")
        return value

    @model_validator(mode="after")
    def _http_has_url(self) -> ProviderSettings:
        if self.kind == "http" and not self.url:
            raise ValueError("url is required when kind is 'http'")
        if self.username is not None and self.password is None:
            raise ValueError("password is required with username")
        return self


PLACEHOLDERS = frozenset({"to", "to_digits", "code", "text"})
_PLACEHOLDER = re.compile(r"\{([^{}]*)\}")

Channel = Literal["sms", "flash_call", "voice_call"]


class FlashCallSettings(ProviderSettings):
    code_digits: int = Field(4, ge=3, le=6, description="The code is this many last digits "
                             "of the calling number the provider reports")


class ChannelSettings(_Section):
    """Which channels carry codes: a request names one or gets ``default``; when its provider
    fails (an error or a timeout), the next channel of ``order`` is tried, after a backoff."""

    order: tuple[Channel, ...] = Field(("sms",), min_length=1, description="The fallback order")
    default: Channel | None = Field(None, description="Default: the first of order")
    attempts: int = Field(1, ge=1, le=5, description="Tries per channel before the next one")
    initial_backoff_seconds: float = Field(0.5, ge=0)
    max_backoff_seconds: float = Field(4.0, ge=0)

    @model_validator(mode="after")
    def _consistent(self) -> ChannelSettings:
        if len(set(self.order)) != len(self.order):
            raise ValueError("order names a channel twice")
        if self.default is not None and self.default not in self.order:
            raise ValueError(f"default {self.default!r} is not one of order")
        return self

    @property
    def first(self) -> Channel:
        return self.default or self.order[0]


class Budget(_Section):
    """At most ``sends`` codes per ``window_seconds`` (a sliding window)."""

    sends: int = Field(ge=0)
    window_seconds: int = Field(3600, gt=0)


class BudgetSettings(_Section):
    """Budgets for code sends, counted in the database over every messenger process; a budget
    set to ``false`` (TOML has no null) does not limit. A request over any budget is refused
    with 429 and Retry-After."""

    per_number: Budget | None = Budget(sends=5, window_seconds=3600)
    per_range: Budget | None = Field(
        Budget(sends=500, window_seconds=3600),
        description="per range of the numbering plan (the row it lists the number in)")
    per_region: Budget | None = Budget(sends=5000, window_seconds=3600)
    per_address: Budget | None = Field(
        Budget(sends=50, window_seconds=3600),
        description="per client address (clientAddress, else the caller's; IPv6 per /64); "
        "generous, as carrier-grade NAT puts many users behind one address")
    total: Budget | None = Field(None, description="all sends of the service")

    @field_validator("*", mode="before")
    @classmethod
    def _false_is_none(cls, value: object) -> object:
        return None if value is False else value


class CircuitSettings(_Section):
    """A range whose codes are asked for and not confirmed (toll fraud's signature) is closed:
    over ``window_seconds``, at least ``min_sends`` and fewer than ``min_success_ratio`` of
    them confirmed."""

    window_seconds: int = Field(3600, gt=0)
    min_sends: int = Field(50, ge=1)
    min_success_ratio: float = Field(0.1, ge=0, le=1)


class PossessionSettings(_Section):
    code_ttl_seconds: int = Field(300, ge=30)
    max_attempts: int = Field(5, ge=1)
    resend_interval_seconds: int = Field(60, ge=0)
    code_length: int = Field(6, ge=4, le=10)
    secret: SecretStr | None = Field(
        None, description="HMAC key for stored one-time codes; when unset a random key is kept "
        "in <home>/messenger/possession.key")
    budgets: BudgetSettings = BudgetSettings()
    circuit: CircuitSettings | None = Field(CircuitSettings(), description="false: none")

    @field_validator("circuit", mode="before")
    @classmethod
    def _no_circuit(cls, value: object) -> object:
        return None if value is False else value


class RoutingSettings(_Section):
    """How loads of the numbering plan and the portability data guard the active data."""

    max_shrink_percent: float = Field(
        10.0, ge=0, le=100, description="A full load that would lose more than this share of "
        "the active data (ports: rows; plan: numbers routed) is refused unless --allow-shrink "
        "is given: a cut or partial snapshot must not pass for the truth")
    load_wait_seconds: float = Field(
        300.0, ge=0, description="How long a load waits for a running routing load before it "
        "is refused (exit 1)")
    lease_seconds: float = Field(
        60.0, gt=0, description="How long a load holds the load lock without renewing it "
        "(it renews with every chunk); a load that died frees the lock after this")


class MessengerSettings(_Section):
    organizer: str = "messenger"
    key_file: Path | None = None
    operators: tuple[OperatorEndpoint, ...] = ()
    allowed_regions: frozenset[str] = Field(
        frozenset({"RU"}), description="ISO 3166 regions whose numbers are served; empty: any")
    default_region: str | None = Field(
        None, description="The region in which a number written without '+' (the national "
        "form, 89161234567 in Russia) is read; unset, the one allowed region when there is "
        "exactly one, else national forms are refused as ambiguous")
    block_on_sim_swap: bool = False
    webhook_url: str | None = None
    api_token: SecretStr | None = None
    admin_token: SecretStr | None = Field(
        None, description="The messenger's staff credential, for the console (/console/); "
        "unset: the console is disabled")
    sms: ProviderSettings = ProviderSettings()
    flash_call: FlashCallSettings = FlashCallSettings()
    voice_call: ProviderSettings = ProviderSettings()
    channels: ChannelSettings = ChannelSettings()
    possession: PossessionSettings = PossessionSettings()
    poll_initial_seconds: float = Field(1.0, gt=0)
    poll_max_seconds: float = Field(30.0, gt=0)
    request_timeout_seconds: float = Field(10.0, gt=0)
    unanswered_after_seconds: float = Field(
        ANSWER_DEADLINE.total_seconds(), gt=0, le=ANSWER_DEADLINE.total_seconds(),
        description="How long to wait for a gateway that has not yet acknowledged a request "
        "before the account becomes unanswered: the rule's 20 minutes; only the demo "
        "shortens it, to show an unreachable operator within seconds")
    public_url: str | None = Field(
        None, description="Base URL operators POST notices to, when a proxy rewrites it; the "
        "signature's @authority and @path are checked against it instead of the request's own "
        "host and path (docs/notices.md)")
    max_body_bytes: int = Field(1_000_000, ge=1024)
    dispatch: DispatchSettings = Field(
        DispatchSettings(), description="Retries of state-change webhooks and usage withdrawals")
    routing: RoutingSettings = RoutingSettings()
    http: HttpSettings = HttpSettings()
    audit: AuditSettings = AuditSettings()

    @field_validator("allowed_regions")
    @classmethod
    def _known_regions(cls, value: frozenset[str]) -> frozenset[str]:
        unknown = sorted(r for r in value if r not in phonenumbers.SUPPORTED_REGIONS)
        if unknown:
            raise ValueError(f"unknown ISO 3166 region(s) {', '.join(unknown)}")
        return value

    @field_validator("default_region")
    @classmethod
    def _known_region(cls, value: str | None) -> str | None:
        if value is not None and value not in phonenumbers.SUPPORTED_REGIONS:
            raise ValueError(f"unknown ISO 3166 region {value!r} (e.g. RU)")
        return value

    @model_validator(mode="after")
    def _default_region_is_served(self) -> MessengerSettings:
        if (self.default_region and self.allowed_regions
                and self.default_region not in self.allowed_regions):
            raise ValueError(f"default_region {self.default_region} is not one of "
                             f"allowed_regions ({', '.join(sorted(self.allowed_regions))})")
        return self

    @property
    def national_region(self) -> str | None:
        """The region national forms are read in, or None when that would be a guess."""
        return national_region(self.default_region, self.allowed_regions)


class TracingSettings(_Section):
    """OpenTelemetry traces (the ``numident[otel]`` extra), exported over OTLP/HTTP."""

    otlp_endpoint: str | None = Field(
        None, description="The collector's base URL (traces go to <url>/v1/traces); unset, "
        "the standard OTEL_EXPORTER_OTLP_ENDPOINT or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT "
        "variables switch tracing on; with none of them there are no traces")
    service_name: str | None = Field(
        None, description="The service.name resource attribute; unset, OTEL_SERVICE_NAME, "
        "else numident-operator or numident-messenger")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="NUMIDENT_", env_nested_delimiter="__",
                                      extra="forbid", frozen=True)

    home: Path = Path(".numident")
    database_url: str | None = None
    database_pool_size: int = Field(
        10, ge=1, le=1000, description="Database connections each server process keeps open, "
        "and as many again in bursts: on PostgreSQL, replicas x 2 x this must stay below the "
        "server's max_connections")
    log_level: str = "INFO"
    log_format: Literal["console", "json"] = "console"
    log_key: SecretStr | None = Field(
        None, description="HMAC-SHA256 key (64 hex digits) of the digests that stand for "
        "phone numbers in logs; set the same on every server whose logs are read together. "
        "Unset, each side derives one from its own secret (the gateway from its holder key, "
        "the messenger service from its possession secret)")
    tracing: TracingSettings = TracingSettings()
    operator: OperatorSettings = OperatorSettings()
    messenger: MessengerSettings = MessengerSettings()

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # The environment overrides the file (passed as init values), as SPEC requires.
        return env_settings, init_settings

    @field_validator("log_key")
    @classmethod
    def _hex_log_key(cls, value: SecretStr | None) -> SecretStr | None:
        return hex_key(value)

    def database_url_for(self, side: Literal["operator", "messenger"]) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.home / f'{side}.db').resolve()}"


def load_settings(config_file: Path | None = None, **overrides: Any) -> Settings:
    """Read the TOML file (if any), apply environment and ``overrides``, validate once."""
    data: dict[str, Any] = {}
    if config_file is not None:
        try:
            data = tomllib.loads(config_file.read_text(encoding="utf-8"))
        except FileNotFoundError as exc:
            raise ConfigurationError(f"config file {config_file} does not exist") from exc
        except tomllib.TOMLDecodeError as exc:
            raise ConfigurationError(f"config file {config_file}: {exc}") from exc
    _merge(data, overrides)
    try:
        return Settings(**data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()
        )
        raise ConfigurationError(f"invalid configuration: {problems}") from exc


def _merge(base: dict[str, Any], extra: dict[str, Any]) -> None:
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            _merge(base[key], value)
        else:
            base[key] = value
