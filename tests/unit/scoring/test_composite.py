"""ScoringEngine's bounded composite score and the Pareto front against a brute-force twin."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from liveopt.scoring import SCORE_DTYPE, ScoringEngine, non_dominated, pareto_front

METRIC_FIELDS = [("variant", "i8"), ("trades", "i8"), ("roi_pct", "f8"),
                 ("sharpe_per_trade", "f8"), ("win_rate", "f8"), ("max_loss_streak", "i8"),
                 ("max_win_streak", "i8"), ("max_drawdown", "f8")]


def metrics(rows):
    # rows: (trades, roi_pct, sharpe, win_rate, max_loss_streak, max_drawdown)
    out = np.zeros(len(rows), dtype=METRIC_FIELDS)
    out["variant"] = np.arange(len(rows))
    for i, (n, roi, sharpe, wr, streak, dd) in enumerate(rows):
        out[i] = (i, n, roi, sharpe, wr, streak, 0, dd)
    return out


finite_or_nan = st.one_of(st.floats(-1e6, 1e6), st.just(float("nan")))


@st.composite
def metric_tables(draw):
    size = draw(st.integers(1, 12))
    rows = []
    for _ in range(size):
        n = draw(st.integers(0, 5000))
        rows.append((
            n,
            draw(st.one_of(st.floats(-100.0, 1e6), st.just(float("nan")))),
            draw(finite_or_nan),
            draw(st.one_of(st.floats(0.0, 1.0), st.just(float("nan")))),
            draw(st.integers(0, n)),
            draw(st.one_of(st.floats(0.0, 1.0), st.just(float("nan")))),
        ))
    return metrics(rows)


@settings(max_examples=150, deadline=None)
@given(table=metric_tables())
def test_every_term_and_the_score_stay_within_zero_and_one(table):
    scored = ScoringEngine().score(table)
    for name in ("score", "roi_term", "sharpe_term", "win_rate_term", "consistency_term",
                 "sample_term"):
        assert np.all((scored[name] >= 0.0) & (scored[name] <= 1.0)), name
    assert np.all((scored["drawdown_factor"] >= 0.5) & (scored["drawdown_factor"] <= 1.0))


@settings(max_examples=100, deadline=None)
@given(table=metric_tables())
def test_rank_is_best_first_and_a_permutation_of_the_variants(table):
    ranked = ScoringEngine().rank(table)
    assert ranked.dtype == SCORE_DTYPE
    assert np.all(np.diff(ranked["score"]) <= 0.0)
    assert sorted(ranked["variant"].tolist()) == table["variant"].tolist()
    assert ranked["rank"].tolist() == list(range(1, table.size + 1))


def test_score_formula_on_one_variant():
    engine = ScoringEngine()
    row = engine.score(metrics([(100, 10.0, 0.2, 0.6, 20, 0.1)]))[0]
    assert row["roi_term"] == pytest.approx(0.5)
    assert row["sharpe_term"] == pytest.approx(0.5)
    assert row["win_rate_term"] == pytest.approx(0.6)
    assert row["consistency_term"] == pytest.approx(0.8)
    assert row["sample_term"] == pytest.approx(100 / 150)
    assert row["drawdown_factor"] == pytest.approx(0.75)
    mixed = 0.30 * 0.5 + 0.25 * 0.5 + 0.15 * 0.6 + 0.10 * 0.8 + 0.20 * 100 / 150
    assert row["score"] == pytest.approx(0.75 * mixed)


def test_losses_score_zero_not_negative():
    # The origin's confidence could go negative with a negative ROI or Sharpe.
    row = ScoringEngine().score(metrics([(80, -40.0, -0.5, 0.2, 30, 0.5)]))[0]
    assert row["roi_term"] == 0.0 and row["sharpe_term"] == 0.0
    assert row["score"] >= 0.0
    assert row["drawdown_factor"] == pytest.approx(0.5)


def test_longest_losing_run_lowers_consistency_and_winning_runs_do_not():
    # Origin defect: it used the current streaks, and penalised winning runs as well.
    table = metrics([(100, 5.0, 0.1, 0.5, 3, 0.05), (100, 5.0, 0.1, 0.5, 30, 0.05)])
    table["max_win_streak"] = [40, 2]
    ranked = ScoringEngine().rank(table)
    assert ranked["variant"].tolist() == [0, 1]
    assert ranked["consistency_term"].tolist() == pytest.approx([0.97, 0.70])


def test_saturating_terms_keep_separating_variants_past_the_origin_caps():
    # The origin capped ROI at 50 % and Sharpe at 3: beyond, every variant tied.
    scored = ScoringEngine().score(metrics([(100, 60.0, 4.0, 0.5, 5, 0.0),
                                            (100, 90.0, 6.0, 0.5, 5, 0.0)]))
    assert scored["roi_term"][1] > scored["roi_term"][0]
    assert scored["sharpe_term"][1] > scored["sharpe_term"][0]


def test_undefined_metrics_score_nothing_and_undefined_drawdown_is_fully_penalised():
    row = ScoringEngine().score(metrics([(0, float("nan"), float("nan"), float("nan"), 0,
                                          float("nan"))]))[0]
    assert row["score"] == 0.0
    assert row["drawdown_factor"] == pytest.approx(0.5)


def test_mapping_input_without_variant_ids_uses_positions():
    cols = {name: metrics([(10, 1.0, 0.1, 0.5, 2, 0.0)] * 3)[name]
            for name in ("trades", "roi_pct", "sharpe_per_trade", "win_rate",
                         "max_loss_streak", "max_drawdown")}
    assert ScoringEngine().score(cols)["variant"].tolist() == [0, 1, 2]
    with pytest.raises(ValueError, match="win_rate"):
        ScoringEngine().score({k: v for k, v in cols.items() if k != "win_rate"})


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"roi_weight": -0.1}, "roi_weight"),
        ({"roi_weight": 0, "sharpe_weight": 0, "win_rate_weight": 0,
          "consistency_weight": 0, "sample_weight": 0}, "weight"),
        ({"sharpe_half": 0.0}, "sharpe_half"),
        ({"drawdown_limit": 1.5}, "drawdown_limit"),
        ({"drawdown_max_penalty": 2.0}, "drawdown_max_penalty"),
        ({"roi_half_pct": float("inf")}, "roi_half_pct"),
    ],
)
def test_invalid_engine_settings_are_rejected_naming_the_field(kwargs, field):
    with pytest.raises(ValueError, match=field):
        ScoringEngine(**kwargs)


# --------------------------------------------------------------------------------------
# Pareto front


def brute_force_front(points):
    # Definition: p is on the front when no q is >= p everywhere and > p somewhere.
    pts = np.asarray(points, dtype=np.float64)
    ge = np.all(pts[:, None, :] >= pts[None, :, :], axis=2)
    gt = np.any(pts[:, None, :] > pts[None, :, :], axis=2)
    return ~np.any(ge & gt, axis=0)


# Small integer grids force ties and duplicates, the cases a sweep gets wrong.
grid_points = st.integers(1, 120).flatmap(
    lambda n: st.lists(st.tuples(*[st.integers(-4, 4)] * 3), min_size=n, max_size=n)
)


@settings(max_examples=200, deadline=None)
@given(points=grid_points)
def test_front_equals_brute_force_with_ties_and_duplicates(points):
    np.testing.assert_array_equal(non_dominated(points), brute_force_front(points))


@settings(max_examples=100, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(1, 400), k=st.integers(1, 3),
       anti=st.booleans())
def test_front_equals_brute_force_on_random_clouds(seed, n, k, anti):
    rng = np.random.default_rng(seed)
    pts = rng.normal(size=(n, k))
    if anti and k == 3:
        pts[:, 2] = -pts[:, 0] - pts[:, 1]  # every point on the front
    pts[rng.random((n, k)) < 0.05] = -np.inf
    np.testing.assert_array_equal(non_dominated(pts), brute_force_front(pts))


def test_front_rejects_nan_and_wrong_shapes():
    with pytest.raises(ValueError, match="NaN"):
        non_dominated([[0.0, np.nan, 1.0]])
    with pytest.raises(ValueError, match="shape"):
        non_dominated(np.zeros((3, 4)))


def test_pareto_front_of_metrics_maximises_roi_and_sharpe_and_minimises_drawdown():
    table = metrics([
        (100, 20.0, 0.10, 0.5, 5, 0.15),  # 0: best return, deep drawdown
        (100, 10.0, 0.30, 0.5, 5, 0.05),  # 1: best Sharpe and drawdown
        (100, 9.0, 0.20, 0.5, 5, 0.06),   # 2: dominated by 1
        (100, 15.0, 0.15, 0.5, 5, 0.10),  # 3: a trade-off between 0 and 1
        (1, 50.0, np.nan, 1.0, 0, 0.0),   # 4: one trade: left out
        (100, 20.0, 0.10, 0.5, 5, 0.15),  # 5: equal to 0, kept with it
    ])
    front = pareto_front(table)
    assert front["variant"].tolist() == [0, 5, 3, 1]
    # With min_trades=0 the one-trade variant competes: best ROI and drawdown, worst
    # (undefined) Sharpe, so it joins the front without pushing anyone off.
    assert pareto_front(table, min_trades=0)["variant"].tolist() == [4, 0, 5, 3, 1]
