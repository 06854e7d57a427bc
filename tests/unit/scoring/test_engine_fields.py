"""liveopt.scoring reads Engine.metrics() tables as they are: the field names agree."""

from __future__ import annotations

import numpy as np

from liveopt.engine.engine import METRICS_DTYPE
from liveopt.scoring import PromotionGate, ScoringEngine, pareto_front


def engine_table(rng, n):
    table = np.zeros(n, dtype=METRICS_DTYPE)
    table["variant"] = np.arange(n)
    table["trades"] = rng.integers(40, 200, n)
    table["mean_return"] = rng.normal(0.001, 0.002, n)
    table["var_return"] = rng.uniform(0.5e-4, 2e-4, n)
    table["skewness"] = rng.normal(0.0, 0.3, n)
    table["kurtosis"] = 3.0 + rng.exponential(1.0, n)
    table["net_pnl"] = table["mean_return"] * table["trades"] * 100.0
    table["roi_pct"] = table["net_pnl"] / 100.0
    table["sharpe_per_trade"] = table["mean_return"] / np.sqrt(table["var_return"])
    table["win_rate"] = rng.uniform(0.3, 0.7, n)
    table["max_loss_streak"] = rng.integers(1, 10, n)
    table["max_drawdown"] = rng.uniform(0.0, 0.3, n)
    return table


def test_engine_metrics_table_feeds_the_score_the_front_and_the_gate():
    table = engine_table(np.random.default_rng(0), 50)
    ranked = ScoringEngine().rank(table)
    assert sorted(ranked["variant"].tolist()) == list(range(50))
    front = pareto_front(table)
    assert 0 < front.size <= 50
    decisions = PromotionGate().evaluate_metrics(table, baseline=0)
    assert [d.variant for d in decisions] == list(range(1, 50))
    assert all(d.trades == t for d, t in zip(decisions, table["trades"][1:], strict=True))
