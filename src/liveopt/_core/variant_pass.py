"""The variant pass: every variant's paper account advanced over a batch of market events.

``docs/paper-execution.md`` is the specification. The batch is cut into **spans**: runs of
events between two boundaries (a candle close of a timeframe in use, a funding time, an
equity-sample time). Inside a span nothing is decided, so each variant only fills its
pending order and checks its exits; that lets the pass run **variant-major**: for one
variant at a time, its state is loaded into locals, the span's events stream past it, and
the state is stored back. Per event the shared work (fill prices, candles) is done once in
a first, event-major walk over the span. At each cut the per-variant cut actions (funding,
equity samples) and the candle closes (indicator bank, signal scores, decisions) run, and
the span's fills and closed trades (at most one of each per variant per span, because an
entry needs a decision) are copied to the caller's output buffers.

Why variant-major: a variant's position state then lives in registers across the span's
events instead of being reloaded from memory on every event; only the event columns are
re-read, and a span's worth of them stays in L1. Event-major (all variants per event)
would load and store a variant's state on every event.

All state is caller-owned and nothing here allocates; the engine layer (``liveopt.engine``)
builds the arrays, validates inputs once and drains the outputs. Two layouts, each for how
it is walked (see the ``P_``/``F_``/``I_`` constants):

- parameters and the per-timeframe scoring inputs are struct-of-arrays (rows are fields,
  columns are variants): the scoring and decision passes stream over a block of
  variants, one field at a time;
- the position state (``fs``, ``ist``) is one row per variant: a span visits only the
  live variants, scattered over the set, and reads a dozen fields of each, which
  field-major were a dozen cache lines per variant per span. Measured with
  ``benchmarks/bench_engine.py`` (10k random 1m variants, 4 ticks per span): 5.82 ns per
  variant-tick field-major, 5.45 ns one row per variant.

Shortcuts, all exact (same trades and metrics, bit for bit):

- **Live slots.** Most live variants in most spans only hold a position that nothing
  touches: no trade reaches a trigger, the expiry or a safety limit. Each live variant
  has a slot (``slot_f``/``slot_i``, field-major and indexed like ``live``) with its
  triggers, equity line, drawdown marks and equity-sample accumulators, which are its own
  while it has the slot (the rows get them back when something else reads them). A span
  is two passes: a fast pass over the slots alone moves the marks of every slot whose
  span acts on nothing and marks the others (a trigger, the expiry, a safety limit, or
  ``stale``: a decision gave the variant an order); then the full loop runs only those,
  from the span's start, and reloads their slots. The fast pass touches no row and keeps
  its values in registers (the full loop's dozens of array descriptors are out of its
  way), and the live variants' equity samples read the slots too. RSI grid (1,000
  variants x 100,000 bars): about 17 -> 13.5 ns per variant-bar with the first slots
  (triggers only, one loop); then, 20 rounds of 8,000 bars alternating the versions in
  one process, the median time per round relative to one loop: two passes 0.83, fewer
  branches in the marks (``_mark``, ``_fast_pass_bars``) 0.78, accumulators in the slots
  0.70, prefetch (below) 0.64.
  1m ticks: 0.95 (10 rounds of 20,000 ticks). The fast pass with branch-free marks (it
  vectorises, but divides out every drawdown) was 0.92: not kept.
- **Quiet bands.** A slot's marks move only on a new equity peak or a new worst
  drawdown, and its equity is a line in the price, so each slot also keeps the price
  band inside which a span changes nothing but its equity: no trigger, no new peak, no
  new worst, no safety floor (``_set_quiet_band``, recomputed whenever the marks move).
  A span whose price range lies inside the band costs the fast pass the slot's usual
  tests (the band's edges for the triggers, the expiry, the stale mark) and the
  equity's store, none of the marks' arithmetic. In the RSI grid 97.5 % of the fast
  pass's slot-bars are quiet (0.8 % take the exact marks, 1.7 % act); 16 rounds of
  30,000 bars alternating the versions in one process: median 0.74 and 0.75 of the time
  without the bands, in two such runs. 1m ticks: 0.99 (10 rounds of 20,000 ticks; their
  fast pass is a small share of the time).
- **Signal configurations.** Variants that share timeframe, weights, RSI levels,
  thresholds and minimum confidence score alike, so each distinct configuration is
  scored once per close (``cp``, ``weights``: one column per configuration) and its
  variants, a contiguous run of the internal order (``config_start``), are visited only
  when it signals strongly enough to act. The RSI grid has 25 configurations for 1,000
  variants (about 13.5 -> 11 ns per variant-bar); random variants have one each.
- **Decisions in two steps** (``_decide``). The score pass gives each configuration its
  score and whether its class is strong; the decisions then list the configurations
  that act (a strong class with enough confidence, the confidence computed only for
  those) and prefetch their variants' state rows as they find them, and only then give
  the orders, from rows on their way to the cache. 1m ticks: 0.91 against one step
  (10 rounds of 20,000 ticks).

The visit loops also prefetch (``prefetch.prefetch_nb``) the state rows and entry
parameters of a slot that acts a few places ahead: scattered misses to L3 at 10,000
variants. Eight interleaved runs of 10,000 1m variants x 50,000 ticks, in one process:
median 3.71 -> 3.34 ns per variant-tick, minimum 3.12 -> 2.89 (with the one-loop visits).

The span loops and the per-variant helpers they call are ``inline="always"``: a Numba call
passes each array argument as its whole descriptor, and with a dozen arrays per call the
call cost more than a variant-bar's work (1,000-variant RSI grid: about 35 ns per
variant-bar as calls, 16 ns inlined; 1m ticks: 4.7 -> 3.4 ns per variant-tick; identical
results). Rare paths stay calls where inlining them would only grow the compiled code.
"""

import math

import numpy as np

from liveopt._core._jit import njit
from liveopt._core.indicators import bank_update_nb
from liveopt._core.metrics import (
    EQUITY_PEAK,
    MAX_DRAWDOWN,
    record_equity_nb,
    record_trade_nb,
)
from liveopt._core.paper_math import (
    break_even_roi_pct_nb,
    liquidation_price_nb,
    lots_for_margin_nb,
    price_at_roi_nb,
)
from liveopt._core.prefetch import prefetch_nb, prefetch_row_nb
from liveopt._core.signals import (
    BUY,
    N_SUBSCORES,
    SELL,
    STRONG_BUY,
    STRONG_SELL,
    THRESHOLD_TOLERANCE,
    confidence_nb,
    score_variants_nb,
    shared_subscores_nb,
)

# ---------------------------------------------------------------------------------------
# Event kinds and columns. Trades: a=price, b=size, c=side. Quotes: a=bid, b=bid size,
# c=ask, d=ask size. Depth: a=top-5 bid size, b=top-5 ask size. Funding rate: a=rate.
# Bars (candle mode): a=open, b=high, c=low, d=close, e=volume.
TRADE, QUOTE, DEPTH, FUNDING_RATE, BAR = 0, 1, 2, 3, 4

# Exit reasons (closed-trade records).
STOP_LOSS, TAKE_PROFIT, TRAILING_STOP, SIGNAL, MAX_HOLD, LIQUIDATION, VARIANT_STOPPED = (
    1, 2, 3, 4, 5, 6, 7
)

# Pending orders (I_PENDING): +1 / -1 enter long / short, EXIT closes the position.
NO_ORDER = 0
EXIT = 2
STOP_EXIT = 3  # an exit because the variant was stopped (safety limits, halt, by hand)

# Why a variant was stopped (I_STOP_REASON); 0 while it is active.
STOPPED_MAX_LOSS, STOPPED_MAX_DRAWDOWN, STOPPED_HALT, STOPPED_BY_CALLER = 1, 2, 3, 4

# Variant parameters, float64[N_PARAMS, n] (from liveopt.optimizer.VariantSet).
(P_STOP_LOSS_ROI, P_TAKE_PROFIT_ROI, P_BE_BUFFER, P_TRAIL_STEP, P_TRAIL_MOVE, P_LEVERAGE,
 P_SIZE_PCT, P_MIN_CONFIDENCE, P_RSI_OVERSOLD, P_RSI_OVERBOUGHT, P_STRONG_BUY, P_BUY,
 P_SELL, P_STRONG_SELL) = range(14)
N_PARAMS = 14
# Integer parameters, int64[N_IPARAMS, n].
IP_MAX_HOLD_NS, IP_TIMEFRAME = range(2)
N_IPARAMS = 2

# Variant float state, float64[n, N_FSTATE]: one row per variant (see the module
# docstring for why this state is variant-major). "R_" fields hold the span's closed trade.
(F_CASH, F_ENTRY_PX, F_LOTS, F_MARGIN, F_STOP, F_TAKE_PROFIT, F_LIQUIDATION, F_LOW_TRIGGER,
 F_HIGH_TRIGGER, F_TRAIL_PX, F_STOP_ROI, F_ANCHOR_ROI, F_ENTRY_FEE, F_FUNDING,
 F_FUNDING_TOTAL, F_EQUITY, F_SAMPLE_EQUITY, F_SAMPLES, F_SAMPLE_MEAN, F_SAMPLE_M2,
 F_R_ENTRY_PX, F_R_EXIT_PX, F_R_LOTS, F_R_ENTRY_FEE, F_R_EXIT_FEE, F_R_FUNDING, F_R_GROSS,
 F_R_NET, F_R_RETURN, F_R_ROI) = range(30)
N_FSTATE = 30
# Variant integer state, int64[n, N_ISTATE], one row per variant.
(I_SIDE, I_PENDING, I_PENDING_TS, I_ENTRY_TS, I_EXPIRY, I_TRAILED, I_EXPOSURE_NS,
 I_SKIPPED, I_ACTIVE, I_FLAGS, I_LIVE, I_R_SIDE, I_R_ENTRY_TS, I_R_EXIT_TS, I_R_REASON,
 I_R_MAKER, I_STOP_REASON, I_DIRTY) = range(18)
N_ISTATE = 18
FLAG_OPENED = 1  # the span has an entry fill
FLAG_CLOSED = 2  # the span has a closed trade

# Engine settings, float64[N_SETTINGS] and int64[N_ISETTINGS].
# Safety limits as thresholds (-inf / inf when off): S_EQUITY_FLOOR is the equity below
# which a variant is stopped (capital * (1 - max_loss)); S_MAX_DRAWDOWN a fraction;
# S_HALT_FLOOR the equity below which *every* active variant must be for a global halt;
# S_BASELINE_MAX_DRAWDOWN the baseline's drawdown that halts everything.
(S_CAPITAL, S_TAKER, S_MAKER, S_SLIPPAGE, S_MULTIPLIER, S_LOT, S_MAINT_MARGIN,
 S_EQUITY_FLOOR, S_MAX_DRAWDOWN, S_HALT_FLOOR, S_BASELINE_MAX_DRAWDOWN) = range(11)
N_SETTINGS = 11
(IS_LATENCY_NS, IS_SAMPLE_NS, IS_SIDES, IS_TP_LIMIT, IS_TRAILING, IS_CANDLE_MODE,
 IS_BAR_NS, IS_BASELINE) = range(8)
N_ISETTINGS = 8

# Shared market state, float64[N_MARKET], and clocks, int64[N_CLOCK].
M_LAST_PRICE, M_BID, M_ASK, M_HAVE_QUOTE, M_IMBALANCE, M_FUNDING_RATE = range(6)
N_MARKET = 6
# C_SAMPLES counts the equity-sample boundaries passed; C_LIVE the variants in ``live``.
# C_HALTED is 1 after a global halt (until the caller resumes variants).
# C_DIRTY counts the variants in ``dirty``: they left the live list since the last equity
# sample, so their equity may have moved.
(C_STARTED, C_NEXT_SAMPLE, C_NEXT_FUNDING, C_LAST_TS, C_EVENTS, C_SAMPLES, C_LIVE, C_HALTED,
 C_DIRTY) = range(9)
N_CLOCK = 9

# Live slots: the fast pass's copy of each live variant's triggers and marks, field-major
# and indexed like ``live`` (slot k describes variant live[k]; see _load_slot).
# float64[N_SLOT_F, n]: the price levels at or beyond which a trade (or a bar's range)
# needs the full span loop, the equity line (equity = base + slope * price), the marks
# (equity peak, worst drawdown, equity), the equity-sample accumulators (the F_SAMPLE_
# fields) and the quiet band (_set_quiet_band: inside it a span moves only the equity;
# empty without a side). int64[N_SLOT_I, n]: the side (0: no slot, the variant takes the
# full span loop), the max-hold expiry, whether it is active, and the fast pass's verdict
# for the current span (1: the full loop must run it).
# While a slot has a side, its marks and accumulators are the variant's own and the
# copies in its rows are out of date: _spill_slot writes them back before anything else
# reads the rows.
(SL_LOW, SL_HIGH, SL_BASE, SL_SLOPE, SL_PEAK, SL_WORST, SL_EQUITY, SL_SAMPLE_EQUITY,
 SL_SAMPLES, SL_SAMPLE_MEAN, SL_SAMPLE_M2, SL_QUIET_LOW, SL_QUIET_HIGH) = range(13)
N_SLOT_F = 13
SLI_SIDE, SLI_EXPIRY, SLI_ACTIVE, SLI_ACT = range(4)
N_SLOT_I = 4
# The fields a slot owns while it has a side, as (slot row, row field) pairs: the stats
# row's marks and the fs row's equity and sample accumulators (_load_slot, _spill_slot).
SLOT_STATS_FIELDS = ((SL_PEAK, EQUITY_PEAK), (SL_WORST, MAX_DRAWDOWN))
SLOT_FSTATE_FIELDS = ((SL_EQUITY, F_EQUITY), (SL_SAMPLE_EQUITY, F_SAMPLE_EQUITY),
                      (SL_SAMPLES, F_SAMPLES), (SL_SAMPLE_MEAN, F_SAMPLE_MEAN),
                      (SL_SAMPLE_M2, F_SAMPLE_M2))

# Candle builders, float64[N_CANDLE, n_timeframes] plus int64 bucket starts and counts.
CB_OPEN, CB_HIGH, CB_LOW, CB_CLOSE, CB_VOLUME = range(5)
N_CANDLE = 5

# Rows of the indicator bank that feed the signal model, int64[n_timeframes, N_SIGNAL_ROWS].
(R_RSI, R_WILLIAMS_R, R_MACD, R_AO, R_EMA_FAST, R_EMA_SLOW, R_STOCH, R_BOLLINGER, R_KDJ,
 R_OBV_SLOPE) = range(10)
N_SIGNAL_ROWS = 10

# Output records. Entry fills: int64[3, cap] (variant, ts, side) and float64[3, cap]
# (price, lots, fee). Closed trades: int64[6, cap] (variant, side, entry_ts, exit_ts,
# reason, maker) and float64[10, cap] (entry_px, exit_px, lots, entry_fee, exit_fee,
# funding, gross, net, net_return, roi_pct). out_count: [fills, trades].
N_OPEN_I, N_OPEN_F, N_TRADE_I, N_TRADE_F = 3, 3, 6, 10

FUNDING_PERIOD_NS = 8 * 3600 * 1_000_000_000  # 00:00, 08:00, 16:00 UTC
NO_TIME = np.iinfo(np.int64).max
NOT_STARTED = np.iinfo(np.int64).min
# Trailing levels are pre-checked on price and decided on ROI (the specification's test);
# the price level is moved this far towards the current price so rounding in the
# ROI-to-price conversion can never make the pre-check miss a level the ROI reaches.
_TRAIL_PRECHECK = 1e-12


# ---------------------------------------------------------------------------------------
# Per-variant helpers. They take the variant's state arrays and index ``v``; the span
# loops keep the hot fields in locals and call these only on rare events.


@njit(inline="always")
def _mark(peak, worst, equity):
    # One drawdown mark, record_equity_nb's rule with the peak and worst drawdown in
    # registers: returns them updated. A new peak has a negative drop, never a deeper
    # one, so the peak is a branch-free maximum and the only branch is the rare new worst
    # (whether an equity is a new peak varies from variant to variant, a branch the CPU
    # mispredicts); the drawdown is divided out only then (four divisions per bar were a
    # measurable share of a variant-bar).
    worst = _deepen(peak, worst, equity)
    return (equity if equity > peak else peak), worst


@njit(inline="always")
def _deepen(peak, worst, equity):
    # The drawdown half of _mark: the new worst drawdown if ``equity`` is that far below
    # the peak (an equity above the peak never is). Called alone where the equity cannot
    # be a new peak.
    if peak > 0.0 and peak - equity > worst * peak:
        worst = (peak - equity) / peak
    return worst


@njit(inline="always")
def _mark_path(stats, v, first, second, third, fourth):
    # record_equity_nb at four equities in order (a bar's path), with the peak and worst
    # drawdown in registers: one load and one store of each instead of four.
    peak = stats[v, EQUITY_PEAK]
    worst = stats[v, MAX_DRAWDOWN]
    for equity in (first, second, third, fourth):
        peak, worst = _mark(peak, worst, equity)
    stats[v, EQUITY_PEAK] = peak
    stats[v, MAX_DRAWDOWN] = worst


@njit(inline="always")
def _set_triggers(fs, side, v):
    # The two price triggers of the open position: a long exits at or below LOW (stop or
    # liquidation, whichever is higher) and at or above HIGH (take-profit); a short the
    # mirror image.
    if side > 0:
        fs[v, F_LOW_TRIGGER] = max(fs[v, F_STOP], fs[v, F_LIQUIDATION])
        fs[v, F_HIGH_TRIGGER] = fs[v, F_TAKE_PROFIT]
    else:
        fs[v, F_LOW_TRIGGER] = fs[v, F_TAKE_PROFIT]
        fs[v, F_HIGH_TRIGGER] = min(fs[v, F_STOP], fs[v, F_LIQUIDATION])


@njit(inline="always")
def _open(vp, ip, fs, ist, stats, settings, isettings, v, side, price, ts):
    """Enter at ``price``; returns False when the cash buys no lot (entry skipped)."""
    cash = fs[v, F_CASH]
    leverage = vp[P_LEVERAGE, v]
    multiplier = settings[S_MULTIPLIER]
    lots = 0.0
    if cash > 0.0:
        lots = lots_for_margin_nb(cash, vp[P_SIZE_PCT, v], leverage, price, multiplier,
                                  settings[S_LOT])
    if lots <= 0.0:
        ist[v, I_SKIPPED] += 1
        return False
    notional = lots * multiplier * price
    taker = settings[S_TAKER]
    fee = taker * notional
    fs[v, F_CASH] = cash - fee
    fs[v, F_ENTRY_PX] = price
    fs[v, F_LOTS] = lots
    fs[v, F_MARGIN] = notional / leverage
    fs[v, F_ENTRY_FEE] = fee
    fs[v, F_FUNDING] = 0.0
    s = float(side)
    fs[v, F_STOP_ROI] = -vp[P_STOP_LOSS_ROI, v]
    fs[v, F_STOP] = price_at_roi_nb(s, price, -vp[P_STOP_LOSS_ROI, v], leverage)
    fs[v, F_TAKE_PROFIT] = price_at_roi_nb(s, price, vp[P_TAKE_PROFIT_ROI, v], leverage)
    fs[v, F_LIQUIDATION] = liquidation_price_nb(s, price, leverage, settings[S_MAINT_MARGIN])
    _set_triggers(fs, side, v)
    if isettings[IS_TRAILING]:
        arm = break_even_roi_pct_nb(s, price, taker, taker, leverage) + vp[P_BE_BUFFER, v]
        fs[v, F_ANCHOR_ROI] = arm
        fs[v, F_TRAIL_PX] = price_at_roi_nb(s, price, arm, leverage) * (1.0 - s * _TRAIL_PRECHECK)
    else:
        fs[v, F_ANCHOR_ROI] = math.nan
        fs[v, F_TRAIL_PX] = math.nan
    ist[v, I_SIDE] = side
    ist[v, I_TRAILED] = 0
    ist[v, I_ENTRY_TS] = ts
    ist[v, I_EXPIRY] = ts + ip[IP_MAX_HOLD_NS, v]
    ist[v, I_FLAGS] |= FLAG_OPENED
    return True


@njit(inline="always")
def _trail(vp, fs, ist, v, side, price):
    """Advance the trailing staircase for a price at or past the pre-checked level."""
    s = float(side)
    entry = fs[v, F_ENTRY_PX]
    leverage = vp[P_LEVERAGE, v]
    roi = s * (price - entry) / entry * leverage * 100.0
    anchor = fs[v, F_ANCHOR_ROI]
    step = vp[P_TRAIL_STEP, v]
    armed = ist[v, I_TRAILED] != 0
    if not armed:
        if roi < anchor:
            return
        # Armed: the stop moves to break-even (the arming level minus the buffer).
        ist[v, I_TRAILED] = 1
        fs[v, F_STOP_ROI] = anchor - vp[P_BE_BUFFER, v]
    steps = math.floor((roi - anchor) / step)
    if steps > 0.0:
        anchor += steps * step
        fs[v, F_ANCHOR_ROI] = anchor
        fs[v, F_STOP_ROI] += steps * vp[P_TRAIL_MOVE, v]
    elif armed:
        return  # pre-check passed on rounding only; the ROI has not reached the level
    stop = price_at_roi_nb(s, entry, fs[v, F_STOP_ROI], leverage)
    if side > 0:
        fs[v, F_STOP] = max(fs[v, F_STOP], stop)
    else:
        fs[v, F_STOP] = min(fs[v, F_STOP], stop)
    _set_triggers(fs, side, v)
    fs[v, F_TRAIL_PX] = (
        price_at_roi_nb(s, entry, anchor + step, leverage) * (1.0 - s * _TRAIL_PRECHECK)
    )


@njit(inline="always")
def _close(fs, ist, stats, settings, v, exit_price, ts, reason, maker):
    """Close the position at ``exit_price``; liquidation when the exit is at or beyond the
    liquidation price (or the liquidation price was the trigger)."""
    side = ist[v, I_SIDE]
    s = float(side)
    entry = fs[v, F_ENTRY_PX]
    lots = fs[v, F_LOTS]
    margin = fs[v, F_MARGIN]
    multiplier = settings[S_MULTIPLIER]
    liquidation = fs[v, F_LIQUIDATION]
    if reason == LIQUIDATION or s * (exit_price - liquidation) <= 0.0:
        reason = LIQUIDATION
        exit_price = liquidation
        gross = -margin
        exit_fee = 0.0
        maker = 0
    else:
        gross = s * (exit_price - entry) * lots * multiplier
        rate = settings[S_MAKER] if maker else settings[S_TAKER]
        exit_fee = rate * lots * multiplier * exit_price
    entry_fee = fs[v, F_ENTRY_FEE]
    funding = fs[v, F_FUNDING]
    net = gross - entry_fee - exit_fee - funding
    cash = fs[v, F_CASH] + (gross - exit_fee)
    fs[v, F_CASH] = cash
    fs[v, F_EQUITY] = cash
    net_return = net / margin
    record_trade_nb(stats, v, net_return, net, gross, entry_fee + exit_fee)
    fs[v, F_FUNDING_TOTAL] += funding  # like fees: closed trades only
    ist[v, I_EXPOSURE_NS] += ts - ist[v, I_ENTRY_TS]
    fs[v, F_R_ENTRY_PX] = entry
    fs[v, F_R_EXIT_PX] = exit_price
    fs[v, F_R_LOTS] = lots
    fs[v, F_R_ENTRY_FEE] = entry_fee
    fs[v, F_R_EXIT_FEE] = exit_fee
    fs[v, F_R_FUNDING] = funding
    fs[v, F_R_GROSS] = gross
    fs[v, F_R_NET] = net
    fs[v, F_R_RETURN] = net_return
    fs[v, F_R_ROI] = gross / margin * 100.0
    ist[v, I_R_SIDE] = side
    ist[v, I_R_ENTRY_TS] = ist[v, I_ENTRY_TS]
    ist[v, I_R_EXIT_TS] = ts
    ist[v, I_R_REASON] = reason
    ist[v, I_R_MAKER] = maker
    ist[v, I_FLAGS] |= FLAG_CLOSED
    ist[v, I_SIDE] = 0
    ist[v, I_EXPIRY] = NO_TIME
    if ist[v, I_PENDING] == EXIT or ist[v, I_PENDING] == STOP_EXIT:
        ist[v, I_PENDING] = NO_ORDER  # the pending exit has nothing left to close
    fs[v, F_LOW_TRIGGER] = -math.inf
    fs[v, F_HIGH_TRIGGER] = math.inf
    fs[v, F_TRAIL_PX] = math.nan


@njit(inline="always")
def _stop_reason(ist, fs, v, side):
    # The stop trigger fired: liquidation if the liquidation price is the tighter level.
    if side * (fs[v, F_LIQUIDATION] - fs[v, F_STOP]) >= 0.0:
        return LIQUIDATION
    return TRAILING_STOP if ist[v, I_TRAILED] else STOP_LOSS


@njit(inline="always")
def _fill_pending(vp, ip, fs, ist, stats, settings, isettings, v, buy_price, sell_price,
                  ts, mark_price):
    # Equity is only *marked* (drawdown) on trade events, by the callers; here it is
    # brought up to date at the last trade price, for the equity samples.
    pending = ist[v, I_PENDING]
    ist[v, I_PENDING] = NO_ORDER
    if pending >= EXIT:  # EXIT or STOP_EXIT (the codes above the entries)
        side = ist[v, I_SIDE]
        if side != 0:
            _close(fs, ist, stats, settings, v, sell_price if side > 0 else buy_price, ts,
                   SIGNAL if pending == EXIT else VARIANT_STOPPED, 0)
    else:
        price = buy_price if pending > 0 else sell_price
        if _open(vp, ip, fs, ist, stats, settings, isettings, v, pending, price, ts):
            fs[v, F_EQUITY] = fs[v, F_CASH] + pending * fs[v, F_LOTS] * settings[
                S_MULTIPLIER] * (mark_price - price)


@njit
def _halt_due(fs, ist, stats, settings, isettings, n, above_floor, live, n_live, slot_f,
              slot_i):
    # Everything stops when the baseline's drawdown passes its limit, or when every
    # active variant's equity is below the halt floor. Called just after the equity
    # samples, which wrote the baseline's marks to its rows and found whether a live
    # variant is ``above_floor``; only if none is are the slots written back and every
    # variant's row scanned.
    if stats[isettings[IS_BASELINE], MAX_DRAWDOWN] > settings[S_BASELINE_MAX_DRAWDOWN]:
        return True
    floor = settings[S_HALT_FLOOR]
    if floor == -math.inf or above_floor:
        return False
    _spill_all_slots(fs, stats, slot_f, slot_i, live, n_live)
    any_active = False
    for v in range(n):
        if ist[v, I_ACTIVE] != 0:
            if fs[v, F_EQUITY] >= floor:
                return False
            any_active = True
    return any_active


@njit(inline="always")
def _check_flat_limits(fs, ist, stats, settings, v, ts):
    # A flat variant's equity is its cash: a closed trade can take it past a limit.
    if ist[v, I_ACTIVE] != 0:
        breach = _limit_breached(settings, fs[v, F_CASH], stats[v, MAX_DRAWDOWN])
        if breach != 0:
            stop_variant_nb(ist, v, breach, ts)


# ---------------------------------------------------------------------------------------
# Span loops: one variant over the events [e0, e1).


@njit
def stop_variant_nb(ist, v, reason, ts):
    """Deactivate variant ``v`` (no more decisions) for ``reason``; an open position gets
    a pending market exit, filled on the next fill-capable event at or after ``ts``."""
    if ist[v, I_ACTIVE] == 0:
        return
    ist[v, I_ACTIVE] = 0
    ist[v, I_STOP_REASON] = reason
    if ist[v, I_SIDE] != 0:
        ist[v, I_PENDING] = STOP_EXIT
        ist[v, I_PENDING_TS] = ts
    else:
        ist[v, I_PENDING] = NO_ORDER


@njit(inline="always")
def _limit_breached(settings, equity, drawdown):
    # The per-variant safety limits: 0 when within them, else the stop reason.
    if equity < settings[S_EQUITY_FLOOR]:
        return STOPPED_MAX_LOSS
    if drawdown > settings[S_MAX_DRAWDOWN]:
        return STOPPED_MAX_DRAWDOWN
    return 0


@njit(inline="always")
def _eligible(ist, v, ev_ts, buy_px, e):
    # A pending order fills on a fill-capable event (trade or quote) at or after its time.
    return ev_ts[e] >= ist[v, I_PENDING_TS] and buy_px[e] == buy_px[e]


@njit(inline="always")
def _span_ticks(vp, ip, fs, ist, stats, settings, isettings, v, ev_ts, trade_px, buy_px,
                sell_px, mark_px, e0, e1):
    multiplier = settings[S_MULTIPLIER]
    tp_limit = isettings[IS_TP_LIMIT]
    e = e0
    side = ist[v, I_SIDE]
    if side == 0:
        # Flat with a pending entry: skip to the event it fills on.
        while e < e1 and not _eligible(ist, v, ev_ts, buy_px, e):
            e += 1
        if e == e1:
            return
        _fill_pending(vp, ip, fs, ist, stats, settings, isettings, v, buy_px[e], sell_px[e],
                      ev_ts[e], mark_px[e])
        side = ist[v, I_SIDE]
        if side == 0:
            return  # entry skipped: nothing else can happen before the next decision
    # Open position (possibly just opened at event e, whose exits are checked next). The
    # hot loop keeps the triggers and the drawdown state in locals.
    s = float(side)
    low = fs[v, F_LOW_TRIGGER]
    high = fs[v, F_HIGH_TRIGGER]
    trail = fs[v, F_TRAIL_PX]
    expiry = ist[v, I_EXPIRY]
    base = fs[v, F_CASH] - s * fs[v, F_LOTS] * multiplier * fs[v, F_ENTRY_PX]
    slope = s * fs[v, F_LOTS] * multiplier
    peak = stats[v, EQUITY_PEAK]
    worst = stats[v, MAX_DRAWDOWN]
    equity = fs[v, F_EQUITY]
    pending_exit = ist[v, I_PENDING] == EXIT or ist[v, I_PENDING] == STOP_EXIT
    active = ist[v, I_ACTIVE] != 0
    while e < e1:
        if pending_exit and _eligible(ist, v, ev_ts, buy_px, e):
            # Pending orders fill before the event's exit checks.
            stats[v, EQUITY_PEAK] = peak
            stats[v, MAX_DRAWDOWN] = worst
            _fill_pending(vp, ip, fs, ist, stats, settings, isettings, v, buy_px[e],
                          sell_px[e], ev_ts[e], mark_px[e])
            if trade_px[e] == trade_px[e]:
                record_equity_nb(stats, v, fs[v, F_CASH])  # flat after a trade: marked at cash
                _check_flat_limits(fs, ist, stats, settings, v, ev_ts[e])
            return
        p = trade_px[e]
        if p == p:  # a trade (quotes and book events move no stop)
            ts = ev_ts[e]
            if ts >= expiry or p <= low or p >= high or s * (p - trail) >= 0.0:
                stats[v, EQUITY_PEAK] = peak
                stats[v, MAX_DRAWDOWN] = worst
                exit_price = sell_px[e] if side > 0 else buy_px[e]  # at market
                maker = 0
                reason = 0
                if ts >= expiry:
                    reason = MAX_HOLD
                elif (side > 0 and p <= low) or (side < 0 and p >= high):
                    reason = _stop_reason(ist, fs, v, s)
                elif (side > 0 and p >= high) or (side < 0 and p <= low):
                    reason = TAKE_PROFIT
                    if tp_limit:
                        exit_price = fs[v, F_TAKE_PROFIT]
                        maker = 1
                if reason != 0:
                    _close(fs, ist, stats, settings, v, exit_price, ts, reason, maker)
                    record_equity_nb(stats, v, fs[v, F_CASH])  # flat: marked at cash
                    _check_flat_limits(fs, ist, stats, settings, v, ts)
                    return
                # The trailing level: the stop moves, and is not re-checked on this event.
                _trail(vp, fs, ist, v, side, p)
                low = fs[v, F_LOW_TRIGGER]
                high = fs[v, F_HIGH_TRIGGER]
                trail = fs[v, F_TRAIL_PX]
            equity = base + slope * p
            peak, worst = _mark(peak, worst, equity)
            if active:
                breach = _limit_breached(settings, equity, worst)
                if breach != 0:
                    # Stopped: the position closes at the next price (the next event).
                    stop_variant_nb(ist, v, breach, ts)
                    active = False
                    pending_exit = True
        e += 1
    stats[v, EQUITY_PEAK] = peak
    stats[v, MAX_DRAWDOWN] = worst
    fs[v, F_EQUITY] = equity


@njit(inline="always")
def _bar_exit(fs, ist, stats, settings, isettings, v, side, price, ts, reason):
    # Market exit at ``price`` moved against the order by the slippage.
    slip = settings[S_SLIPPAGE]
    _close(fs, ist, stats, settings, v, price * (1.0 - side * slip), ts, reason, 0)


@njit(inline="always")
def _span_bars(vp, ip, fs, ist, stats, settings, isettings, v, ev_ts, ev_a, ev_b, ev_c,
               ev_d, e0, e1):
    multiplier = settings[S_MULTIPLIER]
    slip = settings[S_SLIPPAGE]
    tp_limit = isettings[IS_TP_LIMIT]
    for e in range(e0, e1):
        ts = ev_ts[e]
        bar_open = ev_a[e]
        if ist[v, I_PENDING] != NO_ORDER and ts >= ist[v, I_PENDING_TS]:
            _fill_pending(vp, ip, fs, ist, stats, settings, isettings, v,
                          bar_open * (1.0 + slip), bar_open * (1.0 - slip), ts, bar_open)
            if ist[v, I_SIDE] == 0:
                record_equity_nb(stats, v, fs[v, F_CASH])
        side = ist[v, I_SIDE]
        if side == 0:
            if ist[v, I_PENDING] == NO_ORDER:
                return
            continue
        s = float(side)
        bar_high = ev_b[e]
        bar_low = ev_c[e]
        low = fs[v, F_LOW_TRIGGER]
        high = fs[v, F_HIGH_TRIGGER]
        # Long: adverse extreme is the low, the stop is LOW, the take-profit HIGH.
        adverse = bar_low if side > 0 else bar_high
        favourable = bar_high if side > 0 else bar_low
        stop_level = low if side > 0 else high
        target = high if side > 0 else low
        if ts >= ist[v, I_EXPIRY]:
            _bar_exit(fs, ist, stats, settings, isettings, v, s, bar_open, ts, MAX_HOLD)
        elif s * (bar_open - stop_level) <= 0.0:  # gapped through the stop
            _bar_exit(fs, ist, stats, settings, isettings, v, s, bar_open, ts,
                      _stop_reason(ist, fs, v, s))
        elif s * (bar_open - target) >= 0.0:  # gapped through the take-profit
            if tp_limit:
                _close(fs, ist, stats, settings, v, bar_open, ts, TAKE_PROFIT, 1)
            else:
                _bar_exit(fs, ist, stats, settings, isettings, v, s, bar_open, ts,
                          TAKE_PROFIT)
        elif s * (adverse - stop_level) <= 0.0:  # stop first when both are touched
            _bar_exit(fs, ist, stats, settings, isettings, v, s, stop_level, ts,
                      _stop_reason(ist, fs, v, s))
        elif s * (favourable - target) >= 0.0:
            if tp_limit:
                _close(fs, ist, stats, settings, v, target, ts, TAKE_PROFIT, 1)
            else:
                _bar_exit(fs, ist, stats, settings, isettings, v, s, target, ts,
                          TAKE_PROFIT)
        else:
            # Survived the bar: equity along open, adverse, favourable, close; then the
            # trailing stop from the favourable extreme, effective from the next bar.
            base = fs[v, F_CASH] - s * fs[v, F_LOTS] * multiplier * fs[v, F_ENTRY_PX]
            slope = s * fs[v, F_LOTS] * multiplier
            equity = base + slope * ev_d[e]
            _mark_path(stats, v, base + slope * bar_open, base + slope * adverse,
                       base + slope * favourable, equity)
            fs[v, F_EQUITY] = equity
            if s * (favourable - fs[v, F_TRAIL_PX]) >= 0.0:
                _trail(vp, fs, ist, v, side, favourable)
        if ist[v, I_SIDE] == 0:
            record_equity_nb(stats, v, fs[v, F_CASH])  # exited in this bar: marked at the cash
            _check_flat_limits(fs, ist, stats, settings, v, ts)
        elif ist[v, I_ACTIVE] != 0:
            breach = _limit_breached(settings, fs[v, F_EQUITY], stats[v, MAX_DRAWDOWN])
            if breach != 0:
                # The bar is over: the position closes at the next bar's open.
                stop_variant_nb(ist, v, breach, ts)


# The quiet band's margin: each edge moves inwards by this fraction of the magnitudes
# that meet there (the edge's price, and the equities over the slope, in price). The
# marks' equities and the band's prices are rounded by some 1e-16 of those, so a price
# inside the band passes the exact tests whatever the position's size; the band is only
# narrower than the exact one by about 1e-8 of the price.
_QUIET_MARGIN = 1e-10


@njit(inline="always")
def _empty_quiet_band(slot_f, k):
    # No price is inside it: the slot always takes the exact tests.
    slot_f[SL_QUIET_LOW, k] = math.inf
    slot_f[SL_QUIET_HIGH, k] = -math.inf


@njit(inline="always")
def _set_quiet_band(slot_f, slot_i, k, settings):
    # Slot k's quiet band: the prices strictly inside it are no trigger, no new equity
    # peak, no new worst drawdown and, for an active variant, no equity below the safety
    # floor (the drawdown limit cannot be passed without a new worst). A span whose
    # prices all fall inside leaves the slot's marks as they are, so the fast passes only
    # move its equity. A slot without a side, or an active one already past the drawdown
    # limit, gets an empty band.
    side = slot_i[SLI_SIDE, k]
    active = slot_i[SLI_ACTIVE, k] != 0
    peak = slot_f[SL_PEAK, k]
    worst = slot_f[SL_WORST, k]
    if side == 0 or (active and worst > settings[S_MAX_DRAWDOWN]):
        _empty_quiet_band(slot_f, k)
        return
    base = slot_f[SL_BASE, k]
    slope = slot_f[SL_SLOPE, k]
    # The equity levels: above ``peak`` a new peak; below ``deep`` a new worst drawdown
    # (none while the peak is not positive: _deepen) or a safety stop. As prices (equity
    # = base + slope * price), a long's band lies between the deep and the peak price, a
    # short's (slope < 0) between the peak and the deep price.
    deep = peak - worst * peak if peak > 0.0 else -math.inf
    if active:
        deep = max(deep, settings[S_EQUITY_FLOOR])
    scale = (abs(peak) + abs(base)) / abs(slope)
    peak_price = (peak - base) / slope
    peak_margin = _QUIET_MARGIN * (abs(peak_price) + scale)
    low = slot_f[SL_LOW, k]
    high = slot_f[SL_HIGH, k]
    if side > 0:
        high = min(high, peak_price - peak_margin)
    else:
        low = max(low, peak_price + peak_margin)
    if deep > -math.inf:
        deep_price = (deep - base) / slope
        deep_margin = _QUIET_MARGIN * (abs(deep_price) + scale + abs(deep / slope))
        if side > 0:
            low = max(low, deep_price + deep_margin)
        else:
            high = min(high, deep_price - deep_margin)
    slot_f[SL_QUIET_LOW, k] = low
    slot_f[SL_QUIET_HIGH, k] = high


@njit(inline="always")
def _load_slot(fs, ist, stats, settings, slot_f, slot_i, k, v):
    # Slot k from variant v's rows, which must be current. Only a position without a
    # pending order can take the fast pass; anything else gets side 0. The trailing level
    # is folded into the trigger on its side: a long's trail is above the price like its
    # take-profit (p >= min of the two is "p >= either"), a short's below.
    side = ist[v, I_SIDE]
    if side == 0 or ist[v, I_PENDING] != NO_ORDER:
        slot_i[SLI_SIDE, k] = 0
        _empty_quiet_band(slot_f, k)
        return
    s = float(side)
    multiplier = settings[S_MULTIPLIER]
    low = fs[v, F_LOW_TRIGGER]
    high = fs[v, F_HIGH_TRIGGER]
    trail = fs[v, F_TRAIL_PX]
    if trail == trail:
        if side > 0:
            high = min(high, trail)
        else:
            low = max(low, trail)
    slot_f[SL_LOW, k] = low
    slot_f[SL_HIGH, k] = high
    # The same expressions as the span loops', so equities are bit-identical.
    slot_f[SL_BASE, k] = fs[v, F_CASH] - s * fs[v, F_LOTS] * multiplier * fs[v, F_ENTRY_PX]
    slot_f[SL_SLOPE, k] = s * fs[v, F_LOTS] * multiplier
    for row, field in SLOT_STATS_FIELDS:
        slot_f[row, k] = stats[v, field]
    for row, field in SLOT_FSTATE_FIELDS:
        slot_f[row, k] = fs[v, field]
    slot_i[SLI_SIDE, k] = side
    slot_i[SLI_EXPIRY, k] = ist[v, I_EXPIRY]
    slot_i[SLI_ACTIVE, k] = ist[v, I_ACTIVE]
    _set_quiet_band(slot_f, slot_i, k, settings)


@njit(inline="always")
def _spill_slot(fs, stats, slot_f, slot_i, k, v):
    # Variant v's marks and sample accumulators back from its slot k into its rows (a slot
    # without a side holds none: the rows are current).
    if slot_i[SLI_SIDE, k] != 0:
        for row, field in SLOT_STATS_FIELDS:
            stats[v, field] = slot_f[row, k]
        for row, field in SLOT_FSTATE_FIELDS:
            fs[v, field] = slot_f[row, k]


@njit
def _spill_all_slots(fs, stats, slot_f, slot_i, live, n_live):
    for k in range(n_live):
        _spill_slot(fs, stats, slot_f, slot_i, k, live[k])


@njit(inline="always")
def _move_slot(slot_f, slot_i, source, target):
    # Everything but the verdict, which is read before a slot moves.
    for r in range(N_SLOT_F):
        slot_f[r, target] = slot_f[r, source]
    for r in range(SLI_ACT):
        slot_i[r, target] = slot_i[r, source]


@njit(inline="always")
def _slot_holds(slot_f, slot_i, stale, live, k, lowest, highest, last_ts):
    # Whether slot k is current and its position untouched by a span whose trades (or
    # bars) range over [lowest, highest] up to ``last_ts``: no trigger, no expiry.
    # The slot's own tests first: the stale mark is a load that depends on another.
    return (slot_i[SLI_SIDE, k] != 0 and lowest > slot_f[SL_LOW, k]
            and highest < slot_f[SL_HIGH, k] and last_ts < slot_i[SLI_EXPIRY, k]
            and stale[live[k]] == 0)


@njit(inline="always")
def _slot_quiet(slot_f, slot_i, stale, live, k, lowest, highest, last_ts):
    # _slot_holds with the quiet band for the levels: the span moves only the equity.
    return (lowest > slot_f[SL_QUIET_LOW, k] and highest < slot_f[SL_QUIET_HIGH, k]
            and last_ts < slot_i[SLI_EXPIRY, k] and stale[live[k]] == 0)


@njit(inline="always")
def _hold(floor, max_drawdown, slot_f, slot_i, k, peak, worst, equity, lowest_equity):
    # Commit slot k's new marks, unless the safety limits (equity floor, maximum drawdown)
    # stop its variant: the full loop then runs the span. Returns whether it held.
    if slot_i[SLI_ACTIVE, k] != 0 and (lowest_equity < floor or worst > max_drawdown):
        return False
    slot_f[SL_PEAK, k] = peak
    slot_f[SL_WORST, k] = worst
    slot_f[SL_EQUITY, k] = equity
    return True


# How many slots ahead the visit loops prefetch the rows of a slot that acts.
PREFETCH_AHEAD = 8


@njit(inline="always")
def _prefetch_acting(vp, ip, fs, ist, stats, slot_i, live, k, n_live):
    # If slot k acts, start loading the lines the full span loop will read of its variant:
    # every line of its state rows, and the parameters an entry reads (one line each:
    # they are field-major). Measured in the module docstring.
    if k >= n_live or slot_i[SLI_ACT, k] == 0:
        return
    v = live[k]
    prefetch_row_nb(fs, v)
    prefetch_row_nb(ist, v)
    prefetch_row_nb(stats, v)
    for param in (P_LEVERAGE, P_SIZE_PCT, P_STOP_LOSS_ROI, P_TAKE_PROFIT_ROI, P_BE_BUFFER):
        prefetch_nb(vp, param, v)
    prefetch_nb(ip, IP_MAX_HOLD_NS, v)


@njit(inline="always")
def _verdict(slot_i, k, holds):
    # Record slot k's verdict for the span; returns 1 when the full loop must run it.
    act = 0 if holds else 1
    slot_i[SLI_ACT, k] = act
    return act


@njit
def _fast_pass_ticks(settings, slot_f, slot_i, stale, live, n_live, ev_ts, trade_px, e0, e1):
    # The fast pass over the events [e0, e1): every live slot whose position no trade of
    # the span takes to a trigger, the expiry or a safety limit gets its marks moved
    # exactly as _span_ticks moves them; the others get the verdict "act" (the full loop
    # runs them from the span's start). Returns how many act.
    #
    # The span's trades are summarised once: their price range and last time decide the
    # triggers and the expiry for every slot, and the lowest equity a trade marks (the
    # safety floor's test) is the equity at the adverse extreme, since a correctly rounded
    # base + slope * price is monotone in the price.
    lowest = math.inf
    highest = -math.inf
    last_ts = NOT_STARTED
    last_price = math.nan
    for e in range(e0, e1):
        p = trade_px[e]
        if p == p:
            lowest = min(lowest, p)
            highest = max(highest, p)
            last_ts = ev_ts[e]
            last_price = p
    # Read once: the slot stores could alias the settings for all the compiler knows.
    floor = settings[S_EQUITY_FLOOR]
    max_drawdown = settings[S_MAX_DRAWDOWN]
    n_act = 0
    traded = last_ts != NOT_STARTED
    for k in range(n_live):
        if traded and _slot_quiet(slot_f, slot_i, stale, live, k, lowest, highest, last_ts):
            slot_f[SL_EQUITY, k] = slot_f[SL_BASE, k] + slot_f[SL_SLOPE, k] * last_price
            n_act += _verdict(slot_i, k, True)
            continue
        holds = _slot_holds(slot_f, slot_i, stale, live, k, lowest, highest, last_ts)
        if holds and traded:
            base = slot_f[SL_BASE, k]
            slope = slot_f[SL_SLOPE, k]
            peak = slot_f[SL_PEAK, k]
            worst = slot_f[SL_WORST, k]
            for e in range(e0, e1):
                p = trade_px[e]
                if p == p:
                    peak, worst = _mark(peak, worst, base + slope * p)
            adverse = lowest if slot_i[SLI_SIDE, k] > 0 else highest
            holds = _hold(floor, max_drawdown, slot_f, slot_i, k, peak, worst,
                          base + slope * last_price, base + slope * adverse)
            if holds:
                _set_quiet_band(slot_f, slot_i, k, settings)
        n_act += _verdict(slot_i, k, holds)
    return n_act


@njit
def _fast_pass_bars(settings, slot_f, slot_i, stale, live, n_live, ts, bar_open, bar_high,
                    bar_low, bar_close):
    # _fast_pass_ticks for one bar: a slot holds when the bar's range stays strictly
    # between its levels (so no gap, stop, take-profit or trailing step) before its
    # expiry; its marks move along the path open, adverse, favourable, close, as
    # _span_bars moves them, and the safety limits see the close.
    lowest = min(bar_open, bar_low)
    highest = max(bar_open, bar_high)
    floor = settings[S_EQUITY_FLOOR]
    max_drawdown = settings[S_MAX_DRAWDOWN]
    n_act = 0
    for k in range(n_live):
        if _slot_quiet(slot_f, slot_i, stale, live, k, lowest, highest, ts):
            slot_f[SL_EQUITY, k] = slot_f[SL_BASE, k] + slot_f[SL_SLOPE, k] * bar_close
            n_act += _verdict(slot_i, k, True)
            continue
        holds = _slot_holds(slot_f, slot_i, stale, live, k, lowest, highest, ts)
        if holds:
            base = slot_f[SL_BASE, k]
            slope = slot_f[SL_SLOPE, k]
            long = slot_i[SLI_SIDE, k] > 0
            adverse = bar_low if long else bar_high
            favourable = bar_high if long else bar_low
            equity = base + slope * bar_close
            # The path's four marks, less the checks that cannot change anything: the
            # equity is monotone in the price (correctly rounded) and the bars are
            # validated (low <= open, close <= high), so the adverse extreme and the
            # close are never above the running peak and the favourable extreme is
            # never deeper than the adverse one (see docs/paper-execution.md's
            # candle mode for the path).
            peak, worst = _mark(slot_f[SL_PEAK, k], slot_f[SL_WORST, k],
                                base + slope * bar_open)
            worst = _deepen(peak, worst, base + slope * adverse)
            favourable_equity = base + slope * favourable
            peak = favourable_equity if favourable_equity > peak else peak
            worst = _deepen(peak, worst, equity)
            holds = _hold(floor, max_drawdown, slot_f, slot_i, k, peak, worst, equity, equity)
            if holds:
                _set_quiet_band(slot_f, slot_i, k, settings)
        n_act += _verdict(slot_i, k, holds)
    return n_act


@njit(inline="always")
def _after_span(ist, v, live, dirty, flagged, clock, n_flagged, kept):
    # Collect the span's records of ``v`` and keep it in the live list (compacted in
    # place, in order) only while it has a position or a pending order.
    if ist[v, I_FLAGS] != 0:
        flagged[n_flagged] = v
        n_flagged += 1
    if ist[v, I_SIDE] != 0 or ist[v, I_PENDING] != NO_ORDER:
        live[kept] = v
        kept += 1
    else:
        ist[v, I_LIVE] = 0
        if ist[v, I_DIRTY] == 0:  # its equity moved: the next sample must see it
            ist[v, I_DIRTY] = 1
            dirty[clock[C_DIRTY]] = v
            clock[C_DIRTY] += 1
    return n_flagged, kept


@njit(inline="always")
def _keep_held(live, slot_f, slot_i, k, kept):
    # Slot k held: its variant stays live, the slot moving down with the compaction of
    # the list. Returns the new count kept.
    if kept != k:
        live[kept] = live[k]
        _move_slot(slot_f, slot_i, k, kept)
    return kept + 1


@njit(inline="always")
def _after_full_span(fs, ist, stats, settings, v, live, dirty, flagged, clock, slot_f,
                     slot_i, stale, n_flagged, kept):
    # _after_span for a variant that ran the full span loop; if it stays live its slot is
    # reloaded from its rows (now current). Returns (n_flagged, kept).
    was_kept = kept
    n_flagged, kept = _after_span(ist, v, live, dirty, flagged, clock, n_flagged, kept)
    if kept != was_kept:
        _load_slot(fs, ist, stats, settings, slot_f, slot_i, was_kept, v)
        stale[v] = 0
    return n_flagged, kept


@njit
def _visit_bars(vp, ip, fs, ist, stats, settings, isettings, ev_ts, ev_a, ev_b, ev_c, ev_d,
                e0, e1, live, dirty, flagged, clock, slot_f, slot_i, stale):
    # Every live variant over the bar e0 (a span is one bar in candle mode); returns how
    # many have records to flush. The fast pass settles the slots that hold; the others
    # run the full span loop and have their slot reloaded.
    n_live = clock[C_LIVE]
    if _fast_pass_bars(settings, slot_f, slot_i, stale, live, n_live, ev_ts[e0], ev_a[e0],
                       ev_b[e0], ev_c[e0], ev_d[e0]) == 0:
        return 0
    n_flagged = 0
    kept = 0
    for k in range(n_live):
        _prefetch_acting(vp, ip, fs, ist, stats, slot_i, live, k + PREFETCH_AHEAD, n_live)
        if slot_i[SLI_ACT, k] == 0:
            kept = _keep_held(live, slot_f, slot_i, k, kept)
            continue
        v = live[k]
        _spill_slot(fs, stats, slot_f, slot_i, k, v)
        _span_bars(vp, ip, fs, ist, stats, settings, isettings, v, ev_ts, ev_a, ev_b, ev_c,
                   ev_d, e0, e1)
        n_flagged, kept = _after_full_span(fs, ist, stats, settings, v, live, dirty, flagged,
                                           clock, slot_f, slot_i, stale, n_flagged, kept)
    clock[C_LIVE] = kept
    return n_flagged


@njit
def _visit_ticks(vp, ip, fs, ist, stats, settings, isettings, ev_ts, trade_px, buy_px,
                 sell_px, mark_px, e0, e1, live, dirty, flagged, clock, slot_f, slot_i,
                 stale):
    # Every live variant over the events [e0, e1); returns how many have records to flush.
    # Fast pass and full loop as in _visit_bars.
    n_live = clock[C_LIVE]
    if _fast_pass_ticks(settings, slot_f, slot_i, stale, live, n_live, ev_ts, trade_px, e0,
                        e1) == 0:
        return 0
    n_flagged = 0
    kept = 0
    for k in range(n_live):
        _prefetch_acting(vp, ip, fs, ist, stats, slot_i, live, k + PREFETCH_AHEAD, n_live)
        if slot_i[SLI_ACT, k] == 0:
            kept = _keep_held(live, slot_f, slot_i, k, kept)
            continue
        v = live[k]
        _spill_slot(fs, stats, slot_f, slot_i, k, v)
        _span_ticks(vp, ip, fs, ist, stats, settings, isettings, v, ev_ts, trade_px, buy_px,
                    sell_px, mark_px, e0, e1)
        n_flagged, kept = _after_full_span(fs, ist, stats, settings, v, live, dirty, flagged,
                                           clock, slot_f, slot_i, stale, n_flagged, kept)
    clock[C_LIVE] = kept
    return n_flagged


# ---------------------------------------------------------------------------------------
# Cut actions.


@njit
def _charge_funding(fs, ist, stats, settings, market, live, n_live, slot_f, slot_i):
    # Only variants in the live list can hold a position.
    rate = market[M_FUNDING_RATE]
    price = market[M_LAST_PRICE]
    multiplier = settings[S_MULTIPLIER]
    for k in range(n_live):
        v = live[k]
        side = ist[v, I_SIDE]
        if side != 0:
            _spill_slot(fs, stats, slot_f, slot_i, k, v)
            payment = side * rate * fs[v, F_LOTS] * multiplier * price
            fs[v, F_CASH] -= payment
            fs[v, F_FUNDING] += payment
            entry = fs[v, F_ENTRY_PX]
            equity = fs[v, F_CASH] + side * fs[v, F_LOTS] * multiplier * (price - entry)
            fs[v, F_EQUITY] = equity  # marked for drawdown at the next trade event
            _load_slot(fs, ist, stats, settings, slot_f, slot_i, k, v)  # the cash moved


@njit(inline="always")
def _sample_constants(passed, boundaries):
    # Every sampled variant ends with the same sample count: its zeros bring it to
    # ``passed``, its return to ``passed + 1``, the remaining boundaries to
    # ``passed + boundaries``. So the three Welford divisions by a count are
    # multiplications by reciprocals computed once per sample time, and the return is the
    # only division per variant (equity samples were a fifth of the RSI grid's time with
    # three; results differ from the twin's divisions by rounding only).
    base = float(passed)
    inv_base = 1.0 / base if base > 0.0 else 0.0
    last = base + float(boundaries)
    return base, inv_base, 1.0 / (base + 1.0), last, 1.0 / last, float(boundaries - 1)


@njit(inline="always")
def _sample_step(constants, equity, previous, count, mean, m2):
    # One variant's accumulators (count, mean, m2 of the sampled returns) advanced to the
    # sample time ``constants`` describe; returns them (the sampled equity is then
    # ``equity``).
    base, inv_base, inv_next, last, inv_last, trailing = constants
    zeros = base - count
    if zeros > 0.0:  # merge a block of zeros (Chan et al.): count + zeros = base
        m2 += mean * mean * count * zeros * inv_base
        mean = mean * count * inv_base
    r = equity / previous - 1.0 if previous > 0.0 else 0.0
    delta = r - mean
    mean += delta * inv_next
    m2 += delta * (r - mean)
    if trailing > 0.0:  # and the boundaries after this one, zeros too
        m2 += mean * mean * (base + 1.0) * trailing * inv_last
        mean = mean * (base + 1.0) * inv_last
    return last, mean, m2


@njit(inline="always")
def _sample_row(fs, v, constants):
    # Variant v's equity sample, from and to its row. A variant whose equity has not moved
    # since its last sample only gets zero returns, so it is skipped here and its zeros
    # are merged in when it next moves, or when metrics are read; so the callers visit
    # only the variants whose equity can have moved.
    equity = fs[v, F_EQUITY]
    previous = fs[v, F_SAMPLE_EQUITY]
    if equity != previous:
        fs[v, F_SAMPLES], fs[v, F_SAMPLE_MEAN], fs[v, F_SAMPLE_M2] = _sample_step(
            constants, equity, previous, fs[v, F_SAMPLES], fs[v, F_SAMPLE_MEAN],
            fs[v, F_SAMPLE_M2])
        fs[v, F_SAMPLE_EQUITY] = equity


@njit
def _sample_dirty(fs, ist, dirty, n_dirty, passed, boundaries):
    # The equity samples at ``boundaries`` more sample times (``passed`` were before) of
    # the variants that left the live list since the last samples, unless one is live
    # again (then _sample_live samples it).
    constants = _sample_constants(passed, boundaries)
    for k in range(n_dirty):
        v = dirty[k]
        if ist[v, I_LIVE] == 0:
            _sample_row(fs, v, constants)


@njit(inline="always")
def _sample_held_slots(slot_f, slot_i, n_live, constants, floor):
    # _sample_live's work on every slot with a position, at one sample time: _sample_step
    # with its branches turned into selects (the same operations in the same order, so
    # the same results bit for bit), which LLVM vectorises, divisions included (RSI grid,
    # 30 rounds of 30,000 bars alternating with the scalar loop in one process: median
    # 0.96 of its time, identical metrics). The step is written out rather than a call to
    # _sample_step, whose trailing-zeros branch it does not need: with the call, the loop
    # still vectorised but took 1.14, 1.01 and 1.10 of this one's time (12-16 rounds).
    # Returns how many active slots have an equity at or above ``floor``.
    base, inv_base, inv_next, last, _, _ = constants
    side = slot_i[SLI_SIDE, :n_live]
    active = slot_i[SLI_ACTIVE, :n_live]
    equities = slot_f[SL_EQUITY, :n_live]
    previous = slot_f[SL_SAMPLE_EQUITY, :n_live]
    counts = slot_f[SL_SAMPLES, :n_live]
    means = slot_f[SL_SAMPLE_MEAN, :n_live]
    m2s = slot_f[SL_SAMPLE_M2, :n_live]
    n_above = 0
    for k in range(n_live):
        held = side[k] != 0
        equity = equities[k]
        before = previous[k]
        sampled = held & (equity != before)
        count = counts[k]
        mean = means[k]
        m2 = m2s[k]
        zeros = base - count
        if zeros > 0.0:
            m2 += mean * mean * count * zeros * inv_base
            mean = mean * count * inv_base
        r = equity / before - 1.0 if before > 0.0 else 0.0
        delta = r - mean
        mean += delta * inv_next
        m2 += delta * (r - mean)
        means[k] = mean if sampled else means[k]
        m2s[k] = m2 if sampled else m2s[k]
        counts[k] = last if sampled else count
        previous[k] = equity if sampled else before
        n_above += held & (active[k] != 0) & (equity >= floor)
    return n_above


@njit
def _sample_live(fs, ist, stats, live, n_live, passed, boundaries, slot_f, slot_i, floor,
                 baseline):
    # _sample_dirty for the live variants, from their slots where they have one. Returns
    # whether some active live variant's equity is at or above ``floor`` (then the global
    # halt's floor test needs no scan), and writes the baseline's marks back to its rows
    # (the halt's drawdown test reads them).
    constants = _sample_constants(passed, boundaries)
    if boundaries == 1:  # the slots with a position all at once, then the others
        above_floor = _sample_held_slots(slot_f, slot_i, n_live, constants, floor) > 0
        for k in range(n_live):
            v = live[k]
            if slot_i[SLI_SIDE, k] == 0:
                _sample_row(fs, v, constants)
                above_floor |= ist[v, I_ACTIVE] != 0 and fs[v, F_EQUITY] >= floor
            elif v == baseline:
                _spill_slot(fs, stats, slot_f, slot_i, k, v)
        return above_floor
    above_floor = False
    for k in range(n_live):
        v = live[k]
        if slot_i[SLI_SIDE, k] == 0:
            _sample_row(fs, v, constants)
            above_floor |= ist[v, I_ACTIVE] != 0 and fs[v, F_EQUITY] >= floor
            continue
        equity = slot_f[SL_EQUITY, k]
        above_floor |= slot_i[SLI_ACTIVE, k] != 0 and equity >= floor
        previous = slot_f[SL_SAMPLE_EQUITY, k]
        if equity != previous:
            (slot_f[SL_SAMPLES, k], slot_f[SL_SAMPLE_MEAN, k],
             slot_f[SL_SAMPLE_M2, k]) = _sample_step(
                constants, equity, previous, slot_f[SL_SAMPLES, k], slot_f[SL_SAMPLE_MEAN, k],
                slot_f[SL_SAMPLE_M2, k])
            slot_f[SL_SAMPLE_EQUITY, k] = equity
        if v == baseline:
            _spill_slot(fs, stats, slot_f, slot_i, k, v)
    return above_floor


@njit
def _decide(cp, config_start, ist, isettings, first, last, subscores, rsi, weights, weighted,
            score, strong, acting, decision_ts, live, clock, slot_i, stale):
    # The decisions of the variants of signal configurations ``first .. last - 1``. Only a
    # strong class with enough confidence acts, and that is a property of the
    # configuration: its variants are visited only then, and its confidence is computed
    # only for a strong class. Two steps, for the memory: first the configurations that
    # act are listed in ``acting``, and the state rows of their variants are prefetched
    # as they are found; then their variants take their orders, from rows on their way
    # to the cache or in it. The strong classes are read eight at a time (one uint64 of
    # the int8 array; the engine pads it to a multiple of 8), and a word of zeros, the
    # common case, is skipped whole.
    n_acting = 0
    words = strong.view(np.uint64)
    for j in range(first >> 3, (last + 7) >> 3):
        if words[j] == 0:
            continue
        for c in range(max(first, j << 3), min(last, (j + 1) << 3)):
            if strong[c] == 0:
                continue
            confidence = confidence_nb(subscores, rsi, weights, c, cp[P_RSI_OVERSOLD, c],
                                       cp[P_RSI_OVERBOUGHT, c], score[c], weighted)
            if confidence < cp[P_MIN_CONFIDENCE, c] - THRESHOLD_TOLERANCE:
                continue
            acting[n_acting] = c
            n_acting += 1
            v = config_start[c]  # the first variant's row: most configurations have one
            prefetch_nb(ist, v, I_SIDE)
            prefetch_nb(ist, v, I_ACTIVE)
    sides = isettings[IS_SIDES]  # 0 both, 1 long only, -1 short only
    latency = isettings[IS_LATENCY_NS]
    for k in range(n_acting):
        c = acting[k]
        sig = strong[c]
        for v in range(config_start[c], config_start[c + 1]):
            if ist[v, I_ACTIVE] == 0 or ist[v, I_PENDING] != NO_ORDER:
                continue
            side = ist[v, I_SIDE]
            if side == 0:
                if sig == STRONG_BUY and sides >= 0:
                    ist[v, I_PENDING] = 1
                elif sig == STRONG_SELL and sides <= 0:
                    ist[v, I_PENDING] = -1
                else:
                    continue
            elif (side > 0 and sig == STRONG_SELL) or (side < 0 and sig == STRONG_BUY):
                ist[v, I_PENDING] = EXIT
            else:
                continue
            ist[v, I_PENDING_TS] = decision_ts + latency
            # Its slot (if it has one), quiet band included, no longer describes it; an
            # appended slot keeps the band of the slot's last variant until it is loaded.
            stale[v] = 1
            if ist[v, I_LIVE] == 0:
                ist[v, I_LIVE] = 1
                live[clock[C_LIVE]] = v
                slot_i[SLI_SIDE, clock[C_LIVE]] = 0  # no slot: its rows are current
                clock[C_LIVE] += 1


@njit
def _close_candle(tf, decision_ts, candles, market, kind_start, row_timeframe, bank_params,
                  bank_state, ring, ring_base, bank_out, closed, bar_h, bar_l, bar_c, bar_v,
                  signal_rows, subscores, cp, ist, isettings, weights, weighted,
                  config_start, tf_config_start, score, strong, acting, live,
                  clock, slot_i, stale):
    # One closed candle of timeframe ``tf``: advance its indicator rows, score its signal
    # configurations, take their variants' decisions.
    closed[:] = 0
    closed[tf] = 1
    bar_h[tf] = candles[CB_HIGH, tf]
    bar_l[tf] = candles[CB_LOW, tf]
    bar_c[tf] = candles[CB_CLOSE, tf]
    bar_v[tf] = candles[CB_VOLUME, tf]
    bank_update_nb(kind_start, row_timeframe, bank_params, bank_state, ring, ring_base,
                   bank_out, closed, bar_h, bar_l, bar_c, bar_v)
    first = tf_config_start[tf]
    last = tf_config_start[tf + 1]
    if first == last:
        return
    rows = signal_rows[tf]
    stoch = rows[R_STOCH]
    bands = rows[R_BOLLINGER]
    shared_subscores_nb(
        bank_out[rows[R_WILLIAMS_R], 0], bank_out[rows[R_MACD], 0], bank_out[rows[R_MACD], 2],
        bank_out[rows[R_AO], 0], bank_out[rows[R_EMA_FAST], 0], bank_out[rows[R_EMA_SLOW], 0],
        bank_out[stoch, 0], bank_out[stoch, 1], candles[CB_CLOSE, tf], bank_out[bands, 0],
        bank_out[bands, 2], bank_out[rows[R_KDJ], 2], bank_out[rows[R_OBV_SLOPE], 0],
        market[M_IMBALANCE], subscores,
    )
    rsi = bank_out[rows[R_RSI], 0]
    score_variants_nb(subscores, rsi, first, last, weights, cp[P_RSI_OVERSOLD],
                      cp[P_RSI_OVERBOUGHT], cp[P_STRONG_BUY], cp[P_BUY], cp[P_STRONG_SELL],
                      score, strong, weighted[tf])
    _decide(cp, config_start, ist, isettings, first, last, subscores, rsi, weights,
            weighted[tf], score, strong, acting, decision_ts, live, clock, slot_i, stale)


@njit
def _flush(fs, ist, flagged, n_flagged, open_i, open_f, trade_i, trade_f, out_count):
    # Copy the span's entry fills and closed trades of the ``flagged`` variants out.
    n_open = out_count[0]
    n_trade = out_count[1]
    for k in range(n_flagged):
        v = flagged[k]
        flags = ist[v, I_FLAGS]
        ist[v, I_FLAGS] = 0
        if flags & FLAG_OPENED:
            open_i[0, n_open] = v
            open_i[1, n_open] = ist[v, I_ENTRY_TS]
            open_i[2, n_open] = ist[v, I_SIDE] if not flags & FLAG_CLOSED else ist[v, I_R_SIDE]
            open_f[0, n_open] = fs[v, F_ENTRY_PX]
            open_f[1, n_open] = fs[v, F_LOTS]
            open_f[2, n_open] = fs[v, F_ENTRY_FEE]
            n_open += 1
        if flags & FLAG_CLOSED:
            trade_i[0, n_trade] = v
            trade_i[1, n_trade] = ist[v, I_R_SIDE]
            trade_i[2, n_trade] = ist[v, I_R_ENTRY_TS]
            trade_i[3, n_trade] = ist[v, I_R_EXIT_TS]
            trade_i[4, n_trade] = ist[v, I_R_REASON]
            trade_i[5, n_trade] = ist[v, I_R_MAKER]
            for k in range(N_TRADE_F):
                trade_f[k, n_trade] = fs[v, F_R_ENTRY_PX + k]
            n_trade += 1
    out_count[0] = n_open
    out_count[1] = n_trade


# ---------------------------------------------------------------------------------------
# The pass.


@njit
def run_events_nb(ev_kind, ev_ts, ev_a, ev_b, ev_c, ev_d, ev_e, n_events,
                  buy_px, sell_px, trade_px, mark_px,
                  settings, isettings, market, clock,
                  tf_ns, cb_start, cb_count, candles,
                  kind_start, row_timeframe, bank_params, bank_state, ring, ring_base,
                  bank_out, closed, bar_h, bar_l, bar_c, bar_v, signal_rows, subscores,
                  vp, ip, cp, weights, weighted, config_start, tf_config_start, fs, ist, stats,
                  score, strong, acting, live, dirty, flagged,
                  slot_f, slot_i, stale,
                  open_i, open_f, trade_i, trade_f, out_count):
    """Advance every variant over events ``[0, n_events)``; returns how many were consumed.

    It stops early, at a cut, when the output buffers have less room than one record of
    each kind per variant; the caller drains them and calls again with the rest. Event
    columns are caller-validated (non-decreasing ts, finite positive prices). The live
    slots (``slot_f``, ``slot_i``, ``stale``) are scratch: rebuilt here from the state rows,
    so the caller may change those rows between calls.
    """
    n = fs.shape[0]
    n_tf = tf_ns.shape[0]
    capacity = trade_i.shape[1]
    candle_mode = isettings[IS_CANDLE_MODE] != 0
    bar_ns = isettings[IS_BAR_NS]
    sample_ns = isettings[IS_SAMPLE_NS]
    slip = settings[S_SLIPPAGE]
    for k in range(clock[C_LIVE]):
        _load_slot(fs, ist, stats, settings, slot_f, slot_i, k, live[k])
        stale[live[k]] = 0
    e = 0
    if n_events > 0 and clock[C_STARTED] == 0:
        clock[C_STARTED] = 1
        first_ts = ev_ts[0]
        clock[C_NEXT_SAMPLE] = (first_ts // sample_ns + 1) * sample_ns
    while e < n_events:
        if capacity - out_count[1] < n or capacity - out_count[0] < n:
            break
        # --- the cut before event e: everything whose time is <= ts ----------------
        now = ev_ts[e]
        _cut(now, settings, isettings, market, clock, tf_ns, cb_start, cb_count, candles,
             kind_start, row_timeframe, bank_params, bank_state, ring, ring_base, bank_out,
             closed, bar_h, bar_l, bar_c, bar_v, signal_rows, subscores, vp, fs, ist,
             stats, cp, weights, weighted, config_start, tf_config_start, score, strong,
             acting, live, dirty, slot_f, slot_i, stale, n, n_tf)
        # --- shared walk: the span's events, until one reaches the next cut ----------
        next_cut = _next_cut(clock, tf_ns, cb_start, n_tf)
        span_start = e
        if candle_mode:
            # One bar per span: every bar may close candles at its end.
            _bar_walk(e, ev_ts, ev_a, ev_b, ev_c, ev_d, ev_e, market, clock, tf_ns,
                      cb_start, cb_count, candles, n_tf)
            e += 1
        else:
            while e < n_events:
                ts = ev_ts[e]
                if e > span_start and ts >= next_cut:
                    break
                kind = ev_kind[e]
                if kind == TRADE:
                    price = ev_a[e]
                    trade_px[e] = price
                    market[M_LAST_PRICE] = price
                    if market[M_HAVE_QUOTE] != 0.0:
                        buy_px[e] = market[M_ASK]
                        sell_px[e] = market[M_BID]
                    else:
                        buy_px[e] = price * (1.0 + slip)
                        sell_px[e] = price * (1.0 - slip)
                    next_cut = min(next_cut, _add_trade(ts, price, ev_b[e], tf_ns, cb_start,
                                                        cb_count, candles, n_tf))
                elif kind == QUOTE:
                    market[M_BID] = ev_a[e]
                    market[M_ASK] = ev_c[e]
                    market[M_HAVE_QUOTE] = 1.0
                    trade_px[e] = math.nan
                    buy_px[e] = ev_c[e]
                    sell_px[e] = ev_a[e]
                else:
                    trade_px[e] = math.nan
                    buy_px[e] = math.nan
                    sell_px[e] = math.nan
                    if kind == DEPTH:
                        total = ev_a[e] + ev_b[e]
                        market[M_IMBALANCE] = (
                            (ev_a[e] - ev_b[e]) / total if total > 0.0 else math.nan
                        )
                    elif kind == FUNDING_RATE:
                        if market[M_FUNDING_RATE] != market[M_FUNDING_RATE]:
                            clock[C_NEXT_FUNDING] = (ts // FUNDING_PERIOD_NS + 1) * (
                                FUNDING_PERIOD_NS
                            )
                            next_cut = min(next_cut, clock[C_NEXT_FUNDING])
                        market[M_FUNDING_RATE] = ev_a[e]
                mark_px[e] = market[M_LAST_PRICE]
                clock[C_LAST_TS] = ts
                e += 1
        # --- every variant over the span ----------------------------------------------
        # Only live variants (a position or a pending order) can act in a span; the list
        # is compacted in place, in order, as variants go flat.
        if candle_mode:
            n_flagged = _visit_bars(vp, ip, fs, ist, stats, settings, isettings, ev_ts, ev_a,
                                    ev_b, ev_c, ev_d, span_start, e, live, dirty, flagged,
                                    clock, slot_f, slot_i, stale)
        else:
            n_flagged = _visit_ticks(vp, ip, fs, ist, stats, settings, isettings, ev_ts,
                                     trade_px, buy_px, sell_px, mark_px, span_start, e, live,
                                     dirty, flagged, clock, slot_f, slot_i, stale)
        _flush(fs, ist, flagged, n_flagged, open_i, open_f, trade_i, trade_f, out_count)
        if candle_mode:
            market[M_LAST_PRICE] = ev_d[span_start]
            clock[C_LAST_TS] = ev_ts[span_start]
            # The bar is complete: candles ending with it close now.
            _cut(ev_ts[span_start] + bar_ns, settings, isettings, market, clock, tf_ns,
                 cb_start, cb_count, candles, kind_start, row_timeframe, bank_params,
                 bank_state, ring, ring_base, bank_out, closed, bar_h, bar_l, bar_c, bar_v,
                 signal_rows, subscores, vp, fs, ist, stats, cp, weights, weighted, config_start,
                 tf_config_start,
                 score, strong, acting, live, dirty, slot_f, slot_i, stale, n,
                 n_tf)
        clock[C_EVENTS] += e - span_start
    _spill_all_slots(fs, stats, slot_f, slot_i, live, clock[C_LIVE])
    return e


@njit(inline="always")
def _next_cut(clock, tf_ns, cb_start, n_tf):
    cut = min(clock[C_NEXT_SAMPLE], clock[C_NEXT_FUNDING])
    for t in range(n_tf):
        if cb_start[t] != NOT_STARTED:
            cut = min(cut, cb_start[t] + tf_ns[t])
    return cut


@njit(inline="always")
def _add_trade(ts, price, size, tf_ns, cb_start, cb_count, candles, n_tf):
    # Returns the earliest bucket end: the first trade starts the builders, and the span
    # that started before them must still stop at their first boundary.
    cut = NO_TIME
    for t in range(n_tf):
        if cb_start[t] == NOT_STARTED:
            cb_start[t] = ts - ts % tf_ns[t]
        if cb_count[t] == 0:
            candles[CB_OPEN, t] = price
            candles[CB_HIGH, t] = price
            candles[CB_LOW, t] = price
            candles[CB_CLOSE, t] = price
            candles[CB_VOLUME, t] = size
        else:
            candles[CB_HIGH, t] = max(candles[CB_HIGH, t], price)
            candles[CB_LOW, t] = min(candles[CB_LOW, t], price)
            candles[CB_CLOSE, t] = price
            candles[CB_VOLUME, t] += size
        cb_count[t] += 1
        cut = min(cut, cb_start[t] + tf_ns[t])
    return cut


@njit
def _bar_walk(e, ev_ts, ev_a, ev_b, ev_c, ev_d, ev_e, market, clock, tf_ns, cb_start,
              cb_count, candles, n_tf):
    ts = ev_ts[e]
    for t in range(n_tf):
        if cb_start[t] == NOT_STARTED:
            cb_start[t] = ts - ts % tf_ns[t]
        if cb_count[t] == 0:
            candles[CB_OPEN, t] = ev_a[e]
            candles[CB_HIGH, t] = ev_b[e]
            candles[CB_LOW, t] = ev_c[e]
            candles[CB_CLOSE, t] = ev_d[e]
            candles[CB_VOLUME, t] = ev_e[e]
        else:
            candles[CB_HIGH, t] = max(candles[CB_HIGH, t], ev_b[e])
            candles[CB_LOW, t] = min(candles[CB_LOW, t], ev_c[e])
            candles[CB_CLOSE, t] = ev_d[e]
            candles[CB_VOLUME, t] += ev_e[e]
        cb_count[t] += 1


@njit
def _cut(now, settings, isettings, market, clock, tf_ns, cb_start, cb_count, candles,
         kind_start, row_timeframe, bank_params, bank_state, ring, ring_base, bank_out,
         closed, bar_h, bar_l, bar_c, bar_v, signal_rows, subscores, vp, fs, ist, stats, cp,
         weights, weighted, config_start, tf_config_start, score, strong, acting,
         live, dirty, slot_f, slot_i, stale, n, n_tf):
    # 1. funding, once per funding time crossed
    # (A closed form, not `while next <= now: next += period`: LLVM turns that loop into a
    # 128-bit division, __udivti3, which Numba's JIT linker does not provide.)
    if clock[C_NEXT_FUNDING] <= now:
        times = (now - clock[C_NEXT_FUNDING]) // FUNDING_PERIOD_NS + 1
        for _ in range(times):
            _charge_funding(fs, ist, stats, settings, market, live, clock[C_LIVE], slot_f,
                            slot_i)
        clock[C_NEXT_FUNDING] += times * FUNDING_PERIOD_NS
    # 2. equity samples
    sample_ns = isettings[IS_SAMPLE_NS]
    if clock[C_NEXT_SAMPLE] <= now:
        boundaries = (now - clock[C_NEXT_SAMPLE]) // sample_ns + 1
        # Only variants whose equity can have moved since the last sample: the live ones
        # and those that left the live list since. Every other variant's equity equals its
        # last sample, so its returns are zeros, merged lazily (see _sample_row).
        above_floor = _sample_live(fs, ist, stats, live, clock[C_LIVE], clock[C_SAMPLES],
                                   boundaries, slot_f, slot_i, settings[S_HALT_FLOOR],
                                   isettings[IS_BASELINE])
        _sample_dirty(fs, ist, dirty, clock[C_DIRTY], clock[C_SAMPLES], boundaries)
        for k in range(clock[C_DIRTY]):
            ist[dirty[k], I_DIRTY] = 0
        clock[C_DIRTY] = 0
        clock[C_SAMPLES] += boundaries
        # The global halt is checked on the sample clock (an O(n) look at every equity
        # only when no live variant is above the floor).
        if clock[C_HALTED] == 0 and _halt_due(fs, ist, stats, settings, isettings, n,
                                              above_floor, live, clock[C_LIVE], slot_f,
                                              slot_i):
            clock[C_HALTED] = 1
            for v in range(n):
                stop_variant_nb(ist, v, STOPPED_HALT, now)
                stale[v] = 1
        clock[C_NEXT_SAMPLE] += boundaries * sample_ns
    # 3. candle closes, shortest timeframe first, gap candles included
    for t in range(n_tf):
        if cb_start[t] == NOT_STARTED:
            continue
        while cb_start[t] + tf_ns[t] <= now:
            end = cb_start[t] + tf_ns[t]
            if cb_count[t] == 0:  # gap: repeat the previous close with zero volume
                price = candles[CB_CLOSE, t]
                candles[CB_OPEN, t] = price
                candles[CB_HIGH, t] = price
                candles[CB_LOW, t] = price
                candles[CB_VOLUME, t] = 0.0
            _close_candle(t, end, candles, market, kind_start, row_timeframe, bank_params,
                          bank_state, ring, ring_base, bank_out, closed, bar_h, bar_l, bar_c,
                          bar_v, signal_rows, subscores, cp, ist, isettings, weights,
                          weighted, config_start, tf_config_start, score, strong,
                          acting, live, clock, slot_i, stale)
            cb_start[t] = end
            cb_count[t] = 0


def subscores_buffer():
    """Scratch for the shared sub-scores (plain Python)."""
    return np.zeros(N_SUBSCORES)


__all__ = ["BUY", "SELL", "run_events_nb", "subscores_buffer"]
