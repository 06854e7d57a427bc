"""liveopt measured in a fresh process, the way ``vectorbt_baseline`` measures vectorbt.

Two measurements, each printed as JSON by the CLI and returned by ``run_in_subprocess``:

``rsi-grid``
    The RSI grid of ``workloads.rsi_grid_params`` over ``workloads.bars_100k`` in candle
    mode (``rsi_grid_variants`` and ``GRID_CONFIG`` below). After a warm-up on a one-variant
    engine (the first kernel call in a process loads, or compiles, the compiled core), the
    timed run is: construct the ``Engine`` for the whole grid, ``on_candles`` over all
    bars, ``metrics()``, and with ``--keep-records`` also ``drain_fills()``. With
    ``--drain-every N`` the records stream out instead, as a journaling caller takes
    them: ``on_candles`` over N bars at a time, each chunk followed by ``drain_fills()``
    (the records are counted, then dropped). Memory is the
    peak resident set during the run minus the resident set just before it, as
    ``vectorbt_baseline.run_vectorbt_rsi_grid`` measures vectorbt, with one difference:
    vectorbt's run peaks gigabytes above anything before it, so the process's
    ``ru_maxrss`` is its peak; liveopt's peaks lower than reading the bars did, so the
    kernel's high-water mark (``VmHWM``) is reset just before the run and read after it.
``construct``
    The resident-set growth of constructing an ``Engine`` with ``--variants`` random 1m
    variants (the variant set is generated before the baseline is read), and after feeding
    it ``--ticks`` trade ticks (which touches the lazily mapped output buffers).

Run::

    .venv/bin/python benchmarks/engine_process.py rsi-grid                # 1000 x 100k
    .venv/bin/python benchmarks/engine_process.py rsi-grid --keep-records
    .venv/bin/python benchmarks/engine_process.py rsi-grid --drain-every 10000
    .venv/bin/python benchmarks/engine_process.py construct --variants 100000

The grid's rule, as liveopt variants: weights on the RSI alone, so the score is the RSI
sub-score (+1 below the variant's oversold level, +0.6 within 10 above it, -1 above the
overbought level, -0.6 within 10 below it, ``docs/signal-model.md``); ``strong_buy``
0.65 and ``strong_sell`` -0.65, so only RSI < oversold is STRONG_BUY (enter long at the
next bar's open) and RSI > overbought STRONG_SELL (exit at the next bar's open), with
confidence 1 against ``min_confidence`` 0.5; stop-loss and take-profit ROI from the grid
at leverage 10 (the same price fractions ``roi / leverage / 100`` as vectorbt's
``sl_stop``/``tp_stop``); 1 % of capital as margin per trade; no max hold (1e9 s); long
only, no trailing stop, no slippage, taker fee 0.06 % per side, and the engine's safety
limits off (per-variant loss and drawdown stops, global halts), as vectorbt has none.
"""

from __future__ import annotations

import argparse
import gc
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

# A sibling module: on sys.path both when this file runs as a script and under pytest.
from workloads import FEE, RsiGrid, bars_100k, rsi_grid_params, ticks

from liveopt.engine import REASON_NAMES, Engine, EngineConfig
from liveopt.optimizer import OptimizerConfig, VariantSet, generate_variants
from liveopt.optimizer.space import WEIGHT_NAMES

ONE_MINUTE = OptimizerConfig(timeframes=("1m",), default_timeframe="1m")
GRID_CONFIG = EngineConfig(
    sides="long", trailing=False, slippage_bps=0.0, taker_fee=FEE, bar_timeframe="1m",
    # vectorbt has no safety limits: no variant is ever stopped, nothing halts.
    max_loss_pct=None, max_drawdown_pct=None, halt_below_pct=None,
    baseline_max_drawdown_pct=None,
)
BAR_COLUMNS = ("ts", "open", "high", "low", "close", "volume")
NO_MAX_HOLD_S = 1e9  # 31 years: never reached (and 1e18 ns still fits in int64)


def rsi_grid_variants(grid: RsiGrid) -> VariantSet:
    """The grid as a liveopt ``VariantSet`` (module docstring), row ``i`` = grid row ``i``."""
    n = len(grid)
    base = generate_variants(n, "random", 0, ONE_MINUTE)
    columns = {name: np.array(column) for name, column in base.columns().items()}
    weights = np.zeros((n, len(WEIGHT_NAMES)))
    weights[:, WEIGHT_NAMES.index("rsi")] = 1.0
    columns["weights"] = weights
    columns["weight_points"] = weights.copy()
    columns["rsi_oversold"] = grid.oversold
    columns["rsi_overbought"] = grid.overbought
    columns["stop_loss_roi"] = grid.sl_roi
    columns["take_profit_roi"] = grid.tp_roi
    columns["leverage"][:] = round(grid.leverage)
    columns["strong_buy"][:] = 0.65
    columns["buy"][:] = 0.4
    columns["sell"][:] = -0.4
    columns["strong_sell"][:] = -0.65
    columns["min_confidence"][:] = 0.5
    columns["max_hold_s"][:] = NO_MAX_HOLD_S
    columns["position_size_pct"][:] = 1.0
    columns["timeframe"][:] = ONE_MINUTE.timeframes.index("1m")
    return VariantSet(ONE_MINUTE, columns)


def bar_columns(bars: dict[str, np.ndarray]) -> tuple[np.ndarray, ...]:
    """``(ts, open, high, low, close, volume)`` for ``Engine.on_candles``."""
    return tuple(bars[name] for name in BAR_COLUMNS)


def warm_up() -> None:
    """Load (or compile) the variant pass: its first call in a process does that."""
    engine = Engine(GRID_CONFIG, rsi_grid_variants(rsi_grid_params(1)), keep_records=False)
    engine.on_candles(*(column[:3] for column in bar_columns(bars_100k(3))))


def trade_counts(engine: Engine, metrics: np.ndarray, trades: np.ndarray | None) -> dict:
    """Trades as vectorbt counts them (entries, including positions still open), and with
    the records: exits by reason and exits on the entry bar."""
    per_variant = metrics["trades"] + (metrics["side"] != 0)
    counts: dict[str, object] = {
        "trades": int(per_variant.sum()),
        "closed_trades": int(engine.trades_closed),
        "open_trades": int((metrics["side"] != 0).sum()),
        "trades_per_variant": {
            "min": int(per_variant.min()),
            "median": float(np.median(per_variant)),
            "max": int(per_variant.max()),
        },
    }
    if trades is not None:
        reasons, n = np.unique(trades["reason"], return_counts=True)
        counts["exits_by_reason"] = {
            REASON_NAMES[int(r)]: int(k) for r, k in zip(reasons, n, strict=True)
        }
        # In candle mode an entry fills at a bar's open and carries that bar's ts; an exit
        # on the same bar carries it too. vectorbt never exits on the entry bar.
        same_bar = trades["exit_ts"] == trades["entry_ts"]
        counts["exits_on_entry_bar"] = int(same_bar.sum())
    return counts


def _rss_now_mb() -> float:
    # As vectorbt_baseline (not imported from there: that would import vectorbt).
    with open("/proc/self/statm") as handle:
        pages = int(handle.read().split()[1])
    return pages * resource.getpagesize() / 2**20


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def _reset_peak() -> bool:
    """Reset the kernel's resident-set high-water mark (``VmHWM``; Linux: writing 5 to
    ``/proc/self/clear_refs``). ``ru_maxrss`` cannot be reset, and liveopt's run peaks
    lower than reading the bars did before it, so it would report that earlier peak."""
    try:
        with open("/proc/self/clear_refs", "w") as handle:
            handle.write("5")
    except OSError:
        return False
    return True


def _hwm_mb() -> float:
    with open("/proc/self/status") as handle:
        for line in handle:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024  # kB
    raise RuntimeError("no VmHWM in /proc/self/status")


def run_liveopt_rsi_grid(
    bars: dict[str, np.ndarray], grid: RsiGrid, *, keep_records: bool = False,
    drain_every: int | None = None,
) -> dict[str, object]:
    """Time the grid in candle mode; returns seconds, trades and memory (module docstring).

    Memory, as for vectorbt, is only meaningful in a fresh process (``ru_maxrss`` is the
    process's high-water mark): use the CLI or ``run_in_subprocess``.
    """
    variants = rsi_grid_variants(grid)
    columns = bar_columns(bars)
    warm_up()
    gc.collect()
    rss_before = _rss_now_mb()
    peak_before = _peak_rss_mb()
    reset = _reset_peak()
    start, cpu_start = time.perf_counter(), time.process_time()
    engine = Engine(GRID_CONFIG, variants, keep_records=keep_records or bool(drain_every))
    streamed = 0  # closed-trade records drained chunk by chunk
    if drain_every:
        for first_bar in range(0, len(columns[0]), drain_every):
            engine.on_candles(*(c[first_bar:first_bar + drain_every] for c in columns))
            streamed += len(engine.drain_fills().trades)
    else:
        engine.on_candles(*columns)
    metrics = engine.metrics()
    trades = engine.drain_fills().trades if keep_records else None
    cpu_seconds = time.process_time() - cpu_start
    seconds = time.perf_counter() - start
    # With the high-water mark reset, VmHWM is the run's own peak; otherwise ru_maxrss,
    # which is only the run's if nothing before it peaked higher (rss_peak_before_run_mb).
    peak = _hwm_mb() if reset else _peak_rss_mb()
    n_bars, n_variants = len(columns[0]), len(variants)
    return {
        "bars": n_bars,
        "variants": n_variants,
        "keep_records": keep_records,
        "drain_every": drain_every,
        "streamed_trades": streamed,
        "sim_seconds": seconds,
        "sim_cpu_seconds": cpu_seconds,
        "ns_per_variant_bar": seconds / (n_bars * n_variants) * 1e9,
        **trade_counts(engine, metrics, trades),
        "rss_before_run_mb": round(rss_before, 1),
        "rss_peak_before_run_mb": round(peak_before, 1),
        "rss_peak_mb": round(peak, 1),
        "rss_run_delta_mb": round(peak - rss_before, 1),
        "peak_reset": reset,
    }


def measure_construction(n_variants: int, n_ticks: int) -> dict[str, object]:
    """RSS growth of ``Engine(EngineConfig(), <n random 1m variants>)``, then after
    ``n_ticks`` ticks (fresh process only)."""
    variants = generate_variants(n_variants, "random", 1, ONE_MINUTE)
    tick_columns = ticks(max(n_ticks, 8))
    warm = Engine(EngineConfig(), variants.take([0]), keep_records=False)
    warm.on_trades(*(tick_columns[k][:8] for k in ("ts", "price", "size", "side")))
    del warm
    gc.collect()
    rss_before = _rss_now_mb()
    engine = Engine(EngineConfig(), variants, keep_records=False)
    rss_built = _rss_now_mb()
    engine.on_trades(*(tick_columns[k][:n_ticks] for k in ("ts", "price", "size", "side")))
    rss_fed = _rss_now_mb()
    return {
        "variants": n_variants,
        "ticks": n_ticks,
        "rss_before_mb": round(rss_before, 2),
        "construct_delta_mb": round(rss_built - rss_before, 2),
        "after_ticks_delta_mb": round(rss_fed - rss_before, 2),
        "construct_bytes_per_variant": (rss_built - rss_before) * 2**20 / n_variants,
        "after_ticks_bytes_per_variant": (rss_fed - rss_before) * 2**20 / n_variants,
        "rss_peak_mb": round(_peak_rss_mb(), 1),
    }


def run_in_subprocess(*args: str, timeout: float = 900.0) -> dict[str, object]:
    """Run the CLI with ``args`` in a fresh interpreter and return its JSON."""
    completed = subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), *args],
        capture_output=True, text=True, timeout=timeout, check=True,
    )
    return json.loads(completed.stdout)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    grid = commands.add_parser("rsi-grid", help="the RSI grid in candle mode")
    grid.add_argument("--bars", type=int, default=100_000)
    grid.add_argument("--variants", type=int, default=1000)
    grid.add_argument("--keep-records", action="store_true",
                      help="keep fills and closed trades (default: count them only)")
    grid.add_argument("--drain-every", type=int, default=None, metavar="BARS",
                      help="stream the records out: drain them after every BARS bars")
    construct = commands.add_parser("construct", help="RSS growth of constructing an Engine")
    construct.add_argument("--variants", type=int, default=100_000)
    construct.add_argument("--ticks", type=int, default=2_000)
    args = parser.parse_args(argv)

    rss_imported = _rss_now_mb()
    if args.command == "rsi-grid":
        result = run_liveopt_rsi_grid(
            bars_100k(args.bars), rsi_grid_params(args.variants),
            keep_records=args.keep_records, drain_every=args.drain_every,
        )
    else:
        result = measure_construction(args.variants, args.ticks)
    result["rss_after_import_mb"] = round(rss_imported, 1)
    json.dump(result, sys.stdout, indent=2)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
