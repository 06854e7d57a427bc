"""The floor: the least a compiled loop can spend per variant and tick on paper positions.

Every tick, every open variant needs at least: compare the price with its stop and its
target, and mark its equity. This module does only that, in hand-written Numba, so the
engine's per-variant-tick cost can be read against it (``performance-anchors.md`` §4
puts a full variant state machine at about 1.5 ns per variant-tick on a 2-core VM).

State is struct-of-arrays, one entry per variant: ``side`` int8 (+1 long, -1 short, 0
flat), ``entry``, ``stop``, ``target`` float64 prices, ``worst`` float64 (the lowest
mark so far, ``side * (price - entry)`` per unit: the "equity" a drawdown needs; keeping
the minimum rather than the last mark stops the compiler from skipping all but the last
tick) and ``pnl`` float64 (written only on exit).

Two loop orders:

``blocked`` (the floor)
    Ticks in blocks of ``BLOCK``; for each variant, its state in registers, a pass over
    the block that counts the ticks beyond stop or target and takes the running minimum
    of the mark: no branch and no store per tick. Only a variant whose block contains a
    hit is scanned again, tick by tick, to exit at the first crossing.
``tick_major``
    For each tick, for each variant: the obvious loop, loading and storing state for
    every variant-tick. For comparison.

The measurement puts stops and targets 45-60 % away from the first price, beyond
anything the 100k-bar path reaches (-41 % / +4 %), so no variant exits: this is the
cost of checking, not of acting (a real engine also pays for exits, entries, signals).
Both kernels are first checked to agree (worst marks and exits) on a run where exits
happen.

Run ``.venv/bin/python benchmarks/floor_kernel.py`` for a table over N.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from numba import njit

# A sibling module: on sys.path both when this file runs as a script and under pytest.
from workloads import ticks

BLOCK = 512  # ticks per block: 4 KiB of prices, well inside L1 next to a variant's state
_JIT = {"cache": True, "boundscheck": False, "error_model": "numpy"}


@njit(**_JIT)
def _exit_scan(prices, t0, t1, v, lo, hi, s, e, w, side, pnl):
    # The rare path: find the first crossing in the block, mark up to it, and exit there.
    for t in range(t0, t1):
        p = prices[t]
        w = min(w, s * (p - e))
        if p <= lo or p >= hi:
            side[v] = 0
            pnl[v] = s * (p - e)
            break
    return w


@njit(**_JIT, fastmath={"nnan", "ninf", "nsz", "reassoc"})
def floor_blocked_nb(prices, side, entry, stop, target, worst, pnl, block):
    """Variant-major over blocks of ticks; returns the number of exits.

    Measured choices (numba 0.68, AVX2 EPYC): iterating over the block slice rather than
    indexing ``prices[t]`` with ``t`` from ``range(t0, t1)`` spares a negative-index
    wrap-around select per tick; counting hits in an int is faster than OR-ing a bool.
    LLVM still does not vectorise the ``min`` reduction (the assembly has scalar
    ``vminsd``, no ``vminpd``, with or without fast-math flags), so the loop runs at the
    latency of that chain: about 2-3 cycles per variant-tick.
    """
    n_ticks = len(prices)
    exits = 0
    for t0 in range(0, n_ticks, block):
        t1 = min(t0 + block, n_ticks)
        prices_block = prices[t0:t1]
        for v in range(len(side)):
            if side[v] == 0:
                continue
            s = np.float64(side[v])
            e = entry[v]
            # A long's stop is below and its target above; a short's the other way
            # round, so min/max make the check the same for both.
            lo = min(stop[v], target[v])
            hi = max(stop[v], target[v])
            w = worst[v]
            hits = 0
            for p in prices_block:
                hits += (p <= lo) | (p >= hi)
                w = min(w, s * (p - e))
            if hits:
                w = _exit_scan(prices, t0, t1, v, lo, hi, s, e, worst[v], side, pnl)
                exits += 1
            worst[v] = w
    return exits


@njit(**_JIT)
def floor_tick_major_nb(prices, side, entry, stop, target, worst, pnl):
    """For each tick, for each variant; returns the number of exits."""
    exits = 0
    for t in range(len(prices)):
        p = prices[t]
        for v in range(len(side)):
            if side[v] == 0:
                continue
            s = np.float64(side[v])
            mark = s * (p - entry[v])
            if mark < worst[v]:
                worst[v] = mark
            if s * (p - stop[v]) <= 0.0 or s * (p - target[v]) >= 0.0:
                side[v] = 0
                pnl[v] = mark
                exits += 1
    return exits


def make_state(n_variants: int, price: float, lo: float, hi: float, seed: int = 7) -> dict:
    """Half long, half short (alternating), entered at ``price``, stop and target each
    ``lo..hi`` (fractions of ``price``, drawn at random) away from it."""
    rng = np.random.default_rng(seed)
    side = np.where(np.arange(n_variants) % 2 == 0, 1, -1).astype(np.int8)
    stop_dist, target_dist = rng.uniform(lo, hi, (2, n_variants))
    return {
        "side": side,
        "entry": np.full(n_variants, price),
        "stop": price * (1.0 - side * stop_dist),
        "target": price * (1.0 + side * target_dist),
        "worst": np.full(n_variants, np.inf),
        "pnl": np.zeros(n_variants),
    }


def _run(kernel: str, prices: np.ndarray, state: dict) -> int:
    args = (prices, state["side"], state["entry"], state["stop"], state["target"],
            state["worst"], state["pnl"])
    if kernel == "blocked":
        return floor_blocked_nb(*args, BLOCK)
    if kernel == "tick_major":
        return floor_tick_major_nb(*args)
    raise ValueError(f"unknown kernel {kernel!r}")


def check_kernels_agree(n_variants: int = 1000, n_ticks: int = 50_000) -> int:
    """Both kernels give the same marks and exits where exits happen (stops 0.1-1 %
    away); returns the number of exits. Also compiles both."""
    prices = ticks(n_ticks)["price"]
    states = [make_state(n_variants, prices[0], 0.001, 0.01) for _ in range(2)]
    exits = [_run(kernel, prices, state) for kernel, state in
             zip(("blocked", "tick_major"), states, strict=True)]
    assert exits[0] == exits[1] > 0, exits
    for name in ("side", "worst", "pnl"):
        np.testing.assert_array_equal(states[0][name], states[1][name], err_msg=name)
    return exits[0]


def measure(
    n_variants: int, n_ticks: int, kernel: str = "blocked", repeats: int = 7
) -> dict[str, float]:
    """Best wall and thread-CPU ns per variant-tick over ``repeats`` runs, each on fresh
    state (the state is rebuilt outside the timed region)."""
    prices = ticks(n_ticks)["price"]
    wall, cpu = [], []
    _run(kernel, prices[:BLOCK], make_state(n_variants, prices[0], 0.45, 0.60))  # compile
    for _ in range(repeats):
        state = make_state(n_variants, prices[0], 0.45, 0.60)
        start, cpu_start = time.perf_counter_ns(), time.thread_time_ns()
        exits = _run(kernel, prices, state)
        cpu.append(time.thread_time_ns() - cpu_start)
        wall.append(time.perf_counter_ns() - start)
        assert exits == 0, exits
    work = n_variants * n_ticks
    return {"wall_ns": min(wall) / work, "cpu_ns": min(cpu) / work,
            "median_wall_ns": float(np.median(wall)) / work}


def floor_ns_per_variant_tick(n_variants: int = 1000, n_ticks: int = 200_000) -> float:
    """The floor: best ns per variant-tick of the blocked kernel (after compiling)."""
    return measure(n_variants, n_ticks, "blocked")["wall_ns"]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work", type=float, default=2e8, help="variant-ticks per run")
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args(argv)

    print(f"kernels agree ({check_kernels_agree()} exits in the check run)")
    print(f"{'N':>9} {'ticks':>9} {'kernel':>11} {'best ns':>8} {'median':>8} {'cpu ns':>8}")
    for n_variants in (10, 1_000, 10_000, 100_000):
        n_ticks = min(1_000_000, int(args.work // n_variants))
        for kernel in ("blocked", "tick_major"):
            r = measure(n_variants, n_ticks, kernel, args.repeats)
            print(f"{n_variants:>9,} {n_ticks:>9,} {kernel:>11} {r['wall_ns']:>8.3f} "
                  f"{r['median_wall_ns']:>8.3f} {r['cpu_ns']:>8.3f}")


if __name__ == "__main__":
    main()
