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

    weights = variant_params(raw_weights)
    score, confidence, signal, scratch, weighted = sig.empty_outputs(1)
    one = np.array([strong]), np.array([plain]), np.array([-plain]), np.array([-strong])
    sig.score_variants_nb(
        sub, rsi, 0, 1, weights[:, None].copy(), np.array([oversold]),
        np.array([overbought]), *one, score, confidence, signal, scratch, weighted,
    )
    exp_score, exp_conf, exp_signal = ref.score_variant(
        expected_sub, rsi, weights.tolist(), oversold, overbought, strong, plain, -plain,
        -strong,
    )
    assert score[0] == pytest.approx(exp_score, abs=1e-12)
    # Which side a score within rounding of 0 is on (it decides which sub-scores "agree")
    # is not defined beyond float precision. Classes are compared with a 1e-9 tolerance
    # (docs/signal-model.md), so a score exactly on a threshold gets the same class from
    # the kernel's float sum and the twin's exact one; only a score within rounding of
    # the band's edge (threshold -+ 1e-9) could differ.
    if abs(exp_score) > 1e-9:
        assert confidence[0] == pytest.approx(exp_conf, abs=1e-12)
    edges = [t + d for t in (strong, plain, -plain, -strong) for d in (-1e-9, 1e-9)]
    if min(abs(exp_score - edge) for edge in edges) > 1e-12:
        assert signal[0] == exp_signal
    assert -1.0 - 1e-12 <= score[0] <= 1.0 + 1e-12
    assert 0.0 <= confidence[0] <= 1.0 + 1e-12


def test_warming_up_indicators_have_no_opinion():
    sub = np.full(sig.N_SUBSCORES, 9.0)
    sig.shared_subscores_nb(*([math.nan] * 14), sub)
    assert np.all(sub == 0.0)
    assert sig.rsi_subscore(math.nan, 30.0, 70.0) == 0.0


def test_each_variant_uses_its_own_rsi_levels_and_thresholds():
    # RSI 27 is oversold for a variant with level 30 (+1) but only mildly so for one with
    # level 20 (+0.6): with all weight on RSI, the first is STRONG_BUY, the second BUY.
    sub = np.zeros(sig.N_SUBSCORES)
    weights = np.zeros((sig.N_SUBSCORES, 2))
    weights[sig.RSI, :] = 1.0
    score, confidence, signal, scratch, weighted = sig.empty_outputs(2)
    sig.score_variants_nb(
        sub, 27.0, 0, 2, weights, np.array([30.0, 20.0]), np.array([70.0, 80.0]),
        np.array([0.65, 0.65]), np.array([0.4, 0.4]), np.array([-0.4, -0.4]),
        np.array([-0.65, -0.65]), score, confidence, signal, scratch, weighted,
    )
    assert score.tolist() == [1.0, 0.6]
    assert signal.tolist() == [sig.STRONG_BUY, sig.BUY]
    assert confidence.tolist() == [1.0, 1.0]


def test_confidence_is_the_weighted_share_agreeing_with_the_score():
    sub = np.zeros(sig.N_SUBSCORES)
    sub[sig.MACD], sub[sig.AO], sub[sig.KDJ] = 1.0, 1.0, -1.0
    weights = np.zeros((sig.N_SUBSCORES, 1))
    weights[[sig.MACD, sig.AO, sig.KDJ, sig.BOLLINGER], 0] = [0.4, 0.2, 0.3, 0.1]
    score, confidence, signal, scratch, weighted = sig.empty_outputs(1)
    sig.score_variants_nb(
        sub, math.nan, 0, 1, weights, np.array([30.0]), np.array([70.0]),
        np.array([0.65]), np.array([0.4]), np.array([-0.4]), np.array([-0.65]),
        score, confidence, signal, scratch, weighted,
    )
    # Bollinger has no opinion; MACD and AO (0.6) agree with the positive score, KDJ (0.3)
    # does not: confidence 0.6 / 0.9.
    assert score[0] == pytest.approx(0.3)
    assert confidence[0] == pytest.approx(0.6 / 0.9)
    assert signal[0] == sig.NEUTRAL


def test_a_block_of_variants_scores_each_one_like_a_block_of_one():
    # The block pass (indicator by indicator over variants) against scoring each variant
    # alone: identical results, and variants outside [first, last) are left untouched.
    rng = np.random.default_rng(7)
    n = 64
    weights = rng.random((sig.N_SUBSCORES, n))
    weights /= weights.sum(axis=0)
    sub = rng.choice([-1.0, 0.0, 0.6, 1.0], size=sig.N_SUBSCORES)
    levels = [rng.choice(values, size=n) for values in (
        [20.0, 30.0], [70.0, 80.0], [0.5, 0.65], [0.3, 0.4], [-0.4, -0.3], [-0.65, -0.5])]
    block = sig.empty_outputs(n)
    block[0][:] = 99.0
    sig.score_variants_nb(sub, 28.0, 5, n - 5, weights, *levels, *block)
    assert np.all(block[0][:5] == 99.0) and np.all(block[0][n - 5:] == 99.0)
    for v in range(5, n - 5):
        alone = sig.empty_outputs(1)
        sig.score_variants_nb(sub, 28.0, 0, 1, weights[:, v:v + 1].copy(),
                              *(np.array([x[v]]) for x in levels), *alone)
        assert (block[0][v], block[1][v], block[2][v]) == (alone[0][0], alone[1][0],
                                                           alone[2][0])


def test_a_score_exactly_on_a_threshold_reaches_it_whatever_the_rounding():
    # 4/27 - 1/27 ... : weights whose float sum lands an ulp off the exact -0.5.
    sub = np.array([0.0, -1.0, 1.0, 1.0, -1.0, 0.0, 0.0, -1.0, 0.5, 0.0])
    points = np.array([3.0, 4.0, 4.0, 0.0, 8.0, 1.0, 1.0, 3.0, 1.0, 2.0])
    weights = (points / points.sum())[:, None].copy()
    score, confidence, signal, scratch, weighted = sig.empty_outputs(1)
    sig.score_variants_nb(sub, 70.8, 0, 1, weights, np.array([30.0]), np.array([70.0]),
                          np.array([0.65]), np.array([0.4]), np.array([-0.4]),
                          np.array([-0.5]), score, confidence, signal, scratch,
                          weighted)
    assert score[0] == pytest.approx(-0.5, abs=1e-15)
    assert signal[0] == sig.STRONG_SELL


def test_an_indicator_no_variant_weighs_is_skipped_without_changing_any_score():
    rng = np.random.default_rng(3)
    n = 40
    weights = rng.random((sig.N_SUBSCORES, n))
    weights[[sig.MACD, sig.KDJ]] = 0.0
    weights /= weights.sum(axis=0)
    sub = rng.choice([-1.0, 1.0, 0.6], size=sig.N_SUBSCORES)
    levels = [np.full(n, x) for x in (30.0, 70.0, 0.65, 0.4, -0.4, -0.65)]
    every, skipping = sig.empty_outputs(n), sig.empty_outputs(n)
    skipping[4][[sig.MACD, sig.KDJ]] = 0
    sig.score_variants_nb(sub, 50.0, 0, n, weights, *levels, *every)
    sig.score_variants_nb(sub, 50.0, 0, n, weights, *levels, *skipping)
    for a, b in zip(every[:3], skipping[:3], strict=True):
        assert a.tobytes() == b.tobytes()
