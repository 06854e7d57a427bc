"""``Engine``: every variant of a strategy on one market stream, each on its own paper account.

Embeddable: plain method calls, no asyncio, no threads. Single events
(:meth:`Engine.on_trade` and friends) are appended to a Cython buffer and the compiled
variant pass (``liveopt._core.variant_pass``) runs over the buffer when it fills, or when
results are read; array calls (:meth:`Engine.on_trades`, :meth:`Engine.on_candles`) run it
directly. Either way every event is processed in order, so results do not depend on how
the stream was cut into calls.
"""

from __future__ import annotations

import math
from typing import Any

import msgspec
import numpy as np

from liveopt._core import variant_pass as vp
from liveopt._core.events import EventBuffer
from liveopt.data.candles import validate_trades
from liveopt.engine.config import EngineConfig
from liveopt.engine.records import FillBatch, RecordLog
from liveopt.indicators.bank import IndicatorBank
from liveopt.indicators.specs import SIGNAL_INDICATORS, IndicatorSpec
from liveopt.metrics import TradeStats
from liveopt.optimizer import FLOAT_PARAMS, VariantParams, VariantSet
from liveopt.timeframes import timeframe_ns
from liveopt.units import NS_PER_SECOND

_YEAR_NS = 365 * 24 * 3600 * NS_PER_SECOND
# Array calls are processed in chunks of this many events, the size of the per-event
# event columns the kernel reads (kind, ts, five values) and writes (fill and mark prices):
# 64k events take 5.2 MB.
_CHUNK = 65_536
# 2: the internal order groups variants by signal configuration (version 1's state rows
# would be restored into the wrong variants, so it is refused).
_SNAPSHOT_VERSION = 2

#: Fields of :meth:`Engine.metrics`, one row per variant.
METRICS_DTYPE = np.dtype(
    [
        ("variant", np.int64),
        ("config_hash", np.uint64),
        ("trades", np.int64),
        ("wins", np.int64),
        ("losses", np.int64),
        ("win_rate", np.float64),
        ("net_pnl", np.float64),
        ("gross_pnl", np.float64),
        ("fees", np.float64),
        ("funding", np.float64),
        ("equity", np.float64),
        ("roi_pct", np.float64),
        ("mean_return", np.float64),
        ("var_return", np.float64),
        ("skewness", np.float64),
        ("kurtosis", np.float64),
        ("sharpe_per_trade", np.float64),
        ("sharpe_annualised", np.float64),
        ("sortino_per_trade", np.float64),
        ("profit_factor", np.float64),
        ("max_drawdown", np.float64),
        ("max_win_streak", np.int64),
        ("max_loss_streak", np.int64),
        ("exposure_ns", np.int64),
        ("entries_skipped", np.int64),
        ("side", np.int8),
        ("lots", np.float64),
        ("entry_price", np.float64),
        ("unrealised_pnl", np.float64),
        ("active", np.bool_),
        ("stop_reason", np.int8),
    ]
)

#: ``METRICS_DTYPE["stop_reason"]`` codes: why a variant is not active (0: it is).
STOP_REASON_NAMES: dict[int, str] = {
    0: "",
    vp.STOPPED_MAX_LOSS: "max_loss",
    vp.STOPPED_MAX_DRAWDOWN: "max_drawdown",
    vp.STOPPED_HALT: "global_halt",
    vp.STOPPED_BY_CALLER: "stopped",
}


class Engine:
    """N variants evaluated together on one market stream (docs/paper-execution.md).

    Parameters
    ----------
    config : EngineConfig
        Execution settings shared by all variants.
    variants : VariantSet
        The variants; row ``i`` is variant id ``i`` (row 0 the baseline).
    keep_records : bool
        Keep fills and closed trades until :meth:`drain_fills`; with False they are only
        counted (long replays whose caller reads :meth:`metrics` alone).

    Notes
    -----
    ``on_trade``, ``on_quote``, ``on_depth`` and ``on_funding_rate`` are the Cython
    buffer's bound methods (about 100-200 ns a call from a Python loop, measured on the
    2-core VM, loop included); the buffered events are
    processed before any result is read. An engine takes either events or candles
    (:meth:`on_candles`), not both.
    """

    def __init__(self, config: EngineConfig, variants: VariantSet, *,
                 keep_records: bool = True) -> None:
        if not isinstance(config, EngineConfig):
            raise TypeError(f"config must be an EngineConfig, got {type(config).__name__}")
        if not isinstance(variants, VariantSet):
            raise TypeError(f"variants must be a VariantSet, got {type(variants).__name__}")
        n = len(variants)
        if n == 0:
            raise ValueError("the variant set is empty")
        self.config = config
        self.variants = variants
        self.keep_records = keep_records
        names = [variants.config.timeframes[i] for i in variants.timeframe]
        bank = IndicatorBank(
            IndicatorSpec(kind=spec.kind, params=spec.params, timeframe=tf)
            for tf in set(names) for spec in SIGNAL_INDICATORS
        )
        self._bank = bank
        #: Timeframes in use, shortest first.
        self.timeframes: tuple[str, ...] = bank.timeframes
        self._signal_rows = np.array(
            [
                [bank.row(IndicatorSpec(kind=s.kind, params=s.params, timeframe=tf))
                 for s in SIGNAL_INDICATORS]
                for tf in self.timeframes
            ],
            dtype=np.int64,
        )
        self._tf_ns = np.array([timeframe_ns(tf) for tf in self.timeframes], dtype=np.int64)
        perm, tf_index, signal_config = self._layout(variants)
        self._perm = perm
        self._inverse = np.argsort(perm).astype(np.int64)
        self._build_parameters(variants, perm, tf_index, signal_config)
        self._build_settings(config)
        self._init_state(n)
        self._stats = TradeStats(n, config.capital)
        self._build_buffers(n, config.buffer_events)

        self._buffer = EventBuffer(config.buffer_events, self._consume_buffer)
        #: Append a trade: ``on_trade(ts_ns, price, size, side)``.
        self.on_trade = self._buffer.push_trade
        #: Append a best bid/ask: ``on_quote(ts_ns, bid, bid_size, ask, ask_size)``.
        self.on_quote = self._buffer.push_quote
        #: Append top-5 book sizes: ``on_depth(ts_ns, bid_size_5, ask_size_5)``.
        self.on_depth = self._buffer.push_depth
        #: Append the funding rate for the next funding time: ``on_funding_rate(ts, rate)``.
        self.on_funding_rate = self._buffer.push_funding_rate

    # ----------------------------------------------------------------------------------
    # Set-up

    def _layout(self, variants: VariantSet) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        # The internal order of the variants: by timeframe, then by signal configuration
        # (timeframe, weights, RSI levels, thresholds, minimum confidence), so the variants
        # of a timeframe are one contiguous block and, inside it, variants that score
        # alike are one contiguous run. Returns the order (perm[internal] is the variant
        # id), and each internal variant's timeframe index and signal configuration.
        names = [variants.config.timeframes[i] for i in variants.timeframe]
        tf_index = np.array([self.timeframes.index(tf) for tf in names], dtype=np.int64)
        key = np.column_stack([
            tf_index, variants.weights, variants.rsi_oversold, variants.rsi_overbought,
            variants.strong_buy, variants.buy, variants.sell, variants.strong_sell,
            variants.min_confidence,
        ])
        # np.unique numbers the rows in sorted order, timeframe first.
        _, config = np.unique(key, axis=0, return_inverse=True)
        config = config.reshape(-1).astype(np.int64)
        perm = np.argsort(config, kind="stable").astype(np.int64)
        return perm, tf_index[perm], config[perm]

    def _build_parameters(self, variants: VariantSet, perm: np.ndarray, tf_index: np.ndarray,
                          signal_config: np.ndarray) -> None:
        # The variants' parameters in the kernel's layouts, in internal order.
        n = len(variants)
        self._params = np.empty((vp.N_PARAMS, n))
        for row, column in (
            (vp.P_STOP_LOSS_ROI, variants.stop_loss_roi),
            (vp.P_TAKE_PROFIT_ROI, variants.take_profit_roi),
            (vp.P_BE_BUFFER, variants.break_even_buffer),
            (vp.P_TRAIL_STEP, variants.trailing_step),
            (vp.P_TRAIL_MOVE, variants.trailing_move),
            (vp.P_LEVERAGE, variants.leverage),
            (vp.P_SIZE_PCT, variants.position_size_pct),
            (vp.P_MIN_CONFIDENCE, variants.min_confidence),
            (vp.P_RSI_OVERSOLD, variants.rsi_oversold),
            (vp.P_RSI_OVERBOUGHT, variants.rsi_overbought),
            (vp.P_STRONG_BUY, variants.strong_buy),
            (vp.P_BUY, variants.buy),
            (vp.P_SELL, variants.sell),
            (vp.P_STRONG_SELL, variants.strong_sell),
        ):
            self._params[row] = column[perm]
        self._iparams = np.empty((vp.N_IPARAMS, n), dtype=np.int64)
        self._iparams[vp.IP_MAX_HOLD_NS] = np.round(variants.max_hold_s[perm] * NS_PER_SECOND)
        self._iparams[vp.IP_TIMEFRAME] = tf_index
        # Signal configurations: each is scored once per close, and its variants
        # (internal indices config_start[c] .. config_start[c + 1] - 1) take their
        # decisions from that one score. A grid over stops, targets and leverage has a
        # handful of them (the benchmark's RSI grid: 25 for 1,000 variants); random
        # variants have one each. The configuration's columns are its first variant's.
        first_of_config = np.flatnonzero(np.diff(signal_config, prepend=-1))
        self._config_start = np.append(first_of_config, n).astype(np.int64)
        if len(first_of_config) == n:  # every variant its own configuration: no copy
            self._config_params = self._params
        else:
            self._config_params = np.ascontiguousarray(self._params[:, first_of_config])
        # One row per indicator (the scoring pass streams a row over a block).
        self._config_weights = np.ascontiguousarray(
            variants.weights[perm[first_of_config]].T, dtype=np.float64
        )
        # Per timeframe, its block of configurations, and the indicators some
        # configuration of it weighs: the scoring pass skips the rest (a one-indicator
        # grid then costs one pass, not ten).
        n_tf = len(self.timeframes)
        self._tf_config_start = np.searchsorted(
            tf_index[first_of_config], np.arange(n_tf + 1)
        ).astype(np.int64)
        self._weighted = np.zeros((n_tf, self._config_weights.shape[0]), np.uint8)
        for t in range(n_tf):
            block = self._config_weights[:, self._tf_config_start[t]:self._tf_config_start[t + 1]]
            self._weighted[t] = (block > 0).any(axis=1)
        # The scoring pass's outputs, one entry per configuration: the score, and the
        # class if it is a strong one (else 0), padded to a multiple of 8 configurations
        # (the decisions read it eight at a time); and the decisions' list of the
        # configurations that act.
        n_configs = len(first_of_config)
        self._score = np.zeros(n_configs)
        self._strong = np.zeros(-(-n_configs // 8) * 8, dtype=np.int8)
        self._acting = np.zeros(n_configs, dtype=np.int64)

    def _build_settings(self, config: EngineConfig) -> None:
        # The EngineConfig as the kernel's two settings vectors.
        self._settings = np.empty(vp.N_SETTINGS)
        self._settings[vp.S_CAPITAL] = config.capital
        self._settings[vp.S_TAKER] = config.taker_fee
        self._settings[vp.S_MAKER] = config.maker_fee
        self._settings[vp.S_SLIPPAGE] = config.slippage_bps / 10_000.0
        self._settings[vp.S_MULTIPLIER] = config.multiplier
        self._settings[vp.S_LOT] = config.lot_size
        self._settings[vp.S_MAINT_MARGIN] = config.maint_margin_rate
        capital = config.capital

        def floor(pct: float | None) -> float:
            return -math.inf if pct is None else capital * (1.0 - pct / 100.0)

        self._settings[vp.S_EQUITY_FLOOR] = floor(config.max_loss_pct)
        self._settings[vp.S_HALT_FLOOR] = floor(config.halt_below_pct)
        for row, pct in ((vp.S_MAX_DRAWDOWN, config.max_drawdown_pct),
                         (vp.S_BASELINE_MAX_DRAWDOWN, config.baseline_max_drawdown_pct)):
            self._settings[row] = math.inf if pct is None else pct / 100.0
        self._isettings = np.zeros(vp.N_ISETTINGS, dtype=np.int64)
        self._isettings[vp.IS_LATENCY_NS] = config.latency_ns
        self._isettings[vp.IS_SAMPLE_NS] = config.equity_sample_ns
        self._isettings[vp.IS_SIDES] = {"both": 0, "long": 1, "short": -1}[config.sides]
        self._isettings[vp.IS_TP_LIMIT] = config.take_profit_order == "limit"
        self._isettings[vp.IS_TRAILING] = config.trailing
        self._isettings[vp.IS_BAR_NS] = timeframe_ns(config.bar_timeframe)
        self._isettings[vp.IS_BASELINE] = self._inverse[0]

    def _build_buffers(self, n: int, buffer_events: int) -> None:
        # Scratch and outputs, all caller-owned by the kernel's rules.
        n_tf = len(self.timeframes)
        self._closed = np.zeros(n_tf, dtype=np.uint8)
        self._bar = np.zeros((4, n_tf))
        self._subscores = vp.subscores_buffer()
        self._flagged = np.zeros(n, dtype=np.int64)
        # The live variants' slots for the pass's fast path (rebuilt by every call).
        self._slot_f = np.zeros((vp.N_SLOT_F, n))
        self._slot_i = np.zeros((vp.N_SLOT_I, n), dtype=np.int64)
        self._stale = np.zeros(n, dtype=np.uint8)
        chunk = max(_CHUNK, buffer_events)
        self._scratch = np.empty((4, chunk))
        self._event_kind = np.zeros(chunk, dtype=np.int8)
        self._event_ts = np.zeros(chunk, dtype=np.int64)
        self._event_columns = np.zeros((5, chunk))
        # Each span flushes at most one entry fill and one closed trade per variant.
        self._records = RecordLog(n, self.keep_records)
        self._n_fills = 0
        self._n_trades = 0
        self._mode: str | None = None

    # ----------------------------------------------------------------------------------
    # State

    def _init_state(self, n: int) -> None:
        capital = self.config.capital
        # One row per variant (variant_pass explains the layout).
        self._fstate = np.zeros((n, vp.N_FSTATE))
        self._fstate[:, vp.F_CASH] = capital
        self._fstate[:, vp.F_EQUITY] = capital
        self._fstate[:, vp.F_SAMPLE_EQUITY] = capital
        self._fstate[:, vp.F_LOW_TRIGGER] = -math.inf
        self._fstate[:, vp.F_HIGH_TRIGGER] = math.inf
        self._fstate[:, vp.F_TRAIL_PX] = math.nan
        self._istate = np.zeros((n, vp.N_ISTATE), dtype=np.int64)
        self._istate[:, vp.I_EXPIRY] = vp.NO_TIME
        self._istate[:, vp.I_ACTIVE] = 1
        self._market = np.full(vp.N_MARKET, math.nan)
        self._market[vp.M_HAVE_QUOTE] = 0.0
        self._clock = np.zeros(vp.N_CLOCK, dtype=np.int64)
        self._clock[vp.C_NEXT_FUNDING] = vp.NO_TIME
        # Variants with a position or a pending order, the only ones a span can move.
        self._live = np.zeros(n, dtype=np.int64)
        # Variants that left the live list since the last equity sample.
        self._dirty = np.zeros(n, dtype=np.int64)
        n_tf = len(self.timeframes)
        self._cb_start = np.full(n_tf, vp.NOT_STARTED, dtype=np.int64)
        self._cb_count = np.zeros(n_tf, dtype=np.int64)
        self._candles = np.zeros((vp.N_CANDLE, n_tf))

    def __len__(self) -> int:
        return len(self.variants)

    @property
    def events_processed(self) -> int:
        """Events (or bars) the variant pass has consumed, buffered ones excluded."""
        return int(self._clock[vp.C_EVENTS])

    @property
    def trades_closed(self) -> int:
        """Closed trades over all variants since the start (kept or not)."""
        return self._n_trades

    # ----------------------------------------------------------------------------------
    # Input

    def _set_mode(self, mode: str) -> None:
        if self._mode is None:
            self._mode = mode
            self._isettings[vp.IS_CANDLE_MODE] = mode == "candles"
        elif self._mode != mode:
            raise ValueError(
                f"this engine is fed {self._mode}; it cannot also take {mode} "
                "(use one engine per kind of input)"
            )

    def _consume_buffer(self) -> None:
        buffer = self._buffer
        size = buffer.size
        if size == 0:
            return
        self._set_mode("events")
        self._run(buffer.kind, buffer.ts, buffer.a, buffer.b, buffer.c, buffer.d, buffer.d,
                  size)
        buffer.clear()

    def flush(self) -> None:
        """Process the buffered single events now (results readers call this)."""
        self._consume_buffer()

    def on_trades(self, ts: np.ndarray, price: np.ndarray, size: np.ndarray,
                  side: np.ndarray | None = None) -> None:
        """Process an array of trades (after any buffered events), in order.

        Raises
        ------
        ValueError
            On decreasing timestamps (within the arrays or before the last event seen), a
            price that is not finite and > 0, a size not finite and >= 0, a side outside
            {-1, 0, 1} or unequal lengths. Nothing is processed then.
        """
        ts = np.ascontiguousarray(ts, dtype=np.int64)
        price = np.ascontiguousarray(price, dtype=np.float64)
        size = np.ascontiguousarray(size, dtype=np.float64)
        side = (np.zeros(len(ts)) if side is None
                else np.ascontiguousarray(side, dtype=np.float64))
        if not len(ts) == len(price) == len(size) == len(side):
            raise ValueError("ts, price, size and side must have equal lengths")
        if len(ts) == 0:
            return
        validate_trades(ts, price, size)
        bad = np.flatnonzero((side != -1) & (side != 0) & (side != 1))
        if bad.size:
            raise ValueError(f"trade side must be -1, 0 or 1: side[{bad[0]}]={side[bad[0]]!r}")
        self._check_after_last(int(ts[0]))
        self._consume_buffer()
        self._set_mode("events")
        kind = np.zeros(len(ts), dtype=np.int8)
        self._run(kind, ts, price, size, side, side, side, len(ts))
        self._buffer.set_last_ts(int(ts[-1]))

    def on_candles(self, ts: np.ndarray, open_: np.ndarray, high: np.ndarray,
                   low: np.ndarray, close: np.ndarray, volume: np.ndarray) -> None:
        """Process bars of ``config.bar_timeframe`` (candle mode), ``ts`` their starts.

        Raises
        ------
        ValueError
            On bars not strictly increasing or not aligned to the bar timeframe, a price
            not finite and > 0, ``low`` above ``open``/``close`` or ``high`` below them, a
            negative volume, unequal lengths, variant timeframes that are not multiples
            of the bar timeframe, or an engine already fed events.
        """
        ts = np.ascontiguousarray(ts, dtype=np.int64)
        columns = [np.ascontiguousarray(x, dtype=np.float64)
                   for x in (open_, high, low, close, volume)]
        o, h, lo, c, v = columns
        if not all(len(x) == len(ts) for x in columns):
            raise ValueError("ts, open, high, low, close and volume must have equal lengths")
        if len(ts) == 0:
            return
        bar_ns = int(self._isettings[vp.IS_BAR_NS])
        _check_bars(ts, o, h, lo, c, v, bar_ns)
        for tf, length in zip(self.timeframes, self._tf_ns, strict=True):
            if length % bar_ns:
                raise ValueError(
                    f"variant timeframe {tf} is not a multiple of the bar timeframe "
                    f"{self.config.bar_timeframe}"
                )
        self._consume_buffer()  # buffered single events come first (and set the mode)
        if self._mode == "events":
            self._set_mode("candles")  # raises: one engine, one kind of input
        last = self._buffer.last_ts
        if last is not None and ts[0] < last + bar_ns:
            raise ValueError(f"bar ts {ts[0]} overlaps the previous bar starting at {last}")
        self._set_mode("candles")
        kind = np.full(len(ts), vp.BAR, dtype=np.int8)
        self._run(kind, ts, o, h, lo, c, v, len(ts))
        self._buffer.set_last_ts(int(ts[-1]))

    def _check_after_last(self, first_ts: int) -> None:
        last = self._buffer.last_ts
        if last is not None and first_ts < last:
            raise ValueError(
                f"event ts {first_ts} is before the previous event's {last}: events must be "
                "in time order"
            )

    def _run(self, kind, ts, a, b, c, d, e, n_events: int) -> None:
        # Each chunk is copied into the engine's own event columns: the kernel then always
        # sees the same array types (a caller's read-only arrays would make Numba compile
        # a second specialisation, about 40 s), and the copy is a memcpy per chunk.
        done = 0
        kinds, times, columns = self._event_kind, self._event_ts, self._event_columns
        records = self._records
        while done < n_events:
            stop = min(n_events, done + len(times))
            size = stop - done
            kinds[:size] = kind[done:stop]
            times[:size] = ts[done:stop]
            for row, source in enumerate((a, b, c, d, e)):
                columns[row, :size] = source[done:stop]
            consumed = vp.run_events_nb(
                kinds, times, *columns, size,
                *self._scratch,
                self._settings, self._isettings, self._market, self._clock,
                self._tf_ns, self._cb_start, self._cb_count, self._candles,
                *self._bank.kernel_arrays(), self._closed, *self._bar,
                self._signal_rows, self._subscores,
                self._params, self._iparams, self._config_params, self._config_weights,
                self._weighted, self._config_start, self._tf_config_start, self._fstate,
                self._istate, self._stats.state,
                self._score, self._strong, self._acting, self._live,
                self._dirty, self._flagged, self._slot_f, self._slot_i, self._stale,
                records.open_i, records.open_f, records.trade_i, records.trade_f,
                records.count,
            )
            # The kernel stops early only when its outputs are full; taken (and grown,
            # when records are kept), they have room again and it goes on.
            done += consumed
            n_open, n_trade = records.take(self._perm)
            self._n_fills += n_open + n_trade
            self._n_trades += n_trade

    # ----------------------------------------------------------------------------------
    # Control

    def _internal(self, variants) -> np.ndarray:
        return self._inverse[self._ids(variants)]

    @property
    def halted(self) -> bool:
        """Whether a global halt has stopped every variant (until :meth:`resume`)."""
        self._consume_buffer()
        return bool(self._clock[vp.C_HALTED])

    def stop(self, variants) -> None:
        """Stop the given variant ids (after the buffered events): no more entries, and an
        open position closes at the next price with reason ``variant_stopped``. Metrics
        are kept."""
        self._consume_buffer()
        now = int(self._clock[vp.C_LAST_TS])
        for v in self._internal(variants):
            vp.stop_variant_nb(self._istate, int(v), vp.STOPPED_BY_CALLER, now)

    def resume(self, variants) -> None:
        """Make stopped variants active again, with their metrics; a stop exit that has not
        filled yet is cancelled (the position stays open). Clears a global halt."""
        self._consume_buffer()
        ist = self._istate
        for v in self._internal(variants):
            ist[v, vp.I_ACTIVE] = 1
            ist[v, vp.I_STOP_REASON] = 0
            if ist[v, vp.I_PENDING] == vp.STOP_EXIT:
                ist[v, vp.I_PENDING] = vp.NO_ORDER
        self._clock[vp.C_HALTED] = 0

    # ----------------------------------------------------------------------------------
    # Parameters (promotion)

    def copy_variant_params(self, source: int, target: int) -> None:
        """Give variant ``target`` the parameters of variant ``source`` (after the buffered
        events): from its next decision on it trades as ``source`` does.

        ``target`` keeps its account, statistics, open position (with the stop, take-profit
        and expiry set at its entry) and any pending order; only its parameters, its
        timeframe and its ``config_hash`` change. The indicators of ``source``'s timeframe
        are already in the bank, so ``target`` decides on warm indicators at once. A
        snapshot taken afterwards restores into this engine, or into a new engine built
        with :attr:`variants` (when it uses the same timeframes).

        Raises
        ------
        ValueError
            If either id is not a variant of this engine.
        """
        src, dst = (int(i) for i in self._ids((source, target)))
        columns = {name: np.array(col) for name, col in self.variants.columns().items()}
        for column in columns.values():
            column[dst] = column[src]
        self._replace_variants(VariantSet(self.variants.config, columns))

    def set_variant_params(self, target: int, params: VariantParams) -> None:
        """Give variant ``target`` the parameters ``params`` (a rollback to earlier
        parameters); otherwise as :meth:`copy_variant_params`.

        Raises
        ------
        ValueError
            If ``target`` is not a variant of this engine, or ``params.timeframe`` is not
            one of the engine's timeframes (its indicators would not be in the bank).
        """
        if not isinstance(params, VariantParams):
            raise TypeError(f"params must be VariantParams, got {type(params).__name__}")
        dst = int(self._ids(target)[0])
        names = self.variants.config.timeframes
        if params.timeframe not in self.timeframes or params.timeframe not in names:
            raise ValueError(
                f"timeframe: {params.timeframe!r} is not one of this engine's timeframes "
                f"{list(self.timeframes)}"
            )
        columns = {name: np.array(col) for name, col in self.variants.columns().items()}
        columns["weights"][dst] = params.normalised_weights()
        columns["weight_points"][dst] = params.weights
        for name in FLOAT_PARAMS:
            columns[name][dst] = getattr(params, name)
        columns["leverage"][dst] = params.leverage
        columns["timeframe"][dst] = names.index(params.timeframe)
        self._replace_variants(VariantSet(self.variants.config, columns))

    def _ids(self, variants) -> np.ndarray:
        ids = np.atleast_1d(np.asarray(variants, dtype=np.int64))
        bad = ids[(ids < 0) | (ids >= len(self))]
        if bad.size:
            raise ValueError(f"no variant {int(bad[0])} in a set of {len(self)}")
        return ids

    def _replace_variants(self, variants: VariantSet) -> None:
        # New parameters may move a variant to another timeframe block of the internal
        # order. The layout is recomputed exactly as __init__ computes it (so a new engine
        # built with these variants has the same one) and every per-variant state row is
        # carried to its new internal index.
        self._consume_buffer()
        perm, tf_index, signal_config = self._layout(variants)
        old_of_new = self._inverse[perm]  # old internal index of each new internal index
        new_of_old = np.argsort(old_of_new).astype(np.int64)
        for rows in (self._fstate, self._istate, self._stats.state):
            rows[...] = rows[old_of_new]
        # The live and dirty lists hold internal indices; entries past their counts are
        # stale (never read) and left as they are.
        n_live, n_dirty = int(self._clock[vp.C_LIVE]), int(self._clock[vp.C_DIRTY])
        self._live[:n_live] = new_of_old[self._live[:n_live]]
        self._dirty[:n_dirty] = new_of_old[self._dirty[:n_dirty]]
        self._perm = perm
        self._inverse = np.argsort(perm).astype(np.int64)
        self._build_parameters(variants, perm, tf_index, signal_config)
        self._isettings[vp.IS_BASELINE] = self._inverse[0]
        self.variants = variants

    # ----------------------------------------------------------------------------------
    # Output

    def drain_fills(self) -> FillBatch:
        """Return and forget the fills and closed trades recorded so far, ordered by
        time, then variant (an entry fill before an exit fill at the same time)."""
        self._consume_buffer()
        return self._records.drain()

    def metrics(self) -> np.ndarray:
        """One row per variant (:data:`METRICS_DTYPE`), after the buffered events.

        Undefined figures (a variance of fewer than two values, a ratio over zero) are
        NaN. ``equity`` is cash plus unrealised PnL at the last trade price;
        ``sharpe_annualised`` uses the equity samples (docs/paper-execution.md).
        """
        self._consume_buffer()
        fs, ist = self._fstate.T, self._istate.T  # field-major views of the state
        summary = self._stats.summary()
        out = np.zeros(len(self), dtype=METRICS_DTYPE)
        for name in ("trades", "wins", "losses", "win_rate", "net_pnl", "gross_pnl", "fees",
                     "mean_return", "skewness", "kurtosis", "sharpe_per_trade",
                     "sortino_per_trade", "profit_factor", "max_drawdown", "max_win_streak",
                     "max_loss_streak"):
            out[name] = summary[name]
        out["var_return"] = summary["variance"]
        side = ist[vp.I_SIDE]
        last = self._market[vp.M_LAST_PRICE]
        open_ = side != 0
        unrealised = np.where(
            open_,
            side * (last - fs[vp.F_ENTRY_PX]) * fs[vp.F_LOTS] * self.config.multiplier,
            0.0,
        )
        equity = fs[vp.F_CASH] + unrealised
        out["funding"] = fs[vp.F_FUNDING_TOTAL]
        out["equity"] = equity
        out["roi_pct"] = (equity - self.config.capital) / self.config.capital * 100.0
        out["side"] = side
        out["lots"] = np.where(open_, fs[vp.F_LOTS], 0.0)
        out["entry_price"] = np.where(open_, fs[vp.F_ENTRY_PX], np.nan)
        out["unrealised_pnl"] = unrealised
        now = self._clock[vp.C_LAST_TS]
        out["exposure_ns"] = ist[vp.I_EXPOSURE_NS] + np.where(
            open_, now - ist[vp.I_ENTRY_TS], 0
        )
        out["entries_skipped"] = ist[vp.I_SKIPPED]
        out["active"] = ist[vp.I_ACTIVE] != 0
        out["stop_reason"] = ist[vp.I_STOP_REASON]
        # Variants whose equity did not move at the last sample times have those zero
        # returns still to merge (the kernel skips idle variants).
        count, mean, m2 = fs[vp.F_SAMPLES], fs[vp.F_SAMPLE_MEAN], fs[vp.F_SAMPLE_M2]
        zeros = self._clock[vp.C_SAMPLES] - count
        with np.errstate(divide="ignore", invalid="ignore"):
            total = count + zeros
            m2 = np.where(zeros > 0, m2 + mean * mean * count * zeros / total, m2)
            mean = np.where(zeros > 0, mean * count / total, mean)
            std = np.sqrt(np.where(total > 1, m2 / (total - 1), np.nan))
            periods = _YEAR_NS / self.config.equity_sample_ns
            out["sharpe_annualised"] = np.where(
                std > 0, mean / std * math.sqrt(periods), np.nan
            )
        out = out[self._inverse]
        out["variant"] = np.arange(len(self))
        out["config_hash"] = self.variants.config_hash
        return out

    # ----------------------------------------------------------------------------------
    # Snapshots

    def _state_arrays(self) -> dict[str, np.ndarray]:
        arrays = {
            "fstate": self._fstate, "istate": self._istate, "stats": self._stats.state,
            "market": self._market, "clock": self._clock, "cb_start": self._cb_start,
            "cb_count": self._cb_count, "candles": self._candles, "live": self._live,
            "dirty": self._dirty,
        }
        for name, array in self._bank.state_arrays().items():
            arrays[f"bank.{name}"] = array
        return arrays

    def snapshot(self) -> bytes:
        """The complete engine state (after buffered events) as bytes. Records not yet
        drained are not part of it: drain them first if they are needed."""
        self._consume_buffer()
        payload = {
            "version": _SNAPSHOT_VERSION,
            "config": msgspec.to_builtins(self.config),
            "variants": [int(h) for h in self.variants.config_hash],
            "mode": self._mode,
            "last_ts": self._buffer.last_ts,
            "n_fills": self._n_fills,
            "n_trades": self._n_trades,
            "arrays": {
                name: [str(a.dtype), list(a.shape), a.tobytes()]
                for name, a in self._state_arrays().items()
            },
        }
        return msgspec.msgpack.encode(payload)

    def restore(self, snapshot: bytes) -> None:
        """Replace this engine's state with ``snapshot`` (from :meth:`snapshot` of an
        engine with the same config and variants). Buffered and undrained records are
        discarded.

        Raises
        ------
        ValueError
            If the snapshot is not one, or was taken with another config or variants.
        """
        try:
            payload: dict[str, Any] = msgspec.msgpack.decode(snapshot)
        except msgspec.DecodeError as error:
            raise ValueError(f"not an engine snapshot: {error}") from None
        if not isinstance(payload, dict) or payload.get("version") != _SNAPSHOT_VERSION:
            raise ValueError("not an engine snapshot of this version")
        if payload["config"] != msgspec.to_builtins(self.config):
            raise ValueError("the snapshot was taken with another EngineConfig")
        if payload["variants"] != [int(h) for h in self.variants.config_hash]:
            raise ValueError("the snapshot was taken with other variants")
        targets = self._state_arrays()
        if set(payload["arrays"]) != set(targets):
            raise ValueError("the snapshot's arrays do not match this engine")
        for name, (dtype, shape, data) in payload["arrays"].items():
            target = targets[name]
            source = np.frombuffer(data, dtype=np.dtype(dtype)).reshape(shape)
            if source.shape != target.shape or source.dtype != target.dtype:
                raise ValueError(f"snapshot array {name} has the wrong shape or type")
            target[...] = source
        self._buffer.clear()
        self._mode = payload["mode"]
        if payload["last_ts"] is not None:
            self._buffer.set_last_ts(payload["last_ts"])
        self._n_fills = payload["n_fills"]
        self._n_trades = payload["n_trades"]
        self._records.clear()


def _check_bars(ts, o, h, lo, c, v, bar_ns: int) -> None:
    def first(mask: np.ndarray) -> int | None:
        hits = np.flatnonzero(mask)
        return int(hits[0]) if hits.size else None

    i = first(ts[1:] <= ts[:-1])
    if i is not None:
        raise ValueError(f"bar ts must increase: ts[{i + 1}]={ts[i + 1]} <= ts[{i}]={ts[i]}")
    i = first(ts % bar_ns != 0)
    if i is not None:
        raise ValueError(f"bar ts[{i}]={ts[i]} is not a multiple of the bar length {bar_ns}")
    for name, column in (("open", o), ("high", h), ("low", lo), ("close", c)):
        i = first(~(np.isfinite(column) & (column > 0)))
        if i is not None:
            raise ValueError(f"bar {name}[{i}]={column[i]!r} must be finite and > 0")
    i = first(~(np.isfinite(v) & (v >= 0)))
    if i is not None:
        raise ValueError(f"bar volume[{i}]={v[i]!r} must be finite and >= 0")
    i = first((lo > np.minimum(o, c)) | (h < np.maximum(o, c)))
    if i is not None:
        raise ValueError(
            f"bar {i} is inconsistent: low {lo[i]!r} / high {h[i]!r} do not contain "
            f"open {o[i]!r} and close {c[i]!r}"
        )
