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

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from numident.core.identification import ANSWER_DEADLINE
from numident.errors import ConfigurationError


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DispatchSettings(_Section):
    initial_backoff_seconds: float = Field(1.0, gt=0)
    max_backoff_seconds: float = Field(3600.0, gt=0)
    give_up_after_hours: float = Field(24.0, gt=0)
    concurrency: int = Field(16, ge=1, le=1024)
    poll_seconds: float = Field(0.5, gt=0)
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

    @field_validator("holder_key")
    @classmethod
    def _hex_key(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not re.fullmatch(r"[0-9a-fA-F]{64}", value.get_secret_value()):
            raise ValueError("must be 64 hex digits (32 bytes)")
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


class OperatorSettings(_Section):
    name: str = "operator"
    public_url: str = Field("http://127.0.0.1:8080",
                            description="Base URL organizers use; the token endpoint's audience")
    deferred: bool = Field(False, description="Answer with 202 and a poll URL instead of at once")
    check_seconds: float = Field(0.0, ge=0, description="Time a registry check takes (deferred)")
    workers: int = Field(4, ge=1, le=256)
    max_pending: int = Field(100_000, ge=1)
    admin_token: SecretStr | None = None
    token_lifetime_seconds: int = Field(600, ge=30, le=3600)
    max_body_bytes: int = Field(1_000_000, ge=1024)
    dispatch: DispatchSettings = DispatchSettings()
    nats_url: str | None = None
    nats_prefix: str = "numident"
    camara: CamaraSettings = CamaraSettings()
    limits: LimitSettings = LimitSettings()
    http: HttpSettings = HttpSettings()


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


class SmsSettings(_Section):
    """How one-time codes reach users: ``file`` appends JSON lines (demo, tests), ``http``
    POSTs ``{"to","text"}`` to a provider with ``Authorization: Bearer <token>``."""

    kind: Literal["file", "http"] = "file"
    path: Path | None = Field(None, description="file kind: where to append; default "
                              "<home>/messenger/sms.jsonl")
    url: str | None = None
    token: SecretStr | None = None


class PossessionSettings(_Section):
    code_ttl_seconds: int = Field(300, ge=30)
    max_attempts: int = Field(5, ge=1)
    resend_interval_seconds: int = Field(60, ge=0)
    code_length: int = Field(6, ge=4, le=10)
    secret: SecretStr | None = Field(
        None, description="HMAC key for stored one-time codes; when unset a random key is kept "
        "in <home>/messenger/possession.key")


class MessengerSettings(_Section):
    organizer: str = "messenger"
    key_file: Path | None = None
    operators: tuple[OperatorEndpoint, ...] = ()
    allowed_regions: frozenset[str] = frozenset({"RU"})
    block_on_sim_swap: bool = False
    webhook_url: str | None = None
    api_token: SecretStr | None = None
    sms: SmsSettings = SmsSettings()
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
        "signature's @target-uri is checked against it instead of the request's own URL")
    max_body_bytes: int = Field(1_000_000, ge=1024)
    dispatch: DispatchSettings = Field(
        DispatchSettings(), description="Retries of state-change webhooks and usage withdrawals")
    http: HttpSettings = HttpSettings()


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="NUMIDENT_", env_nested_delimiter="__",
                                      extra="forbid", frozen=True)

    home: Path = Path(".numident")
    database_url: str | None = None
    log_level: str = "INFO"
    log_format: Literal["console", "json"] = "console"
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
