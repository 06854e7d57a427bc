"""The daemon's configuration: one typed, frozen TOML document, checked once at start.

``docs/configuration.md`` documents every field. Loading fails at start, with the field's
dotted path in the message, on an unknown field, a value of the wrong type or outside its
meaning, a secret written in the file (secrets come from the environment only), or live
mode without keys and the confirmation flag. Paper trading is the default, and nothing in
the environment except ``OPTIMIZER_ENABLED`` changes a setting.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any

import msgspec

from liveopt.engine.config import EngineConfig
from liveopt.exchange.rest import DEFAULT_BASE_URL
from liveopt.exchange.signing import Credentials
from liveopt.optimizer import DEFAULT_CONFIG, OptimizerConfig
from liveopt.optimizer import MODES as GENERATION_MODES
from liveopt.scoring import PromotionGate
from liveopt.service.router_types import TAKE_PROFIT_ORDERS
from liveopt.service.views import MODES

__all__ = [
    "OPTIMIZER_ENABLED_ENV",
    "AlertSettings",
    "ApiSettings",
    "ConfigError",
    "ExchangeSettings",
    "JournalSettings",
    "OptimizerSettings",
    "RouterSettings",
    "ServiceConfig",
    "ServiceSettings",
    "TelemetrySettings",
    "config_from_toml",
    "credentials_from_env",
    "load_config",
]

#: Environment variable that turns the optimizer on or off, overriding the file.
OPTIMIZER_ENABLED_ENV = "OPTIMIZER_ENABLED"
_BOOLEAN_WORDS = {"1": True, "true": True, "0": False, "false": False}
# A key whose name says it holds a secret: refused anywhere in the file.
_SECRET_KEY = re.compile(r"secret|passphrase|password|api_?key|token|credential", re.I)

Positive = Annotated[float, msgspec.Meta(gt=0.0)]
Fraction = Annotated[float, msgspec.Meta(gt=0.0, le=1.0)]


class ConfigError(ValueError):
    """The configuration cannot be used; the message names the field (dotted path) or the
    environment variable at fault."""


class _Section(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    pass


class ServiceSettings(_Section):
    """``[service]``: where state lives and how the main strategy trades."""

    data_dir: str = "liveopt-data"
    mode: str = "paper"
    confirm_live: bool = False
    symbol: str = "XBTUSDTM"

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"mode: {self.mode!r} is not one of {', '.join(MODES)}")
        if not self.data_dir.strip():
            raise ValueError("data_dir: must not be empty")
        if not re.fullmatch(r"[A-Z0-9]{2,30}", self.symbol):
            raise ValueError(f"symbol: {self.symbol!r} is not a KuCoin futures symbol "
                             "(upper-case letters and digits, e.g. XBTUSDTM)")


class ExchangeSettings(_Section):
    """``[exchange]``: the REST endpoint, the simulator switch, the account's VIP level."""

    rest_url: str = DEFAULT_BASE_URL
    use_simulator: bool = False
    vip_level: Annotated[int, msgspec.Meta(ge=0, le=12)] = 0

    def __post_init__(self) -> None:
        if not self.rest_url.startswith(("http://", "https://")):
            raise ValueError(f"rest_url: {self.rest_url!r} must start with http:// or https://")


class OptimizerSettings(_Section):
    """``[optimizer]``: the variant population, its generation and the promotion gate."""

    enabled: bool = False
    variants: Annotated[int, msgspec.Meta(ge=1)] = 200
    seed: Annotated[int, msgspec.Meta(ge=0)] = 0
    generation: str = "sobol"
    auto_promote: bool = False
    evaluate_every_s: Positive = 60.0
    gate: PromotionGate = PromotionGate()
    space: OptimizerConfig = DEFAULT_CONFIG

    def __post_init__(self) -> None:
        if self.generation not in GENERATION_MODES:
            raise ValueError(f"generation: {self.generation!r} is not one of "
                             f"{', '.join(GENERATION_MODES)}")


class ApiSettings(_Section):
    """``[api]``: the HTTP/WebSocket server."""

    host: str = "127.0.0.1"
    port: Annotated[int, msgspec.Meta(ge=0, le=65535)] = 8765

    def __post_init__(self) -> None:
        if not self.host.strip():
            raise ValueError("host: must not be empty")


class TelemetrySettings(_Section):
    """``[telemetry]``: the WebSocket feed's cadence and sizes."""

    cadence_s: Positive = 1.0
    client_queue: Annotated[int, msgspec.Meta(ge=1)] = 64
    leaderboard_rows: Annotated[int, msgspec.Meta(ge=1)] = 20
    equity_points: Annotated[int, msgspec.Meta(ge=2)] = 300


class JournalSettings(_Section):
    """``[journal]``: durability schedule of the trade journals, tick log and snapshots."""

    fsync_interval_s: Positive = 1.0
    fsync_every: Annotated[int, msgspec.Meta(ge=1)] = 100
    snapshot_interval_s: Positive = 60.0


class AlertSettings(_Section):
    """``[alerts]``: alert thresholds."""

    crash_rate: Fraction = 0.10
    memory_pct: Annotated[float, msgspec.Meta(gt=0.0, le=100.0)] = 80.0


class RouterSettings(_Section):
    """``[router]``: how the main strategy's orders are sent in modes ``sim`` and ``live``
    (its stop-loss, take-profit and leverage are the main strategy's parameters)."""

    take_profit_order: str = "limit"
    order_attempts: Annotated[int, msgspec.Meta(ge=1, le=10)] = 3
    reconcile_interval_s: Positive = 30.0

    def __post_init__(self) -> None:
        if self.take_profit_order not in TAKE_PROFIT_ORDERS:
            raise ValueError(f"take_profit_order: {self.take_profit_order!r} is not one of "
                             f"{', '.join(TAKE_PROFIT_ORDERS)}")


class ServiceConfig(_Section):
    """The whole daemon configuration (``liveopt run --config liveopt.toml``).

    Every field is documented in ``docs/configuration.md``. The struct holds no secret,
    so it may be logged or served as it is; :func:`credentials_from_env` reads the keys.
    """

    service: ServiceSettings = ServiceSettings()
    exchange: ExchangeSettings = ExchangeSettings()
    optimizer: OptimizerSettings = OptimizerSettings()
    engine: EngineConfig = EngineConfig()
    api: ApiSettings = ApiSettings()
    telemetry: TelemetrySettings = TelemetrySettings()
    journal: JournalSettings = JournalSettings()
    alerts: AlertSettings = AlertSettings()
    router: RouterSettings = RouterSettings()

    @property
    def data_dir(self) -> Path:
        """``service.data_dir`` as a path."""
        return Path(self.service.data_dir)


def load_config(path: str | Path | None, environ: Mapping[str, str]) -> ServiceConfig:
    """Read the TOML file at ``path`` (None: every default) and apply the environment.

    Raises
    ------
    ConfigError
        If the file cannot be read, is not TOML, or any check of
        :func:`config_from_toml` fails.
    """
    if path is None:
        return config_from_toml("", environ)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(f"config file {path}: cannot be read: {error}") from None
    try:
        return config_from_toml(text, environ)
    except ConfigError as error:
        raise ConfigError(f"config file {path}: {error}") from None


def config_from_toml(text: str, environ: Mapping[str, str]) -> ServiceConfig:
    """Decode TOML ``text`` into a :class:`ServiceConfig` and apply the environment.

    Raises
    ------
    ConfigError
        Naming the field: invalid TOML, an unknown field, a wrong type or value, a
        secret-looking key (secrets come from the environment), an invalid
        ``OPTIMIZER_ENABLED``, or ``mode = "live"`` without keys or ``confirm_live``.
    """
    try:
        raw = msgspec.toml.decode(text)
    except msgspec.DecodeError as error:
        raise ConfigError(f"invalid TOML: {error}") from None
    _refuse_secrets(raw, "")
    try:
        config = msgspec.convert(raw, ServiceConfig)
    except msgspec.ValidationError as error:
        raise ConfigError(_field_message(str(error))) from None
    enabled = _optimizer_enabled_override(environ)
    if enabled is not None:
        optimizer = msgspec.structs.replace(config.optimizer, enabled=enabled)
        config = msgspec.structs.replace(config, optimizer=optimizer)
    _check_mode(config, environ)
    return config


def credentials_from_env(environ: Mapping[str, str]) -> Credentials | None:
    """The KuCoin keys from ``KUCOIN_API_KEY/SECRET/PASSPHRASE`` (None if none is set).

    Raises
    ------
    ConfigError
        If only some of the three are set (naming the missing ones, never a value).
    """
    try:
        return Credentials.from_env(dict(environ))
    except ValueError as error:
        raise ConfigError(str(error)) from None


def _refuse_secrets(node: Any, path: str) -> None:
    if not isinstance(node, dict):
        return
    for key, value in node.items():
        where = f"{path}.{key}" if path else str(key)
        if _SECRET_KEY.search(str(key)):
            raise ConfigError(
                f"{where}: secrets are not read from the configuration file; they come from "
                "the environment only (KUCOIN_API_KEY, KUCOIN_API_SECRET, "
                "KUCOIN_API_PASSPHRASE, LIVEOPT_API_TOKEN)"
            )
        _refuse_secrets(value, where)


def _optimizer_enabled_override(environ: Mapping[str, str]) -> bool | None:
    value = environ.get(OPTIMIZER_ENABLED_ENV)
    if value is None:
        return None
    word = value.strip().lower()
    if word not in _BOOLEAN_WORDS:
        raise ConfigError(
            f"{OPTIMIZER_ENABLED_ENV}: {value!r} is not one of 1, 0, true, false"
        )
    return _BOOLEAN_WORDS[word]


def _check_mode(config: ServiceConfig, environ: Mapping[str, str]) -> None:
    # Live mode is the only setting that sends real orders; it takes three deliberate
    # steps (the mode, the keys, the flag) and no environment variable can take one.
    if config.service.mode != "live":
        return
    if config.exchange.use_simulator:
        raise ConfigError('exchange.use_simulator: must be false with service.mode = "live"')
    if credentials_from_env(environ) is None:
        raise ConfigError(
            'service.mode: "live" needs KUCOIN_API_KEY, KUCOIN_API_SECRET and '
            "KUCOIN_API_PASSPHRASE in the environment"
        )
    if not config.service.confirm_live:
        raise ConfigError(
            'service.confirm_live: service.mode = "live" sends real orders to KuCoin; '
            "set confirm_live = true to confirm"
        )


_AT_PATH = re.compile(r"^(?P<message>.*?)(?: - at `\$(?P<path>[^`]*)`)?$", re.S)
_UNKNOWN = re.compile(r"^Object contains unknown field `(?P<name>[^`]+)`$")
_FIELD_PREFIX = re.compile(r"^(?P<field>[A-Za-z_][\w.]*): (?P<rest>.*)$", re.S)


def _field_message(text: str) -> str:
    # msgspec says "<message> - at `$.a.b`"; a nested __post_init__ says "field: ..."
    # at its struct's path. Both become "a.b.field: ...", the path a user edits.
    match = _AT_PATH.match(text)
    assert match is not None  # the pattern matches any text
    message, path = match["message"], (match["path"] or "").lstrip(".")
    unknown = _UNKNOWN.match(message)
    if unknown:
        name = f"{path}.{unknown['name']}" if path else unknown["name"]
        return f"{name}: unknown field (see docs/configuration.md for the valid ones)"
    prefix = _FIELD_PREFIX.match(message)
    if prefix and path:
        return f"{path}.{prefix['field']}: {prefix['rest']}"
    if path:
        return f"{path}: {message[:1].lower()}{message[1:]}"
    return message
