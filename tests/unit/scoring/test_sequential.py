"""Group-sequential boundaries and the SequentialGate: exact levels, one-way promotion."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import special

from liveopt.scoring import PromotionGate, SequentialGate, boundaries, spent
from liveopt.scoring.sequential import boundary_table
from tests.unit.scoring.test_gate import assert_same_decisions, make_run, online_moments

SCHEDULE = np.r_[np.arange(50, 200, 10), 200] / 200.0  # the looks: every 10 trades


def brownian_z(rng, times, paths):
    # Z_k = W(t_k) / sqrt(t_k) of standard Brownian paths observed at `times`.
    steps = rng.standard_normal((paths, times.size)) * np.sqrt(np.diff(times, prepend=0.0))
    return np.cumsum(steps, axis=1) / np.sqrt(times)


def test_boundaries_equal_published_lan_demets_values():
    # Five equally spaced looks, one-sided 0.025: the commonly tabulated Lan-DeMets
    # O'Brien-Fleming-type and Pocock-type bounds (as R gsDesign's sfLDOF / sfLDPocock
    # designs print them, to 4 decimals).
    t = np.arange(1, 6) / 5.0
    np.testing.assert_allclose(boundaries(t, 0.025, "obrien_fleming"),
                               [4.8769, 3.3569, 2.6803, 2.2898, 2.0310], atol=2e-4)
    np.testing.assert_allclose(boundaries(t, 0.025, "pocock"),
                               [2.4380, 2.4268, 2.4101, 2.3966, 2.3859], atol=2e-4)


def test_one_look_boundary_is_the_fixed_sample_quantile():
    for level in (0.05, 1e-6):
        for spending in ("obrien_fleming", "pocock"):
            c = boundaries(np.array([1.0]), level, spending)
            assert c[0] == pytest.approx(-special.ndtri(level), rel=1e-12)


@pytest.mark.parametrize("spending", ["obrien_fleming", "pocock"])
def test_simulated_paths_cross_the_boundaries_at_exactly_the_spent_rate(spending):
    rng = np.random.default_rng(20261130)
    paths = 400_000
    z = brownian_z(rng, SCHEDULE, paths)
    for level in (0.05, 0.002):
        c = boundaries(SCHEDULE, level, spending)
        crossed = z >= c
        first = np.where(crossed.any(axis=1), crossed.argmax(axis=1), -1)
        spent_sim = np.array([(first == k).sum() for k in range(SCHEDULE.size)]).cumsum() / paths
        sd = np.sqrt(level * (1 - level) / paths)
        assert spent_sim[-1] == pytest.approx(level, abs=4 * sd)
        np.testing.assert_allclose(spent_sim, spent(SCHEDULE, level, spending),
                                   atol=4 * sd + 1e-5)


def test_naive_repeated_looks_at_the_fixed_level_inflate_the_error_about_threefold():
    # Why the spending is needed: 16 looks at the fixed 5 % boundary.
    z = brownian_z(np.random.default_rng(1), SCHEDULE, 200_000)
    naive = np.mean((z >= -special.ndtri(0.05)).any(axis=1))
    assert 0.12 < naive < 0.20


def test_repeated_p_value_is_a_valid_p_value_over_all_looks():
    # P(min over looks of a_k(Z_k) <= a) = a: the repeated p-value is uniform under the
    # null, however many looks a path has had.
    table = boundary_table(tuple(SCHEDULE.tolist()), "obrien_fleming")
    z = brownian_z(np.random.default_rng(2), SCHEDULE, 200_000)
    p = np.min([table.repeated_p(k, z[:, k]) for k in range(SCHEDULE.size)], axis=0)
    for a in (0.01, 0.05, 0.2):
        sd = np.sqrt(a * (1 - a) / z.shape[0])
        assert np.mean(p <= a) == pytest.approx(a, abs=4 * sd)


@pytest.mark.parametrize("spending", ["obrien_fleming", "pocock"])
def test_tabulated_inverse_recovers_levels_between_the_grid_points(spending):
    table = boundary_table(tuple(SCHEDULE.tolist()), spending)
    for level in (0.031, 4.7e-4, 3.3e-6, 2.2e-9):
        c = boundaries(SCHEDULE, level, spending)
        for k in (0, 5, 15):
            assert table.repeated_p(k, np.array([c[k]]))[0] == pytest.approx(level, rel=2e-3)


def test_single_look_sequential_gate_equals_the_fixed_gate():
    variants, baseline = make_run(11, 30, planted=3, n_range=(100, 101))
    gate = PromotionGate()
    seq = SequentialGate(gate, horizon_trades=gate.min_trades, look_every=10)
    assert seq.schedule.tolist() == [50]
    mom = online_moments(variants, baseline)
    fixed = gate.evaluate_moments(**mom)
    sequential = seq.look_moments(**mom)
    assert [d.promoted for d in sequential] == [d.promoted for d in fixed]
    for s, f in zip(sequential, fixed, strict=True):
        # The table stops at level 0.977; above it the repeated p-value is reported as 1.
        assert s.p_value == (pytest.approx(f.p_value, rel=2e-3) if f.p_value < 0.97 else 1.0)


def test_returns_and_moments_looks_agree():
    variants, baseline = make_run(12, 10, planted=2, n_range=(60, 200))
    gate = PromotionGate()
    a = SequentialGate(gate, horizon_trades=200)
    b = SequentialGate(gate, horizon_trades=200)
    for n in (50, 100, 150, 200):
        cut = [v[:n] for v in variants]
        mom = online_moments(cut, baseline[:n])
        from_returns = a.look(cut, baseline[:n], variant_net_pnl=mom["net_pnl"],
                              baseline_net_pnl=mom["baseline_net_pnl"])
        assert_same_decisions(from_returns, b.look_moments(**mom))


def test_promotion_is_one_way_and_remembers_when_it_happened():
    rng = np.random.default_rng(13)
    baseline = rng.normal(0.001, 0.01, 200)
    hot = np.r_[rng.normal(0.012, 0.01, 100), rng.normal(-0.02, 0.01, 100)]
    variants = [hot] + [rng.normal(0.001, 0.01, 200) for _ in range(9)]
    seq = SequentialGate(PromotionGate(), horizon_trades=200, look_every=10)
    flags = []
    for n in seq.schedule:
        decisions = seq.look([v[:n] for v in variants], baseline[:n])
        flags.append(decisions[0].promoted)
    first = flags.index(True)
    assert first < 6 and all(flags[first:])
    assert decisions[0].reasons == () and decisions[0].mean_return < 0.0
    assert seq.promoted_at[0] == seq.schedule[first]
    assert seq.promoted.tolist() == [True] + [False] * 9


def test_looks_between_schedule_points_do_not_spend_level():
    variants, baseline = make_run(14, 5, planted=1, n_range=(200, 201))
    seq = SequentialGate(PromotionGate(), horizon_trades=200, look_every=50)
    seq.look([v[:50] for v in variants], baseline[:50])
    p_50 = [d.p_value for d in seq.look([v[:50] for v in variants], baseline[:50])]
    p_60 = [d.p_value for d in seq.look([v[:60] for v in variants], baseline[:60])]
    assert p_60 == p_50  # 60 trades is not a schedule point: no new look


def test_misuse_is_rejected_naming_the_argument():
    gate = PromotionGate()
    with pytest.raises(ValueError, match="horizon_trades"):
        SequentialGate(gate, horizon_trades=10)
    with pytest.raises(ValueError, match="look_every"):
        SequentialGate(gate, horizon_trades=200, look_every=0)
    with pytest.raises(ValueError, match="spending"):
        SequentialGate(gate, horizon_trades=200, spending="linear")
    with pytest.raises(ValueError, match=r"gate\.test"):
        SequentialGate(PromotionGate(test="bootstrap"), horizon_trades=200)
    variants, baseline = make_run(15, 4, n_range=(100, 101))
    seq = SequentialGate(gate, horizon_trades=200)
    seq.look([v[:80] for v in variants], baseline)
    with pytest.raises(ValueError, match="went down"):
        seq.look([v[:70] for v in variants], baseline)
    with pytest.raises(ValueError, match="same 4 variants"):
        seq.look([v[:90] for v in variants[:3]], baseline)
