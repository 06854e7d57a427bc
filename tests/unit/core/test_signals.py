"""The signal model's kernels against their twin (docs/signal-model.md), and invariants."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from liveopt._core import signals as sig
from tests.reference import signals as ref

maybe = st.one_of(st.floats(-150.0, 150.0, allow_nan=False), st.just(math.nan))
inputs = st.tuples(*([maybe] * 14))


def variant_params(draw_weights):
    weights = np.asarray(draw_weights, dtype=np.float64)
    return weights / weights.sum()


@settings(max_examples=300, deadline=None)
@given(
    values=inputs,
    rsi=maybe,
    raw_weights=st.lists(st.floats(0.0, 40.0), min_size=10, max_size=10).filter(
        lambda w: sum(w) > 0
    ),
    oversold=st.sampled_from([20.0, 25.0, 30.0, 35.0]),
    overbought=st.sampled_from([65.0, 70.0, 75.0, 80.0]),
    strong=st.sampled_from([0.5, 0.65, 0.8]),
    plain=st.sampled_from([0.3, 0.4, 0.5]),
)
def test_kernels_equal_the_twin_and_stay_in_range(
    values, rsi, raw_weights, oversold, overbought, strong, plain
):
    sub = np.empty(sig.N_SUBSCORES)
    sig.shared_subscores_nb(*values, sub)
    expected_sub = ref.shared_subscores(*values)
    assert sub.tolist() == expected_sub

    weights = variant_params(raw_weights)[:, None].copy()
    score, strong_class, weighted = sig.empty_outputs(1)
    one = np.array([strong]), np.array([plain]), np.array([-strong])
    sig.score_variants_nb(
        sub, rsi, 0, 1, weights, np.array([oversold]), np.array([overbought]), *one, score,
        strong_class, weighted,
    )
    confidence = sig.confidence_nb(sub, rsi, weights, 0, oversold, overbought, score[0],
                                   weighted)
    exp_score, exp_conf, exp_signal = ref.score_variant(
        expected_sub, rsi, weights[:, 0].tolist(), oversold, overbought, strong, plain,
        -plain, -strong,
    )
    assert score[0] == pytest.approx(exp_score, abs=1e-12)
    # Which side a score within rounding of 0 is on (it decides which sub-scores "agree")
    # is not defined beyond float precision. Classes are compared with a 1e-9 tolerance
    # (docs/signal-model.md), so a score exactly on a threshold gets the same class from
    # the kernel's float sum and the twin's exact one; only a score within rounding of
    # the band's edge (threshold -+ 1e-9) could differ.
    if abs(exp_score) > 1e-9:
        assert confidence == pytest.approx(exp_conf, abs=1e-12)
    edges = [t + d for t in (strong, plain, -plain, -strong) for d in (-1e-9, 1e-9)]
    if min(abs(exp_score - edge) for edge in edges) > 1e-12:
        assert strong_class[0] == (exp_signal if abs(exp_signal) == 2 else 0)
    assert -1.0 - 1e-12 <= score[0] <= 1.0 + 1e-12
    assert 0.0 <= confidence <= 1.0 + 1e-12


def test_warming_up_indicators_have_no_opinion():
    sub = np.full(sig.N_SUBSCORES, 9.0)
    sig.shared_subscores_nb(*([math.nan] * 14), sub)
    assert np.all(sub == 0.0)
    assert sig.rsi_subscore(math.nan, 30.0, 70.0) == 0.0


def test_each_variant_uses_its_own_rsi_levels_and_thresholds():
    # RSI 27 is oversold for a variant with level 30 (+1) but only mildly so for one with
    # level 20 (+0.6): with all weight on RSI, the first is STRONG_BUY, the second only
    # BUY (not strong: 0).
    sub = np.zeros(sig.N_SUBSCORES)
    weights = np.zeros((sig.N_SUBSCORES, 2))
    weights[sig.RSI, :] = 1.0
    score, strong_class, weighted = sig.empty_outputs(2)
    sig.score_variants_nb(
        sub, 27.0, 0, 2, weights, np.array([30.0, 20.0]), np.array([70.0, 80.0]),
        np.array([0.65, 0.65]), np.array([0.4, 0.4]), np.array([-0.65, -0.65]), score,
        strong_class, weighted,
    )
    assert score.tolist() == [1.0, 0.6]
    assert strong_class.tolist() == [sig.STRONG_BUY, 0]
    assert [sig.confidence_nb(sub, 27.0, weights, v, level, 80.0, score[v], weighted)
            for v, level in enumerate((30.0, 20.0))] == [1.0, 1.0]


def test_confidence_is_the_weighted_share_agreeing_with_the_score():
    sub = np.zeros(sig.N_SUBSCORES)
    sub[sig.MACD], sub[sig.AO], sub[sig.KDJ] = 1.0, 1.0, -1.0
    weights = np.zeros((sig.N_SUBSCORES, 1))
    weights[[sig.MACD, sig.AO, sig.KDJ, sig.BOLLINGER], 0] = [0.4, 0.2, 0.3, 0.1]
    score, strong_class, weighted = sig.empty_outputs(1)
    sig.score_variants_nb(
        sub, math.nan, 0, 1, weights, np.array([30.0]), np.array([70.0]),
        np.array([0.65]), np.array([0.4]), np.array([-0.65]), score, strong_class, weighted,
    )
    # Bollinger has no opinion; MACD and AO (0.6) agree with the positive score, KDJ (0.3)
    # does not: confidence 0.6 / 0.9.
    assert score[0] == pytest.approx(0.3)
    assert sig.confidence_nb(sub, math.nan, weights, 0, 30.0, 70.0, score[0],
                             weighted) == pytest.approx(0.6 / 0.9)
    assert strong_class[0] == 0


def test_a_block_of_variants_scores_each_one_like_a_block_of_one():
    # The block pass (indicator by indicator over variants) against scoring each variant
    # alone: identical results, and variants outside [first, last) are left untouched.
    rng = np.random.default_rng(7)
    n = 64
    weights = rng.random((sig.N_SUBSCORES, n))
    weights /= weights.sum(axis=0)
    sub = rng.choice([-1.0, 0.0, 0.6, 1.0], size=sig.N_SUBSCORES)
    levels = [rng.choice(values, size=n) for values in (
        [20.0, 30.0], [70.0, 80.0], [0.5, 0.65], [0.3, 0.4], [-0.65, -0.5])]
    block = sig.empty_outputs(n)
    block[0][:] = 99.0
    sig.score_variants_nb(sub, 28.0, 5, n - 5, weights, *levels, *block)
    assert np.all(block[0][:5] == 99.0) and np.all(block[0][n - 5:] == 99.0)
    for v in range(5, n - 5):
        alone = sig.empty_outputs(1)
        sig.score_variants_nb(sub, 28.0, 0, 1, weights[:, v:v + 1].copy(),
                              *(np.array([x[v]]) for x in levels), *alone)
        assert (block[0][v], block[1][v]) == (alone[0][0], alone[1][0])


def test_a_score_exactly_on_a_threshold_reaches_it_whatever_the_rounding():
    # 4/27 - 1/27 ... : weights whose float sum lands an ulp off the exact -0.5.
    sub = np.array([0.0, -1.0, 1.0, 1.0, -1.0, 0.0, 0.0, -1.0, 0.5, 0.0])
    points = np.array([3.0, 4.0, 4.0, 0.0, 8.0, 1.0, 1.0, 3.0, 1.0, 2.0])
    weights = (points / points.sum())[:, None].copy()
    score, strong_class, weighted = sig.empty_outputs(1)
    sig.score_variants_nb(sub, 70.8, 0, 1, weights, np.array([30.0]), np.array([70.0]),
                          np.array([0.65]), np.array([0.4]), np.array([-0.5]), score,
                          strong_class, weighted)
    assert score[0] == pytest.approx(-0.5, abs=1e-15)
    assert strong_class[0] == sig.STRONG_SELL


def test_an_indicator_no_variant_weighs_is_skipped_without_changing_any_score():
    rng = np.random.default_rng(3)
    n = 40
    weights = rng.random((sig.N_SUBSCORES, n))
    weights[[sig.MACD, sig.KDJ]] = 0.0
    weights /= weights.sum(axis=0)
    sub = rng.choice([-1.0, 1.0, 0.6], size=sig.N_SUBSCORES)
    levels = [np.full(n, x) for x in (30.0, 70.0, 0.65, 0.4, -0.65)]
    every, skipping = sig.empty_outputs(n), sig.empty_outputs(n)
    skipping[2][[sig.MACD, sig.KDJ]] = 0
    sig.score_variants_nb(sub, 50.0, 0, n, weights, *levels, *every)
    sig.score_variants_nb(sub, 50.0, 0, n, weights, *levels, *skipping)
    for a, b in zip(every[:2], skipping[:2], strict=True):
        assert a.tobytes() == b.tobytes()


@settings(max_examples=200, deadline=None)
@given(
    voicing=st.lists(st.sampled_from([-1.0, 0.0, 0.0, 0.6, 1.0, -0.37]), min_size=9,
                     max_size=9),
    unweighted=st.sets(st.integers(1, 9), max_size=3),
    rsi=st.sampled_from([10.0, 28.0, 50.0, 72.0, 95.0, math.nan]),
    seed=st.integers(0, 2**32 - 1),
)
def test_the_score_is_the_sum_in_indicator_order_bit_for_bit(voicing, unweighted, rsi, seed):
    # The kernel sums four indicators at a time and pads a short group with a zero term;
    # whatever the number of indicators with an opinion (0 to 9: one, two or three
    # groups), each score must be the plain left-to-right float sum of w_i * s_i over the
    # indicators with an opinion, in indicator order, then the RSI term: exactly, not to
    # a tolerance.
    rng = np.random.default_rng(seed)
    n = 37
    weights = rng.random((sig.N_SUBSCORES, n))
    weights[sorted(unweighted)] = 0.0
    weights /= weights.sum(axis=0)
    sub = np.array([0.0, *voicing])
    levels = [rng.choice(values, size=n) for values in (
        [20.0, 30.0], [70.0, 80.0], [0.3, 0.5], [0.1, 0.3], [-0.5, -0.3])]
    score, strong_class, weighted = sig.empty_outputs(n)
    weighted[:] = (weights > 0).any(axis=1)
    sig.score_variants_nb(sub, rsi, 0, n, weights, *levels, score, strong_class, weighted)
    for v in range(n):
        total = 0.0
        for i in range(1, sig.N_SUBSCORES):
            if sub[i] != 0.0 and weighted[i]:
                total = total + weights[i, v] * sub[i]
        rsi_term = ref.rsi_subscore(rsi, levels[0][v], levels[1][v])
        assert score[v] == total + weights[sig.RSI, v] * rsi_term


def test_thresholds_closer_than_the_tolerance_classify_as_the_specification_orders_them():
    # buy and sell 1e-10 apart (allowed: strong_buy >= buy > sell >= strong_sell): a
    # score of 0 is within the tolerance of all four thresholds. The specification's
    # if-chain checks strong buy first, so it is STRONG_BUY; a score just below buy
    # minus the tolerance is STRONG_SELL.
    sub = np.zeros(sig.N_SUBSCORES)
    weights = np.zeros((sig.N_SUBSCORES, 3))
    weights[sig.RSI] = [0.0, 1e-8, 1e-8]
    levels = [np.full(3, x) for x in (30.0, 70.0, 5e-11, 5e-11, -5e-11)]
    score, strong_class, weighted = sig.empty_outputs(3)
    sig.score_variants_nb(sub, 50.0, 0, 1, weights, *levels, score, strong_class, weighted)
    sig.score_variants_nb(sub, 90.0, 1, 2, weights, *levels, score, strong_class, weighted)
    sig.score_variants_nb(sub, 10.0, 2, 3, weights, *levels, score, strong_class, weighted)
    expected = [ref.score_variant(sub, rsi, weights[:, v].tolist(), 30.0, 70.0, 5e-11, 5e-11,
                                  -5e-11, -5e-11)[2] for v, rsi in enumerate((50.0, 90.0, 10.0))]
    assert expected == [sig.STRONG_BUY, sig.STRONG_SELL, sig.STRONG_BUY]
    assert strong_class.tolist() == expected
