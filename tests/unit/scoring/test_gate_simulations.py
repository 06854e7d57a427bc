"""The issue's measurements, with fewer seeded runs than docs/statistics.md.

Each test draws fresh data per run from ``default_rng([seed, run])``; nothing here is a
hard-coded result. A bound on a share of runs is checked with an exact binomial test:
with ``k`` runs out of ``R`` showing a false promotion, the test fails when ``k`` is
significantly above what a 5 % rate allows (one-sided p < 0.01). The full-size numbers
(1,000 null runs, 1,000 power runs) are printed by
``.venv/bin/python -m tests.unit.scoring.simulate``.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats as sps

from liveopt.scoring import PromotionGate
from tests.unit.scoring.simulate import (
    draw,
    gate_arguments,
    prefix_moments,
    simulate,
)

SEED = 20261130
COMMON = {"trades": 200, "look_every": 10}


def consistent_with_at_most_5_percent(k: int, runs: int) -> bool:
    return sps.binomtest(k, runs, 0.05, alternative="greater").pvalue >= 0.01


def runs_with_any(results, gate: str) -> int:
    return sum(r.promoted[gate] > 0 for r in results)


def test_holm_almost_never_promotes_any_of_10000_null_variants_and_none_promotes_hundreds():
    runs = 100
    results = simulate(SEED, runs, dist="normal", variants=10_000, planted_shift_sd=None,
                       gates=("fixed/holm", "fixed/none"), **COMMON)
    assert consistent_with_at_most_5_percent(runs_with_any(results, "fixed/holm"), runs)
    # Without a correction the same gate promotes noise by the hundred.
    assert np.mean([r.promoted["fixed/none"] for r in results]) > 100


@pytest.mark.parametrize("dist", ["student_t3", "lognormal"])
def test_holm_controls_false_promotions_on_heavy_tailed_and_skewed_null_returns(dist):
    runs = 25
    results = simulate(SEED, runs, dist=dist, variants=10_000, planted_shift_sd=None,
                       gates=("fixed/holm",), **COMMON)
    assert consistent_with_at_most_5_percent(runs_with_any(results, "fixed/holm"), runs)


def test_sequential_holm_with_looks_every_10_trades_controls_false_promotions():
    runs = 50
    results = simulate(SEED, runs, dist="normal", variants=10_000, planted_shift_sd=None,
                       gates=("sequential/holm",), **COMMON)
    assert consistent_with_at_most_5_percent(runs_with_any(results, "sequential/holm"), runs)


def test_planted_variant_half_an_sd_better_is_promoted_in_at_least_80_percent_of_runs():
    runs = 200
    results = simulate(SEED + 1, runs, dist="normal", variants=1_001, planted_shift_sd=0.5,
                       gates=("fixed/holm", "sequential/holm"), **COMMON)
    for gate in ("fixed/holm", "sequential/holm"):
        assert sum(r.planted[gate] for r in results) / runs >= 0.80, gate
    # The sequential gate promotes it before the horizon on average.
    at = [r.promoted_at["sequential/holm"] for r in results if r.planted["sequential/holm"]]
    assert np.mean(at) < 200


def test_simulated_moments_give_the_decisions_of_the_returns_form():
    # The simulations use the moments entry point; confirm on whole runs that the array
    # form decides the same.
    for run in range(2):
        rng = np.random.default_rng([SEED, 99, run])
        x = draw(rng, "lognormal", (2_000, 200))
        x[:5] += 0.004
        base = draw(rng, "lognormal", (1, 200))
        counts = np.array([200])
        args = gate_arguments(next(prefix_moments(x, counts)),
                              next(prefix_moments(base, counts)))
        for correction in ("holm", "none"):
            gate = PromotionGate(correction=correction)
            by_moments = gate.moments_table(**args)
            by_returns = gate.table(list(x), base[0])
            np.testing.assert_array_equal(by_moments["promoted"], by_returns["promoted"])
            np.testing.assert_array_equal(by_moments["reasons"], by_returns["reasons"])
            np.testing.assert_allclose(by_moments["p_value"], by_returns["p_value"],
                                       rtol=1e-6, atol=1e-300)
