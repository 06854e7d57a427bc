"""generate_variants and profile: the invariants of every mode, determinism, Sobol' spread,
the grid order and the named profiles."""

from __future__ import annotations

import re
from typing import ClassVar

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from liveopt.optimizer import (
    FLOAT_PARAMS,
    MODES,
    PROFILE_NAMES,
    OptimizerConfig,
    Origin,
    Range,
    VariantParams,
    WeightRanges,
    generate_variants,
    profile,
)
from tests.unit.optimizer.checks import assert_sets_identical, assert_variant_set_invariants

SIZES = {"random": 200, "sobol": 200, "grid": 200, "profiles": 6}
SEEDED = ("random", "sobol")
ORIGINS = {
    "random": Origin.RANDOM, "sobol": Origin.SOBOL, "grid": Origin.GRID,
    "profiles": Origin.PROFILE,
}


def _fields(params: VariantParams) -> dict:
    return {name: getattr(params, name) for name in params.__struct_fields__}


def _tiny_config() -> OptimizerConfig:
    # Everything fixed except stop_loss_roi (2 values): 2 variants in the whole space.
    fixed = {name: Range(10, 10, 5, 10) for name in WeightRanges.__struct_fields__}
    single = {
        name: Range(getattr(OptimizerConfig(), name).default,
                    getattr(OptimizerConfig(), name).default, 1,
                    getattr(OptimizerConfig(), name).default)
        for name in FLOAT_PARAMS if name not in ("stop_loss_roi", "trailing_move")
    }
    return OptimizerConfig(
        weights=WeightRanges(**fixed), **single,
        trailing_move=Range(0.04, 0.04, 0.02, 0.04),
        stop_loss_roi=Range(0.5, 0.6, 0.1, 0.5), leverage=Range(10, 10, 1, 10),
        timeframes=("5m",),
    )


class TestEveryMode:
    @pytest.mark.parametrize("mode", MODES)
    def test_generated_set_satisfies_the_invariants(self, mode):
        # Act
        variants = generate_variants(SIZES[mode], mode, seed=11)

        # Assert
        assert_variant_set_invariants(variants, SIZES[mode], profile("default"))
        assert np.all(variants.origin[1:] == ORIGINS[mode])

    @pytest.mark.parametrize("mode", MODES)
    def test_same_seed_gives_identical_sets(self, mode):
        first = generate_variants(SIZES[mode], mode, seed=5)
        second = generate_variants(SIZES[mode], mode, seed=5)
        assert_sets_identical(first, second)

    @pytest.mark.parametrize("mode", SEEDED)
    def test_another_seed_gives_a_different_set(self, mode):
        a = generate_variants(50, mode, seed=1)
        b = generate_variants(50, mode, seed=2)
        assert a.config_hash[0] == b.config_hash[0]
        assert len(np.intersect1d(a.config_hash[1:], b.config_hash[1:])) < 5

    @pytest.mark.parametrize("mode", ("grid", "profiles"))
    def test_deterministic_modes_ignore_the_seed(self, mode):
        assert_sets_identical(
            generate_variants(SIZES[mode], mode, seed=1),
            generate_variants(SIZES[mode], mode, seed=2),
        )

    @pytest.mark.parametrize("mode", MODES)
    def test_n_of_one_is_the_baseline_alone(self, mode):
        variants = generate_variants(1, mode, seed=0)
        assert len(variants) == 1
        assert variants[0].config_hash() == profile("default").config_hash()

    @pytest.mark.parametrize("mode", MODES)
    def test_a_given_baseline_is_row_zero_unchanged(self, mode):
        # Arrange: off the grid and outside the searched leverage, in points.
        baseline = VariantParams(
            **{**_fields(profile("scalping")), "stop_loss_roi": 0.55, "leverage": 25,
               "timeframe": "1h"}
        )

        # Act
        variants = generate_variants(min(SIZES[mode], 6), mode, seed=3, baseline=baseline)

        # Assert
        assert variants.config_hash[0] == baseline.config_hash()
        assert variants.stop_loss_roi[0] == 0.55 and variants.leverage[0] == 25
        assert np.array_equal(variants.weight_points[0], baseline.weights)
        assert variants.weights[0].sum() == pytest.approx(1.0, abs=1e-12)

    def test_baseline_timeframe_outside_the_config_is_refused(self):
        baseline = VariantParams(**{**_fields(profile("default")), "timeframe": "4h"})
        with pytest.raises(ValueError, match=re.escape("'4h' is not one of config.timeframes")):
            generate_variants(3, "random", 0, baseline=baseline)

    @pytest.mark.parametrize(
        ("kwargs", "message"),
        [
            ({"n": 0, "mode": "random", "seed": 0}, "n must be an integer >= 1"),
            ({"n": 2.0, "mode": "random", "seed": 0}, "n must be an integer >= 1"),
            ({"n": 2, "mode": "latin", "seed": 0}, "unknown mode 'latin'"),
            ({"n": 2, "mode": "random", "seed": -1}, "seed must be an integer >= 0"),
        ],
    )
    def test_bad_arguments_are_refused(self, kwargs, message):
        with pytest.raises(ValueError, match=message):
            generate_variants(**kwargs)

    @settings(max_examples=60, deadline=None)
    @given(
        mode=st.sampled_from(MODES),
        n=st.integers(1, 300),
        seed=st.integers(0, 2**63),
    )
    def test_invariants_hold_for_any_size_seed_and_mode(self, mode, n, seed):
        if mode == "profiles":
            n = min(n, 6)
        variants = generate_variants(n, mode, seed)
        assert_variant_set_invariants(variants, n, profile("default"))
        assert_sets_identical(variants, generate_variants(n, mode, seed))


class TestExhaustion:
    def test_random_draws_give_up_on_an_exhausted_space(self):
        config = _tiny_config()
        assert len(generate_variants(2, "random", 0, config=config)) == 2
        with pytest.raises(ValueError, match="found only 1 of 2 distinct variants"):
            generate_variants(3, "random", 0, config=config)

    @pytest.mark.parametrize("mode", SEEDED)
    def test_more_rows_than_the_space_holds_is_refused_at_once(self, mode):
        with pytest.raises(ValueError, match="has at most 2 points"):
            generate_variants(4, mode, 0, config=_tiny_config())

    def test_sobol_gives_up_on_an_exhausted_space(self):
        config = _tiny_config()
        assert len(generate_variants(2, "sobol", 0, config=config)) == 2
        with pytest.raises(ValueError, match="found only 1 of 2"):
            generate_variants(3, "sobol", 0, config=config)


class TestSobolSpread:
    @pytest.mark.parametrize("seed", [0, 1, 2])
    def test_sobol_fills_every_grid_value_more_evenly_than_random(self, seed):
        # Arrange: 128 drawn rows; a scrambled Sobol' block of 2^7 puts exactly one point
        # in each 1/128 slice of every coordinate, so each of the m grid values of a
        # parameter is hit floor or ceil(128/m) times (give or take one). Independent
        # draws scatter around 128/m with a standard deviation of about sqrt(128/m).
        n = 129
        sobol = generate_variants(n, "sobol", seed)
        random = generate_variants(n, "random", seed)
        config = sobol.config

        def deviations(variants):
            worst, chi2 = 0.0, 0.0
            for name, value_range in config.named_ranges():
                if name.startswith("weights."):
                    continue
                values = getattr(variants, name)[1:].astype(np.float64)
                counts = np.bincount(value_range.index_of(values), minlength=value_range.size)
                expected = (n - 1) / value_range.size
                worst = max(worst, float(np.max(np.abs(counts - expected))))
                chi2 += float(np.sum((counts - expected) ** 2 / expected))
            return worst, chi2

        # Act
        sobol_worst, sobol_chi2 = deviations(sobol)
        random_worst, random_chi2 = deviations(random)

        # Assert
        assert sobol_worst <= 2.0
        assert random_worst > 2.0
        assert sobol_chi2 < random_chi2 / 5


class TestGrid:
    def test_first_grid_points_are_the_corners_of_the_axes(self):
        # Act
        variants = generate_variants(33, "grid", 0)

        # Assert: every axis at one of its ends, weights and the rest at the defaults.
        config = variants.config
        for axis in ("stop_loss_roi", "take_profit_roi", "leverage", "strong_buy", "buy"):
            value_range = getattr(config, axis)
            values = getattr(variants, axis)[1:]
            assert set(values.tolist()) == {value_range.low, value_range.high}, axis
        corners = np.stack(
            [variants.stop_loss_roi, variants.take_profit_roi, variants.leverage,
             variants.strong_buy, variants.buy], axis=1,
        )[1:]
        assert len(np.unique(corners, axis=0)) == 32
        assert np.all(variants.weights[1:] == variants.weights[0])
        assert np.all(variants.timeframe == variants.timeframe[0])
        assert np.all(variants.trailing_move == 0.05)

    def test_grid_sell_thresholds_mirror_the_buy_thresholds(self):
        variants = generate_variants(300, "grid", 0)
        assert np.allclose(variants.strong_sell[1:], -variants.strong_buy[1:], atol=1e-12)
        assert np.allclose(variants.sell[1:], -variants.buy[1:], atol=1e-12)

    def test_grid_midpoints_follow_the_corners(self):
        variants = generate_variants(1 + 243, "grid", 0)
        # 3 values per axis (both ends and the middle) once the 243-point level is full.
        assert sorted(set(variants.stop_loss_roi[1:].tolist())) == [0.3, 1.1, 2.0]
        assert sorted(set(variants.leverage[1:].tolist())) == [3, 11, 20]

    def test_grid_larger_than_asked_is_refused_with_its_size(self):
        # Arrange: 2 stop-loss x 2 take-profit values; the baseline is one of the 4 points.
        config = OptimizerConfig(
            stop_loss_roi=Range(0.5, 0.6, 0.1, 0.5),
            take_profit_roi=Range(1.0, 1.5, 0.5, 1.0),
            leverage=Range(10, 10, 1, 10),
            strong_buy=Range(0.65, 0.65, 0.05, 0.65),
            buy=Range(0.4, 0.4, 0.05, 0.4),
        )

        # Act / Assert
        assert len(generate_variants(4, "grid", 0, config=config)) == 4
        with pytest.raises(ValueError, match="only 3 points distinct from the baseline"):
            generate_variants(5, "grid", 0, config=config)
        with pytest.raises(ValueError, match="the grid has only 4 points"):
            generate_variants(6, "grid", 0, config=config)


class TestProfiles:
    POINTS: ClassVar[dict[str, tuple[int, ...]]] = {
        "default": (25, 20, 20, 15, 20, 10, 10, 15, 10, 0),
        "conservative": (15, 10, 25, 10, 30, 5, 5, 10, 5, 0),
        "aggressive": (30, 25, 15, 20, 10, 15, 5, 20, 15, 15),
        "balanced": (20, 15, 15, 15, 15, 10, 10, 12, 8, 8),
        "scalping": (20, 25, 10, 20, 5, 15, 5, 18, 12, 12),
        "swing": (20, 15, 30, 15, 25, 5, 10, 12, 10, 5),
    }

    def test_profiles_mode_rows_are_the_named_profiles_in_order(self):
        # Act
        variants = generate_variants(6, "profiles", 0)

        # Assert: "default" equals the baseline, so it is skipped.
        for row, name in enumerate(PROFILE_NAMES[1:], start=1):
            assert variants.config_hash[row] == profile(name).config_hash(), name

    @pytest.mark.parametrize("name", PROFILE_NAMES)
    def test_profile_weights_are_the_documented_points_normalised(self, name):
        # Arrange
        points = np.array(self.POINTS[name], dtype=np.float64)

        # Act
        variants = generate_variants(1, "profiles", 0, baseline=profile(name))

        # Assert
        assert np.allclose(variants.weights[0], points / points.sum(), rtol=0, atol=1e-15)

    def test_profiles_map_rsi_levels_and_risk_as_documented(self):
        scalping, swing = profile("scalping"), profile("swing")
        assert (scalping.rsi_oversold, scalping.rsi_overbought) == (35.0, 65.0)
        assert (swing.rsi_oversold, swing.rsi_overbought) == (25.0, 75.0)
        conservative, aggressive = profile("conservative"), profile("aggressive")
        assert (conservative.strong_buy, conservative.buy, conservative.sell,
                conservative.strong_sell) == (0.7, 0.5, -0.5, -0.7)
        assert (aggressive.strong_buy, aggressive.buy, aggressive.sell,
                aggressive.strong_sell) == (0.55, 0.35, -0.35, -0.55)
        assert (conservative.stop_loss_roi, conservative.take_profit_roi,
                conservative.break_even_buffer, conservative.leverage,
                conservative.max_hold_s) == (0.6, 2.0, 0.2, 5, 1800.0)
        assert (aggressive.stop_loss_roi, aggressive.take_profit_roi,
                aggressive.break_even_buffer, aggressive.leverage,
                aggressive.max_hold_s) == (1.6, 4.0, 0.35, 15, 900.0)

    def test_balanced_keeps_every_non_weight_parameter_at_the_default(self):
        balanced, default = _fields(profile("balanced")), _fields(profile("default"))
        del balanced["weights"], default["weights"]
        assert balanced == default

    def test_asking_for_more_profiles_than_exist_is_refused(self):
        with pytest.raises(ValueError, match="only 5 profiles differ from it"):
            generate_variants(7, "profiles", 0)

    def test_unknown_profile_is_refused(self):
        with pytest.raises(ValueError, match="unknown profile 'yolo'"):
            profile("yolo")
