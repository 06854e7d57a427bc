"""The competitor: the RSI grid of ``workloads.rsi_grid_params`` run in vectorbt.

One ``vectorbt.Portfolio.from_signals`` call simulates every variant as one column over
the same bars: long only; enter when Wilder's RSI(14) at a bar's close is below the
variant's oversold level, exit when it is above its overbought level; a stop-loss and a
take-profit at ``roi / leverage / 100`` below and above the entry fill price; signals
fill at the NEXT bar's open (signals shifted by one bar, ``price=open``); fees 0.06 % of
notional per side; no slippage.

Run it in a fresh process, which is what makes its memory figure honest::

    .venv/bin/python benchmarks/vectorbt_baseline.py                  # 1000 x 100k, JSON
    .venv/bin/python benchmarks/vectorbt_baseline.py --bars 20000 --variants 100

From Python, ``run_vectorbt_rsi_grid(bars, grid)`` times it in the calling process and
``run_in_subprocess(...)`` runs the CLI and returns its JSON.

vectorbt's conventions (read from vectorbt 1.2.0's source, ``portfolio/base.py``
``from_signals``, ``portfolio/nb.py`` ``simulate_from_signals_nb`` and
``get_stop_price_nb``, ``portfolio/enums.py``, ``_settings.py``; each checked on a
hand-made 6-bar example):

- One order per column and bar. At each bar, stops are resolved first, from the position
  held at the start of the bar; user signals are read only if no stop fired.
- **Stops are not checked on the entry bar.** They are armed after the entry order fills,
  and the first check is on the next bar (its open, low and high). A position entered at
  bar ``i``'s open therefore ignores whatever bar ``i``'s range does after the open.
- **Stop reference price.** ``sl_stop`` and ``tp_stop`` are fractions of a reference
  price; ``stop_entry_price`` picks it and vectorbt's default is ``"close"`` (the close of
  the entry bar), not the fill. We pass ``"fillprice"`` (the entry's fill price; with no
  slippage, the open).
- **Stop fill price** (``stop_exit_price="stoplimit"``, the default): a bar that opens
  through the stop fills at the open; otherwise a bar whose ``[low, high]`` contains the
  stop fills exactly at the stop price; fees apply, slippage does not.
- **Stop-loss before take-profit.** The stop-loss is tested first; the take-profit only
  if the stop-loss did not fire, so a bar that reaches both counts the stop-loss.
- **A stop beats a signal in the same bar, even when the signal came first.** Our exit
  signals fill at the bar's open, yet if the same bar later reaches a stop, the stop
  fills (at the stop price) and the signal is dropped: a stop-loss then exits below the
  open it would really have left at, a take-profit above it. vectorbt's docs warn of this
  (``StopExitPrice``: execute ordinary signals at the close when using stops); we keep
  ``price=open`` because next-open fills are the rule being compared.
- After a stop exit at bar ``j`` an entry signal at ``j`` is ignored (one order per bar);
  the earliest re-entry is at ``j + 1``. Entry signals while in a position and exit
  signals while flat are ignored (``accumulate=False``).
- Sizing: ``size=inf`` buys with all cash, reduced so the fee is covered; there is no
  leverage or liquidation in ``from_signals``. At 10x the largest stop-loss here (80 %
  ROI, 8 % of price) is above the liquidation price (about 10 % down), so the trade list
  does not depend on leverage; only PnL scales.
- A position still open on the last bar stays open (an open trade in ``pf.trades``).
- Memory: the close is broadcast to a writeable ``bars x variants`` float64 array, the
  call sequence to a ``bars x variants`` int64 array, and the order-record buffer is
  allocated for ``bars x variants`` records (``max_orders=None``), of which only the used
  part is touched. We keep these defaults: they are what a user of ``from_signals`` gets.
- RSI: ``vbt.RSI`` defaults to a simple moving average of gains and losses (``ewm=False``;
  ``ewm=True`` is an EMA with span 14, not Wilder's 1/14), so the RSI here is TA-Lib's
  Wilder RSI, the one liveopt's indicator bank reproduces. It is NaN for the first 14
  bars, which therefore give no signal.
- Engine: vectorbt 1.2 can dispatch to the optional ``vectorbt-rust`` package; the
  ``bench`` extra installs only ``vectorbt``, so this uses (and requests) ``"numba"``.
"""

from __future__ import annotations

import argparse
import gc
import json
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import talib
import vectorbt as vbt

# A sibling module: on sys.path both when this file runs as a script and under pytest.
from workloads import RsiGrid, bars_100k, rsi_grid_params

WARMUP_BARS = 2_000
ENGINE = "numba"


def _rss_now_mb() -> float:
    # Current resident set (the high-water mark of ``ru_maxrss`` cannot go down, so it is
    # no baseline once something has been freed).
    with open("/proc/self/statm") as handle:
        pages = int(handle.read().split()[1])
    return pages * resource.getpagesize() / 2**20


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def build_signals(bars: dict[str, np.ndarray], grid: RsiGrid) -> tuple[np.ndarray, np.ndarray]:
    """Entry and exit signals, ``bars x variants`` bool, already shifted to the fill bar.

    Row ``i`` holds the decision taken at bar ``i - 1``'s close, so with ``price=open``
    it fills at bar ``i``'s open; row 0 is all False and the last bar's decision is lost.
    """
    rsi = talib.RSI(np.asarray(bars["close"], dtype=np.float64), timeperiod=grid.period)
    entries = np.zeros((len(rsi), len(grid)), dtype=np.bool_)
    exits = np.zeros_like(entries)
    # NaN compares False, so the warm-up bars give no signal.
    np.less(rsi[:-1, None], grid.oversold[None, :], out=entries[1:])
    np.greater(rsi[:-1, None], grid.overbought[None, :], out=exits[1:])
    return entries, exits


def _simulate(bars: dict[str, np.ndarray], grid: RsiGrid, entries, exits, engine: str):
    # Prices as Series: vectorbt takes a Series as one column, while it broadcasts a 1-D
    # array the numpy way, along the columns, and rejects it.
    index = pd.DatetimeIndex(np.asarray(bars["ts"], dtype="datetime64[ns]"))
    open_, high, low, close = (
        pd.Series(bars[name], index=index) for name in ("open", "high", "low", "close")
    )
    return vbt.Portfolio.from_signals(
        close,
        entries,
        exits,
        direction="longonly",
        price=open_,
        open=open_,
        high=high,
        low=low,
        size=np.inf,
        fees=grid.fee,
        slippage=0.0,
        # Explicitly (1, variants): one stop per column.
        sl_stop=grid.sl_frac[None, :],
        tp_stop=grid.tp_frac[None, :],
        stop_entry_price="fillprice",
        stop_exit_price="stoplimit",
        accumulate=False,
        freq="1min",
        engine=engine,
    )


def _trade_counts(pf) -> dict[str, object]:
    # Long only without accumulation: every buy opens a trade and every sell closes one.
    records = pf.order_records
    buys = np.bincount(records["col"][records["side"] == 0], minlength=pf.wrapper.shape_2d[1])
    sells = int((records["side"] == 1).sum())
    return {
        "trades": int(buys.sum()),
        "closed_trades": sells,
        "open_trades": int(buys.sum()) - sells,
        "trades_per_variant": {
            "min": int(buys.min()),
            "median": float(np.median(buys)),
            "max": int(buys.max()),
        },
    }


def run_vectorbt_rsi_grid(
    bars: dict[str, np.ndarray],
    grid: RsiGrid,
    *,
    repeats: int = 1,
    engine: str = ENGINE,
) -> dict[str, object]:
    """Time ``from_signals`` for the whole grid; returns seconds, trades and memory.

    Compiles first on the first ``WARMUP_BARS`` bars with the same grid (same types, so
    the timed runs reuse the compiled kernels). Signal preparation (RSI and the two
    comparisons) is timed separately, as ``prep_seconds``; ``sim_seconds`` is the best
    of ``repeats`` ``from_signals`` calls (wall clock), each including vectorbt's
    broadcasting and record allocation, and ``sim_cpu_seconds`` the best CPU time.

    Memory is that of the timed runs alone: ``rss_run_delta_mb`` is the peak resident set
    during them minus the resident set just before the first, which holds everything
    else (interpreter, vectorbt, compiled kernels, bars and the prepared signals). The
    peak is ``ru_maxrss``, the kernel's own high-water mark of resident pages: it sees a
    peak however briefly it lasts, and it counts pages actually touched. tracemalloc
    would count bytes requested instead, and vectorbt requests an order-record buffer of
    ``bars x variants x 56`` bytes (5.6 GB at 1000 x 100k) of which it touches only the
    records it writes (tens of MB). Being a high-water mark of the whole process, it is
    only meaningful in a fresh process (the CLI, ``run_in_subprocess``), and only if
    nothing before the run peaked higher than the run does (``rss_peak_before_run_mb``
    tells).
    """
    n_bars, n_variants = len(bars["close"]), len(grid)
    head = {name: array[:WARMUP_BARS] for name, array in bars.items()}
    _simulate(head, grid, *build_signals(head, grid), engine)

    start = time.perf_counter()
    entries, exits = build_signals(bars, grid)
    prep_seconds = time.perf_counter() - start

    gc.collect()
    rss_before = _rss_now_mb()
    peak_before = _peak_rss_mb()
    times = []
    cpu_times = []
    counts: dict[str, object] = {}
    for _ in range(repeats):
        start = time.perf_counter()
        cpu_start = time.process_time()
        pf = _simulate(bars, grid, entries, exits, engine)
        cpu_times.append(time.process_time() - cpu_start)
        times.append(time.perf_counter() - start)
        counts = _trade_counts(pf)
        del pf
        gc.collect()
    peak = _peak_rss_mb()
    sim_seconds = min(times)
    return {
        "vectorbt": vbt.__version__,
        "engine": engine,
        "bars": n_bars,
        "variants": n_variants,
        "prep_seconds": prep_seconds,
        "sim_seconds": sim_seconds,
        "sim_seconds_median": statistics.median(times),
        "sim_seconds_all": times,
        # CPU seconds of this (single-threaded) process: on a shared, oversubscribed
        # machine, close to what the wall time would be without the neighbours.
        "sim_cpu_seconds": min(cpu_times),
        "ns_per_variant_bar": sim_seconds / (n_bars * n_variants) * 1e9,
        **counts,
        "rss_before_run_mb": round(rss_before, 1),
        "rss_peak_before_run_mb": round(peak_before, 1),
        "rss_peak_mb": round(peak, 1),
        "rss_run_delta_mb": round(peak - rss_before, 1),
    }


def run_in_subprocess(
    n_bars: int = 100_000, n_variants: int = 1000, repeats: int = 1, timeout: float = 1800.0
) -> dict[str, object]:
    """Run the CLI in a fresh interpreter and return its JSON (including memory)."""
    completed = subprocess.run(
        [
            sys.executable, str(Path(__file__).resolve()), "--bars", str(n_bars),
            "--variants", str(n_variants), "--repeats", str(repeats),
        ],
        capture_output=True, text=True, timeout=timeout, check=True,
    )
    return json.loads(completed.stdout)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bars", type=int, default=100_000)
    parser.add_argument("--variants", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=1, help="timed runs; best is reported")
    parser.add_argument("--engine", default=ENGINE, choices=("numba", "rust", "auto"))
    args = parser.parse_args(argv)

    rss_imported = _rss_now_mb()
    result = run_vectorbt_rsi_grid(
        bars_100k(args.bars), rsi_grid_params(args.variants), repeats=args.repeats,
        engine=args.engine,
    )
    result["rss_after_import_mb"] = round(rss_imported, 1)
    json.dump(result, sys.stdout, indent=2)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
