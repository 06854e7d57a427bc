"""PromotionGate: validation, every check by name, and the two entry points agreeing."""

from __future__ import annotations

import math

import msgspec
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from liveopt.metrics import TradeStats
from liveopt.scoring import REASONS, GateDecision, PromotionGate

seeds = st.integers(0, 2**32 - 1)


def make_run(seed: int, m: int, *, planted: int = 0, n_range=(20, 160)):
    # m variants and a baseline of per-trade returns (mean 0.1 %, sd 1 %); the first
    # `planted` variants are 0.8 sd better.
    rng = np.random.default_rng(seed)
    variants = [rng.normal(0.001, 0.01, rng.integers(*n_range)) for _ in range(m)]
    for i in range(planted):
        variants[i] = variants[i] + 0.008
    baseline = rng.normal(0.001, 0.01, rng.integers(60, 160))
    return variants, baseline


def online_moments(variants, baseline):
    # The engine's path: every trade recorded in the online kernel, moments read back.
    stats = TradeStats(len(variants) + 1)
    for row, returns in enumerate([baseline, *variants]):
        for r in returns:
            stats.record_trade(row, float(r), float(r) * 100.0, float(r) * 100.0, 0.0)
    s = stats.summary()
    return {
        "trades": s["trades"][1:], "mean_return": s["mean_return"][1:],
        "var_return": s["variance"][1:], "skewness": s["skewness"][1:],
        "kurtosis": s["kurtosis"][1:], "net_pnl": s["net_pnl"][1:],
        "baseline_trades": s["trades"][0], "baseline_mean_return": s["mean_return"][0],
        "baseline_var_return": s["variance"][0], "baseline_net_pnl": s["net_pnl"][0],
    }


def assert_same_decisions(a: list[GateDecision], b: list[GateDecision]) -> None:
    assert len(a) == len(b)
    for x, y in zip(a, b, strict=True):
        assert (x.variant, x.promoted, x.trades, x.reasons) == (
            y.variant, y.promoted, y.trades, y.reasons)
        for name in ("mean_return", "p_value", "adjusted_p_value", "sharpe",
                     "deflated_sharpe", "net_pnl"):
            u, v = getattr(x, name), getattr(y, name)
            assert (math.isnan(u) and math.isnan(v)) or u == pytest.approx(
                v, rel=1e-7, abs=1e-12), (name, u, v)


# --------------------------------------------------------------------------------------
# Construction


def test_default_gate_is_the_issue_gate():
    gate = PromotionGate()
    assert (gate.min_trades, gate.confidence, gate.correction, gate.test, gate.require_dsr) \
        == (50, 0.95, "holm", "welch", False)
    assert gate.alpha == pytest.approx(0.05)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"min_trades": 1}, "min_trades"),
        ({"min_trades": 50.0}, "min_trades"),
        ({"confidence": 1.0}, "confidence"),
        ({"confidence": 0.0}, "confidence"),
        ({"confidence": float("nan")}, "confidence"),
        ({"correction": "bonferroni"}, "correction"),
        ({"test": "mann-whitney"}, "test"),
        ({"require_dsr": "yes"}, "require_dsr"),
        ({"bootstrap_resamples": 10}, "bootstrap_resamples"),
        ({"seed": -1}, "seed"),
    ],
)
def test_invalid_settings_are_rejected_naming_the_field(kwargs, field):
    with pytest.raises(ValueError, match=field):
        PromotionGate(**kwargs)


def test_gate_is_frozen_and_decodes_with_the_same_validation():
    gate = PromotionGate()
    with pytest.raises(AttributeError):
        gate.min_trades = 10  # type: ignore[misc]
    assert msgspec.json.decode(b'{"correction": "bh"}', type=PromotionGate).correction == "bh"
    with pytest.raises(msgspec.ValidationError, match="confidence"):
        msgspec.json.decode(b'{"confidence": 2.0}', type=PromotionGate)
    with pytest.raises(msgspec.ValidationError, match="unknown"):
        msgspec.json.decode(b'{"min_trade": 5}', type=PromotionGate)


# --------------------------------------------------------------------------------------
# Checks


def test_clearly_better_variant_is_promoted_with_no_reasons():
    variants, baseline = make_run(1, 20, planted=1, n_range=(150, 200))
    decisions = PromotionGate().evaluate(variants, baseline)
    best = decisions[0]
    assert best.promoted and best.reasons == ()
    assert best.adjusted_p_value <= 0.05 and best.sharpe > 0
    assert not any(d.promoted for d in decisions[1:])


def test_every_failed_check_is_listed_by_name():
    rng = np.random.default_rng(2)
    baseline = rng.normal(0.001, 0.01, 100)
    few = rng.normal(0.05, 0.01, 10)  # great but too few trades
    losing = rng.normal(-0.01, 0.01, 100)  # worse, negative Sharpe, lower PnL
    decisions = PromotionGate().evaluate([few, losing], baseline)
    assert decisions[0].reasons == ("min_trades", "not_significant")
    assert decisions[0].p_value == 1.0
    assert decisions[1].reasons == ("not_significant", "sharpe_not_positive",
                                    "pnl_not_above_baseline")
    assert set(REASONS) >= set(decisions[1].reasons)


def test_variants_with_too_few_trades_still_count_in_the_correction():
    variants, baseline = make_run(3, 1, planted=1, n_range=(150, 151))
    alone = PromotionGate().evaluate(variants, baseline)[0]
    crowd = PromotionGate().evaluate(variants + [np.zeros(3)] * 9, baseline)[0]
    assert crowd.p_value == alone.p_value
    assert crowd.adjusted_p_value == pytest.approx(min(1.0, 10 * alone.p_value))


def test_pnl_check_uses_given_net_pnl_or_the_sum_of_returns():
    variants, baseline = make_run(4, 2, planted=2, n_range=(150, 200))
    gate = PromotionGate()
    by_returns = gate.evaluate(variants, baseline)
    assert by_returns[0].net_pnl == pytest.approx(variants[0].sum())
    given_pnl = gate.evaluate(variants, baseline, variant_net_pnl=[10.0, 30.0],
                              baseline_net_pnl=20.0)
    assert "pnl_not_above_baseline" in given_pnl[0].reasons
    assert "pnl_not_above_baseline" not in given_pnl[1].reasons
    with pytest.raises(ValueError, match="baseline_net_pnl"):
        gate.evaluate(variants, baseline, variant_net_pnl=[1.0, 2.0])


def test_dsr_is_reported_always_and_required_only_when_asked():
    variants, baseline = make_run(5, 200, planted=1, n_range=(50, 60))
    variants[0] = variants[0] - 0.0045  # significant, but not far above the lucky best
    loose = PromotionGate(correction="none").evaluate(variants, baseline)
    strict = PromotionGate(correction="none", require_dsr=True).evaluate(variants, baseline)
    assert all(0.0 <= d.deflated_sharpe <= 1.0 for d in loose)
    passed_loose = {d.variant for d in loose if d.promoted}
    passed_strict = {d.variant for d in strict if d.promoted}
    assert passed_strict <= passed_loose
    dropped = [d for d in strict if d.variant in passed_loose - passed_strict]
    assert dropped and all(d.reasons == ("dsr_below_confidence",) for d in dropped)
    assert all(d.deflated_sharpe >= 0.95 for d in strict if d.promoted)


def test_baseline_with_fewer_than_two_trades_promotes_nothing():
    variants, _ = make_run(6, 3, planted=3, n_range=(100, 120))
    decisions = PromotionGate().evaluate(variants, np.array([0.001]))
    assert not any(d.promoted for d in decisions)
    assert all("baseline_too_few_trades" in d.reasons for d in decisions)


def test_bad_inputs_are_rejected_naming_the_argument():
    gate = PromotionGate()
    with pytest.raises(ValueError, match=r"variant_returns\[1\]"):
        gate.evaluate([np.zeros(3), np.array([0.1, np.nan])], np.zeros(3))
    with pytest.raises(ValueError, match="baseline_returns"):
        gate.evaluate([np.zeros(3)], np.zeros((2, 2)))
    good = online_moments(*make_run(7, 3))
    with pytest.raises(ValueError, match="kurtosis"):
        gate.evaluate_moments(**{k: v for k, v in good.items() if k != "kurtosis"})
    with pytest.raises(ValueError, match="net_pnl"):
        gate.evaluate_moments(**{**good, "net_pnl": good["net_pnl"][:2]})
    with pytest.raises(ValueError, match="trades"):
        gate.evaluate_moments(**{**good, "trades": good["trades"] - 1000})
    with pytest.raises(ValueError, match="test"):
        PromotionGate(test="bootstrap").evaluate_moments(**good)


# --------------------------------------------------------------------------------------
# Entry points agree; invariants


@settings(max_examples=40, deadline=None)
@given(seed=seeds, m=st.integers(1, 30), planted=st.integers(0, 3),
       correction=st.sampled_from(["holm", "bh", "none"]), require_dsr=st.booleans())
def test_moments_entry_point_gives_the_decisions_of_the_returns_entry_point(
        seed, m, planted, correction, require_dsr):
    variants, baseline = make_run(seed, m, planted=min(planted, m))
    gate = PromotionGate(correction=correction, require_dsr=require_dsr)
    mom = online_moments(variants, baseline)
    from_returns = gate.evaluate(variants, baseline, variant_net_pnl=mom["net_pnl"],
                                 baseline_net_pnl=mom["baseline_net_pnl"])
    assert_same_decisions(from_returns, gate.evaluate_moments(**mom))


@settings(max_examples=60, deadline=None)
@given(seed=seeds, m=st.integers(2, 40), correction=st.sampled_from(["holm", "bh", "none"]),
       data=st.data())
def test_decisions_do_not_depend_on_the_order_of_the_variants(seed, m, correction, data):
    variants, baseline = make_run(seed, m, planted=m // 4)
    perm = data.draw(st.permutations(range(m)))
    gate = PromotionGate(correction=correction, require_dsr=True)
    straight = gate.evaluate(variants, baseline)
    shuffled = gate.evaluate([variants[i] for i in perm], baseline, variant_ids=perm)
    assert_same_decisions(straight, sorted(shuffled, key=lambda d: d.variant))


@settings(max_examples=60, deadline=None)
@given(seed=seeds, m=st.integers(1, 60), planted=st.integers(0, 10),
       confidence=st.sampled_from([0.8, 0.9, 0.95, 0.99]))
def test_holm_never_promotes_a_variant_bh_rejects(seed, m, planted, confidence):
    variants, baseline = make_run(seed, m, planted=min(planted, m))
    holm = PromotionGate(correction="holm", confidence=confidence).evaluate(variants, baseline)
    bh = PromotionGate(correction="bh", confidence=confidence).evaluate(variants, baseline)
    none = PromotionGate(correction="none", confidence=confidence).evaluate(variants, baseline)
    holm_set = {d.variant for d in holm if d.promoted}
    bh_set = {d.variant for d in bh if d.promoted}
    assert holm_set <= bh_set <= {d.variant for d in none if d.promoted}


def test_metrics_table_entry_point_skips_the_baseline_row():
    variants, baseline = make_run(8, 5, planted=1, n_range=(150, 200))
    mom = online_moments(variants, baseline)
    dtype = [("variant", "i8"), ("trades", "i8"), ("mean_return", "f8"), ("var_return", "f8"),
             ("skewness", "f8"), ("kurtosis", "f8"), ("net_pnl", "f8")]
    table = np.zeros(6, dtype=dtype)
    table["variant"] = np.arange(6)
    table[0] = (0, mom["baseline_trades"], mom["baseline_mean_return"],
                mom["baseline_var_return"], 0.0, 3.0, mom["baseline_net_pnl"])
    for name in ("trades", "mean_return", "skewness", "kurtosis", "net_pnl"):
        table[name][1:] = mom[name]
    table["var_return"][1:] = mom["var_return"]
    decisions = PromotionGate().evaluate_metrics(table)
    assert [d.variant for d in decisions] == [1, 2, 3, 4, 5]
    assert_same_decisions(
        decisions, PromotionGate().evaluate_moments(**mom, variant_ids=np.arange(1, 6)))
    with pytest.raises(ValueError, match="baseline"):
        PromotionGate().evaluate_metrics(table, baseline=9)


def test_bootstrap_gate_is_reproducible_and_promotes_a_clear_winner():
    variants, baseline = make_run(9, 5, planted=1, n_range=(150, 200))
    gate = PromotionGate(test="bootstrap", bootstrap_resamples=999, seed=3)
    first, second = gate.evaluate(variants, baseline), gate.evaluate(variants, baseline)
    assert_same_decisions(first, second)
    assert first[0].promoted
    assert first[0].p_value == pytest.approx(1.0 / 1000.0)
