"""Seeded simulations of the promotion gate: false promotions under the null, and power.

Used by ``test_gate_simulations.py`` (few runs) and run as a module for the full tables in
``docs/statistics.md``::

    .venv/bin/python -m tests.unit.scoring.simulate --runs 1000

Every run draws fresh per-trade net returns from a seeded generator
(``default_rng([seed, run])``), so a table is reproducible from its command. Moments are
computed with numpy over the whole (variants x trades) matrix and handed to the gates'
moments entry points, as the engine's online moments would be.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Iterator

import msgspec
import numpy as np
from scipy import stats as sps

from liveopt.scoring import PromotionGate, SequentialGate

#: Mean and standard deviation of every simulated per-trade net return (0.1 % and 1 %:
#: a skill-less variant still has a positive Sharpe ratio, so the Sharpe and PnL checks
#: rarely bind and the statistical test is what is measured).
MU = 0.001
SIGMA = 0.01
DISTRIBUTIONS: tuple[str, ...] = ("normal", "student_t3", "lognormal")


def draw(rng: np.random.Generator, dist: str, shape: tuple[int, ...]) -> np.ndarray:
    """Returns with mean :data:`MU` and sd :data:`SIGMA`: normal, Student t with 3 degrees
    of freedom (heavy tails, infinite kurtosis), or a shifted lognormal with log-sd 1
    (skewness 6.2)."""
    if dist == "normal":
        z = rng.standard_normal(shape)
    elif dist == "student_t3":
        z = rng.standard_t(3, shape) / np.sqrt(3.0)
    elif dist == "lognormal":
        s2 = 1.0
        z = (np.exp(rng.standard_normal(shape)) - np.exp(s2 / 2)) / np.sqrt(
            (np.exp(s2) - 1.0) * np.exp(s2)
        )
    else:
        raise ValueError(f"dist: {dist!r} is not one of {', '.join(DISTRIBUTIONS)}")
    return MU + SIGMA * z


def _from_power_sums(n, s1, s2, s3, s4, shift):
    # Central moments from power sums of (x - shift), per row; shift keeps them well
    # conditioned (it is the distribution's mean, so the sums are of centred values).
    mean = s1 / n
    m2 = s2 - n * mean**2
    m3 = s3 - 3 * mean * s2 + 2 * n * mean**3
    m4 = s4 - 4 * mean * s3 + 6 * mean**2 * s2 - 3 * n * mean**4
    with np.errstate(invalid="ignore", divide="ignore"):
        return {
            "trades": np.full(mean.shape, n, dtype=np.int64),
            "mean_return": mean + shift,
            "var_return": m2 / (n - 1),
            "skewness": np.sqrt(n) * m3 / m2**1.5,
            "kurtosis": n * m4 / m2**2,
            "net_pnl": s1 + n * shift,
        }


def prefix_moments(x: np.ndarray, counts: np.ndarray) -> Iterator[dict[str, np.ndarray]]:
    """Moments of the first ``n`` returns of every row, for each ``n`` in ``counts``.

    Parameters
    ----------
    x : ndarray, shape (rows, trades)
        Returns, one row per variant.
    counts : ndarray of int
        Increasing trade counts (<= ``x.shape[1]``).

    Yields
    ------
    dict of str to ndarray
        The gate's moment arguments (``trades``, ``mean_return``, ``var_return``,
        ``skewness``, ``kurtosis``, ``net_pnl``; net PnL is the sum of the returns).
    """
    y = x - MU
    sums = np.zeros((4, x.shape[0]))
    start = 0
    for n in counts:
        block = y[:, start:n]
        b2 = block * block
        sums[0] += block.sum(axis=1)
        sums[1] += b2.sum(axis=1)
        sums[2] += np.einsum("ij,ij->i", b2, block)
        sums[3] += np.einsum("ij,ij->i", b2, b2)
        start = n
        yield _from_power_sums(int(n), *sums, MU)


def gate_arguments(variants: dict[str, np.ndarray], baseline: dict[str, np.ndarray]) -> dict:
    """Keyword arguments of ``evaluate_moments`` from two moment dicts (baseline: one row)."""
    out = dict(variants)
    for name in ("trades", "mean_return", "var_return", "net_pnl"):
        out[f"baseline_{name}"] = baseline[name][0]
    return out


class RunResult(msgspec.Struct, frozen=True):
    """Promotions of one seeded run, per gate: counts, and each variant's flag for the few
    planted ones (power runs)."""

    promoted: dict[str, int]
    planted: dict[str, bool]
    promoted_at: dict[str, int]


FIXED_GATES = {
    "fixed/holm": PromotionGate(correction="holm"),
    "fixed/bh": PromotionGate(correction="bh"),
    "fixed/none": PromotionGate(correction="none"),
}
#: Sequential gates: (correction, spending); "naive-looks/holm" is the fixed holm gate
#: re-applied at every look with one-way promotion (what not to do).
SEQUENTIAL_GATES = {
    "sequential/holm": ("holm", "obrien_fleming"),
    "sequential/bh": ("bh", "obrien_fleming"),
    "sequential/holm-pocock": ("holm", "pocock"),
    "naive-looks/holm": None,
}
ALL_GATES: tuple[str, ...] = (*FIXED_GATES, *SEQUENTIAL_GATES)


def run_once(seed: int, run: int, *, dist: str, variants: int, trades: int,
             planted_shift_sd: float | None, look_every: int,
             gates: tuple[str, ...] = ALL_GATES) -> RunResult:
    """One run: ``variants`` variants and a baseline, ``trades`` trades each.

    With ``planted_shift_sd``, variant 0's returns are shifted up by that many standard
    deviations (the planted better variant); all others, and the baseline, are draws from
    the same distribution. ``gates`` names the gates to run (:data:`ALL_GATES`): the fixed
    gate once at the end; the sequential ones at looks every ``look_every`` trades from
    the gate's 50th.
    """
    rng = np.random.default_rng([seed, run])
    x = draw(rng, dist, (variants, trades))
    base = draw(rng, dist, (1, trades))
    if planted_shift_sd is not None:
        x[0] += planted_shift_sd * SIGMA
    promoted: dict[str, int] = {}
    planted: dict[str, bool] = {}
    promoted_at: dict[str, int] = {}
    counts = np.array([trades])
    final = gate_arguments(next(prefix_moments(x, counts)), next(prefix_moments(base, counts)))
    for name in (g for g in gates if g in FIXED_GATES):
        flags = FIXED_GATES[name].moments_table(**final)["promoted"]
        promoted[name] = int(flags.sum())
        planted[name] = bool(flags[0])
    seq = {}
    for name in (g for g in gates if SEQUENTIAL_GATES.get(g)):
        correction, spending = SEQUENTIAL_GATES[name]
        seq[name] = SequentialGate(PromotionGate(correction=correction), horizon_trades=trades,
                                   look_every=look_every, spending=spending)
    naive = "naive-looks/holm" in gates
    if not seq and not naive:
        return RunResult(promoted=promoted, planted=planted, promoted_at=promoted_at)
    schedule = SequentialGate(PromotionGate(), horizon_trades=trades,
                              look_every=look_every).schedule
    naive_flags = np.zeros(variants, dtype=np.bool_)
    naive_at = np.full(variants, -1)
    for n, xm, bm in zip(schedule, prefix_moments(x, schedule),
                         prefix_moments(base, schedule), strict=True):
        args = gate_arguments(xm, bm)
        for gate in seq.values():
            gate.look_table(**args)
        if naive:
            fresh = FIXED_GATES["fixed/holm"].moments_table(**args)["promoted"] & ~naive_flags
            naive_at[fresh] = n
            naive_flags |= fresh
    for name, gate in seq.items():
        promoted[name] = int(gate.promoted.sum())
        planted[name] = bool(gate.promoted[0])
        promoted_at[name] = int(gate.promoted_at[0])
    if naive:
        promoted["naive-looks/holm"] = int(naive_flags.sum())
        planted["naive-looks/holm"] = bool(naive_flags[0])
        promoted_at["naive-looks/holm"] = int(naive_at[0])
    return RunResult(promoted=promoted, planted=planted, promoted_at=promoted_at)


def simulate(seed: int, runs: int, **kwargs) -> list[RunResult]:
    """``runs`` seeded runs of :func:`run_once`."""
    return [run_once(seed, r, **kwargs) for r in range(runs)]


def _separate_bootstrap_p(x, y, rng, resamples):
    # The design the gate does NOT use: each sample resampled from itself (centred), as
    # in Efron and Tibshirani (1993, 16.4). Kept here to measure why.
    n, n_b = x.size, y.size
    t_obs = (x.mean() - y.mean()) / np.sqrt(x.var(ddof=1) / n + y.var(ddof=1) / n_b)
    xb = (x - x.mean())[rng.integers(0, n, (resamples, n))]
    yb = (y - y.mean())[rng.integers(0, n_b, (resamples, n_b))]
    t_star = (xb.mean(1) - yb.mean(1)) / np.sqrt(xb.var(1, ddof=1) / n
                                                 + yb.var(1, ddof=1) / n_b)
    return (1.0 + np.count_nonzero(~(t_star < t_obs))) / (resamples + 1.0)


def bootstrap_calibration(seed: int, runs: int, *, dist: str, n: int, n_b: int,
                          resamples: int = 499) -> dict[str, int]:
    """Rejections at 5 % of ``runs`` independent equal-mean pairs (variant of ``n`` trades,
    baseline of ``n_b``, same distribution): the gate's Welch test, its bootstrap, and the
    separate-sample bootstrap it does not use."""
    rng = np.random.default_rng([seed, n, n_b])
    welch = PromotionGate(min_trades=2, correction="none")
    boot = PromotionGate(min_trades=2, correction="none", test="bootstrap",
                         bootstrap_resamples=resamples)
    out = {"welch": 0, "bootstrap (pooled, the gate's)": 0, "bootstrap (separate samples)": 0}
    for r in range(runs):
        x, y = draw(rng, dist, (n,)), draw(rng, dist, (n_b,))
        out["welch"] += int(welch.table([x], y)["p_value"][0] <= 0.05)
        boot_r = msgspec.structs.replace(boot, seed=seed + r)
        out["bootstrap (pooled, the gate's)"] += int(boot_r.table([x], y)["p_value"][0] <= 0.05)
        out["bootstrap (separate samples)"] += int(
            _separate_bootstrap_p(x, y, rng, resamples) <= 0.05)
    return out


def share_ci(k: int, n: int) -> tuple[float, float, float]:
    """Share ``k / n`` with its exact (Clopper-Pearson) 95 % confidence interval."""
    ci = sps.binomtest(k, n).proportion_ci(confidence_level=0.95, method="exact")
    return k / n, ci.low, ci.high


def _fmt_share(k: int, n: int) -> str:
    share, lo, hi = share_ci(k, n)
    return f"{k}/{n} = {100 * share:.1f} % [{100 * lo:.1f}, {100 * hi:.1f}]"


def null_table(results: list[RunResult], *, planted: bool = False) -> list[str]:
    """Markdown rows: per gate, runs with any (false) promotion and mean promoted per run."""
    rows = []
    for name in results[0].promoted:
        counts = np.array([r.promoted[name] - (r.planted[name] if planted else 0)
                           for r in results])
        any_ = int(np.count_nonzero(counts))
        rows.append(f"| {name} | {_fmt_share(any_, len(results))} | {counts.mean():.2f} |")
    return rows


def power_table(results: list[RunResult]) -> list[str]:
    """Markdown rows: per gate, runs promoting the planted variant, and at which trade."""
    rows = []
    for name in results[0].planted:
        hits = sum(r.planted[name] for r in results)
        at = [r.promoted_at[name] for r in results if r.planted[name] and name in r.promoted_at]
        when = f"{np.mean(at):.0f}" if at else "200 (end)"
        false = np.mean([r.promoted[name] - r.planted[name] for r in results])
        rows.append(f"| {name} | {_fmt_share(hits, len(results))} | {when} | {false:.2f} |")
    return rows


def main(argv: list[str] | None = None) -> None:
    """Print the null and power tables of ``docs/statistics.md``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1000, help="runs per null table")
    parser.add_argument("--heavy-runs", type=int, default=400,
                        help="runs per heavy-tailed / skewed null table")
    parser.add_argument("--power-runs", type=int, default=1000, help="runs per power table")
    parser.add_argument("--boot-runs", type=int, default=3000,
                        help="pairs per bootstrap calibration row")
    parser.add_argument("--seed", type=int, default=20261201)
    args = parser.parse_args(argv)
    started = time.perf_counter()
    common = {"trades": 200, "look_every": 10}
    for dist, runs in (("normal", args.runs), ("student_t3", args.heavy_runs),
                       ("lognormal", args.heavy_runs)):
        results = simulate(args.seed, runs, dist=dist, variants=10_000,
                           planted_shift_sd=None, **common)
        print(f"\nNull, {dist}: 10,000 variants and a baseline, 200 trades each, {runs} runs")
        print("\n| gate | runs with any promotion [95 % CI] | promoted per run |")
        print("|---|---|---:|")
        print("\n".join(null_table(results)))
    print(f"\nBootstrap calibration: rejections at 5 % of {args.boot_runs} equal-mean pairs "
          "(499 resamples)")
    print("\n| returns | trades (variant / baseline) | test | rejected [95 % CI] |")
    print("|---|---|---|---|")
    for dist in ("student_t3", "lognormal"):
        for n, n_b in ((40, 60), (60, 200)):
            counts = bootstrap_calibration(args.seed, args.boot_runs, dist=dist, n=n, n_b=n_b)
            for name, k in counts.items():
                print(f"| {dist} | {n} / {n_b} | {name} | {_fmt_share(k, args.boot_runs)} |")
    results = simulate(args.seed + 1, args.power_runs, dist="normal", variants=1_001,
                       planted_shift_sd=0.5, **common)
    print(f"\nPower, normal: 1 planted variant (+0.5 sd) among 1,000 null variants, "
          f"200 trades each, {args.power_runs} runs")
    print("\n| gate | runs promoting the planted variant [95 % CI] | mean trades at "
          "promotion | false promotions per run |")
    print("|---|---|---:|---:|")
    print("\n".join(power_table(results)))
    print(f"\n({time.perf_counter() - started:.0f} s)")


if __name__ == "__main__":
    main()
