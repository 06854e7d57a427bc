"""Configuration of the local exchange simulator: frozen, validated, one error per bad field.

``SimConfig`` is what ``liveopt sim`` builds from its flags and what ``start_sim`` takes;
``FaultConfig`` holds the fault-injection switches (all off by default) and can be replaced
at runtime through ``RunningSim.set_faults``.
"""

from __future__ import annotations

import math

import msgspec

from liveopt.exchange.signing import Credentials

# Documented local defaults (docs/simulator.md). They only ever guard a local simulator.
DEFAULT_API_KEY = "sim-key"
DEFAULT_API_SECRET = "sim-secret"
DEFAULT_API_PASSPHRASE = "sim-passphrase"
DEFAULT_SYMBOLS = ("XBTUSDTM",)

ORDER_FAILURE_STATUSES = (500, 503)


def _require(ok: bool, field: str, problem: str, value: object) -> None:
    if not ok:
        raise ValueError(f"{field}: {problem}, got {value!r}")


def _non_negative(field: str, value: float) -> None:
    _require(math.isfinite(value) and value >= 0, field, "must be a finite number >= 0", value)


def _positive(field: str, value: float) -> None:
    _require(math.isfinite(value) and value > 0, field, "must be a finite number > 0", value)


def _rate(field: str, value: float) -> None:
    _require(math.isfinite(value) and 0.0 <= value <= 1.0, field, "must be within [0, 1]", value)


class FaultConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Fault-injection switches; every one is off at its default.

    Parameters
    ----------
    drop_connections_every_s
        Close every WebSocket connection every N seconds (0 = never).
    frame_delay_ms
        Hold every market-data frame for D milliseconds before sending it (pong and ack
        are not held themselves but queue behind held frames, as on a slow link).
    burst_429_every_s, burst_429_duration_s
        Every N seconds, answer every REST request with HTTP 429 / 429000 for M seconds.
    malformed_frame_rate
        Probability that a market-data frame is replaced by text that is not valid JSON.
    sequence_gap_rate
        Probability that a sequenced market-data frame (execution, tickerV2, ticker,
        level2) is never sent, so subscribers see a gap in ``sn``/``sequence``.
    order_failure_rate
        Probability that an order endpoint (place, test, cancel) fails (1 = always).
    order_failure_status
        HTTP status of those failures: 500 (code 500000) or 503 (code 503000).
    order_failure_after_apply
        When true, a failing order request is carried out first and only its reply is
        replaced by the failure (a lost reply: the case client order ids exist for).
    """

    drop_connections_every_s: float = 0.0
    frame_delay_ms: float = 0.0
    burst_429_every_s: float = 0.0
    burst_429_duration_s: float = 0.0
    malformed_frame_rate: float = 0.0
    sequence_gap_rate: float = 0.0
    order_failure_rate: float = 0.0
    order_failure_status: int = 500
    order_failure_after_apply: bool = False

    def __post_init__(self) -> None:
        _non_negative("drop_connections_every_s", self.drop_connections_every_s)
        _non_negative("frame_delay_ms", self.frame_delay_ms)
        _non_negative("burst_429_every_s", self.burst_429_every_s)
        _non_negative("burst_429_duration_s", self.burst_429_duration_s)
        if self.burst_429_every_s > 0:
            _require(self.burst_429_duration_s <= self.burst_429_every_s, "burst_429_duration_s",
                     "must not exceed burst_429_every_s", self.burst_429_duration_s)
        _rate("malformed_frame_rate", self.malformed_frame_rate)
        _rate("sequence_gap_rate", self.sequence_gap_rate)
        _rate("order_failure_rate", self.order_failure_rate)
        _require(self.order_failure_status in ORDER_FAILURE_STATUSES, "order_failure_status",
                 f"must be one of {ORDER_FAILURE_STATUSES}", self.order_failure_status)

    @property
    def any_enabled(self) -> bool:
        """True when at least one switch is on."""
        return self != FaultConfig()


class SimConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Everything ``liveopt sim`` needs. Intervals in the wire protocol's units (ms) where
    the protocol has them, seconds otherwise.

    Parameters
    ----------
    host, port
        Where to listen; port 0 binds a free port (read it back from ``RunningSim.port``).
    data
        A trades or candles file to replay; None runs the seeded generator.
    seed
        Seed of the market generator and of the fault random source.
    speed
        Market time runs this many times faster than the server clock.
    symbols
        The contracts to list.
    credentials
        The one API key the private endpoints accept.
    ping_interval_ms, ping_timeout_ms
        Announced in the bullet responses.
    idle_timeout_s
        A WebSocket with no client message for this long gets an error frame and is closed.
    token_ttl_s
        How long a bullet token may be used to connect.
    max_topics
        Topics (one per symbol) per connection.
    uplink_limit, uplink_window_s
        Client messages allowed per connection per window; one more closes the connection.
    send_queue_size
        Frames queued per client; a client that lets it fill up is disconnected.
    tick_ms
        How often the market loop advances the exchange and fans out its events.
    depth5_interval_ms, candle_interval_ms
        Push periods of ``level2Depth5`` (only when changed) and ``limitCandle``.
    futures_pool_quota, public_pool_quota, rate_window_s
        Rate-limit pools (weight per window).
    max_timestamp_skew_ms
        Largest accepted distance between ``KC-API-TIMESTAMP`` and the server clock.
    balance, currency
        The simulated account.
    faults
        Fault-injection switches.
    """

    host: str = "127.0.0.1"
    port: int = 0
    data: str | None = None
    seed: int = 0
    speed: float = 1.0
    symbols: tuple[str, ...] = DEFAULT_SYMBOLS
    credentials: Credentials = msgspec.field(
        default_factory=lambda: Credentials(DEFAULT_API_KEY, DEFAULT_API_SECRET,
                                            DEFAULT_API_PASSPHRASE))
    ping_interval_ms: int = 18_000
    ping_timeout_ms: int = 10_000
    idle_timeout_s: float = 60.0
    token_ttl_s: float = 86_400.0
    max_topics: int = 100
    uplink_limit: int = 100
    uplink_window_s: float = 10.0
    send_queue_size: int = 1024
    tick_ms: int = 100
    depth5_interval_ms: int = 100
    candle_interval_ms: int = 1000
    futures_pool_quota: int = 2000
    public_pool_quota: int = 2000
    rate_window_s: float = 30.0
    max_timestamp_skew_ms: int = 5000
    balance: float = 100_000.0
    currency: str = "USDT"
    faults: FaultConfig = msgspec.field(default_factory=FaultConfig)

    def __post_init__(self) -> None:
        _require(bool(self.host), "host", "must not be empty", self.host)
        _require(0 <= self.port <= 65535, "port", "must be within [0, 65535]", self.port)
        _positive("speed", self.speed)
        _require(len(self.symbols) > 0, "symbols", "must name at least one contract",
                 self.symbols)
        for symbol in self.symbols:
            _require(bool(symbol) and symbol.isalnum() and symbol.isupper(), "symbols",
                     "each symbol must be upper-case letters and digits", symbol)
        _require(len(set(self.symbols)) == len(self.symbols), "symbols",
                 "must not repeat a symbol", self.symbols)
        for name in ("ping_interval_ms", "ping_timeout_ms", "max_topics", "uplink_limit",
                     "send_queue_size", "tick_ms", "depth5_interval_ms", "candle_interval_ms",
                     "futures_pool_quota", "public_pool_quota", "max_timestamp_skew_ms"):
            value = getattr(self, name)
            _require(value > 0, name, "must be > 0", value)
        for name in ("idle_timeout_s", "token_ttl_s", "uplink_window_s", "rate_window_s",
                     "balance"):
            _positive(name, getattr(self, name))
        _require(bool(self.currency), "currency", "must not be empty", self.currency)

    @property
    def rest_url(self) -> str:
        """The REST base URL for this host and port."""
        return f"http://{self.host}:{self.port}"
