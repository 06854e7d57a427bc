"""Where the indicator bank's time goes: the marginal cost of each default indicator.

For each of the twelve default indicators, time the bank without it and report how much
the full bank costs more. Runs the bank's own compiled replay over the 45,031 real FTX
1m candles, alternating the variants and keeping the fastest of ``ROUNDS`` passes (the
machine is a shared 2-core VM; minima are the stable statistic there).

    .venv/bin/python benchmarks/bank_marginals.py
"""

from __future__ import annotations

import time
from pathlib import Path

import liveopt.indicators as li
from liveopt.data import read_candles

ROUNDS = 15
FTX = (
    Path(__file__).resolve().parents[1].parent
    / "shared/data/nautilus_ftx_btcperp_1m/btc-perp-20211231-20220201_1m.csv"
)


def replay_ns_per_candle(specs, candles) -> float:
    bank = li.IndicatorBank(specs)
    start = time.perf_counter_ns()
    bank.replay("1m", candles.high, candles.low, candles.close, candles.volume)
    return (time.perf_counter_ns() - start) / len(candles)


def main() -> None:
    candles = read_candles(FTX)
    defaults = list(li.DEFAULT_INDICATORS)
    variants = {"all twelve": defaults, "EMA(50) alone": [defaults[4]]}
    for i, spec in enumerate(defaults):
        variants[f"without {spec.label()}"] = defaults[:i] + defaults[i + 1 :]
    best = dict.fromkeys(variants, float("inf"))
    for _ in range(ROUNDS):
        for name, specs in variants.items():
            best[name] = min(best[name], replay_ns_per_candle(specs, candles))
    full = best["all twelve"]
    print(f"{'bank':<40} {'ns/candle':>10} {'marginal':>9}")
    for name, ns in best.items():
        marginal = "" if name == "all twelve" else f"{full - ns:9.1f}"
        print(f"{name:<40} {ns:10.1f} {marginal}")


if __name__ == "__main__":
    main()
