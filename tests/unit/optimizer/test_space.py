"""OptimizerConfig and Range: defaults, validation messages and decoding from plain data."""

from __future__ import annotations

import re

import msgspec
import pytest

from liveopt.optimizer import OptimizerConfig, Range, WeightRanges


class TestDefaults:
    def test_default_config_has_the_origin_bounds(self):
        # Arrange / Act
        config = OptimizerConfig()

        # Assert
        assert config.stop_loss_roi == Range(0.3, 2.0, 0.1, 0.5)
        assert config.take_profit_roi == Range(1.0, 5.0, 0.5, 2.0)
        assert config.leverage == Range(3, 20, 1, 10)
        assert config.weights.orderbook == Range(0, 15, 5, 0)
        assert config.timeframes == ("1m", "5m", "15m", "30m", "1h")
        assert config.default_timeframe == "5m"

    def test_default_weight_points_are_the_origin_signal_weights(self):
        defaults = [r.default for r in OptimizerConfig().weights.ranges()]
        assert defaults == [25, 20, 20, 15, 20, 10, 10, 15, 10, 0]

    def test_range_stores_integer_bounds_as_floats(self):
        value_range = Range(0, 40, 5, 25)
        assert all(
            type(getattr(value_range, b)) is float for b in ("low", "high", "step", "default")
        )

    def test_range_grid_values_are_exact_decimals(self):
        # 0.3 + 2 * 0.1 is 0.5000000000000001 in floats; the grid must give 0.5.
        values = Range(0.3, 2.0, 0.1, 0.5).values()
        assert len(values) == 18
        assert values[2] == 0.5
        assert values[-1] == 2.0

    def test_range_index_of_marks_off_grid_values(self):
        value_range = Range(0.02, 0.1, 0.02, 0.05)
        assert value_range.index_of([0.02, 0.05, 0.1, 0.12]).tolist() == [0, -1, 4, -1]


class TestValidation:
    @pytest.mark.parametrize(
        ("fields", "message"),
        [
            ({"stop_loss_roi": Range(0.3, 2.0, 0.1, 2.5)},
             "stop_loss_roi: default 2.5 is above high 2.0"),
            ({"take_profit_roi": Range(1.0, 5.0, 0.5, 0.5)},
             "take_profit_roi: default 0.5 is below low 1.0"),
            ({"max_hold_s": Range(600, 3600, 0, 1800)}, "max_hold_s: step 0.0 must be > 0"),
            ({"leverage": Range(20, 3, 1, 10)}, "leverage: low 20.0 is above high 3.0"),
            ({"stop_loss_roi": Range(0.3, 2.0, 0.3, 0.6)},
             r"stop_loss_roi: \(high - low\) / step .* is not an integer"),
            ({"leverage": Range(3, 20, 0.5, 10)}, "leverage: step 0.5 is not an integer"),
            ({"leverage": Range(0, 20, 1, 10)}, r"leverage: low 0.0 must be >= 1.0"),
            ({"stop_loss_roi": Range(0.0, 2.0, 0.1, 0.5)}, "stop_loss_roi: low 0.0 must be > 0"),
            ({"strong_buy": Range(0.5, 1.2, 0.05, 0.65)}, "strong_buy: high 1.2 must be <= 1.0"),
            ({"weights": WeightRanges(rsi=Range(-5, 40, 5, 25))},
             r"weights.rsi: low -5.0 must be >= 0.0"),
            ({"strong_buy": Range(0.45, 0.8, 0.05, 0.65)},
             "strong_buy: low 0.45 is below buy high 0.5"),
            ({"strong_sell": Range(-0.8, -0.45, 0.05, -0.65)},
             "strong_sell: high -0.45 is above sell low -0.5"),
            ({"rsi_oversold": Range(20, 70, 5, 30)},
             "rsi_oversold: high 70.0 must be below rsi_overbought low 65.0"),
            ({"sell": Range(-0.5, 0.0, 0.05, -0.4)}, "sell: high 0.0 must be < 0"),
            ({"timeframes": ("1m", "5min")}, "timeframes: '5min' must be given by its canonical"),
            ({"timeframes": ("1m", "2m")}, "unknown timeframe '2m'"),
            ({"timeframes": ("5m", "5m")}, "timeframes: duplicate entries"),
            ({"timeframes": ()}, "timeframes: at least one timeframe"),
            ({"default_timeframe": "4h"}, "default_timeframe: '4h' is not one of timeframes"),
        ],
    )
    def test_invalid_field_raises_naming_field_and_bound(self, fields, message):
        with pytest.raises(ValueError, match=message):
            OptimizerConfig(**fields)

    def test_all_weights_fixed_at_zero_is_rejected(self):
        # Arrange
        zero = Range(0, 0, 5, 0)
        weights = WeightRanges(**dict.fromkeys(WeightRanges.__struct_fields__, zero))

        # Act / Assert
        with pytest.raises(ValueError, match="weights: every weight range has high 0"):
            OptimizerConfig(weights=weights)

    def test_threshold_ranges_may_share_an_end_point(self):
        # The defaults meet at 0.5 / -0.5; that is allowed.
        config = OptimizerConfig(strong_buy=Range(0.5, 0.8, 0.05, 0.5))
        assert config.strong_buy.low == config.buy.high

    def test_default_off_the_step_grid_is_allowed(self):
        # The origin's trailing_move default 0.05 lies between points of its 0.02 grid.
        assert OptimizerConfig().trailing_move.index_of(0.05) == -1


class TestFromDict:
    def test_round_trip_through_builtins_gives_an_equal_config(self):
        # Arrange
        config = OptimizerConfig(leverage=Range(5, 10, 1, 5), timeframes=("5m", "1h"))

        # Act
        decoded = OptimizerConfig.from_dict(msgspec.to_builtins(config))

        # Assert
        assert decoded == config

    def test_missing_fields_take_defaults_and_integers_become_floats(self):
        config = OptimizerConfig.from_dict({"leverage": {"low": 2, "high": 4, "step": 1,
                                                         "default": 3}})
        assert config.leverage == Range(2.0, 4.0, 1.0, 3.0)
        assert config.stop_loss_roi == OptimizerConfig().stop_loss_roi

    def test_unknown_top_level_field_is_rejected_by_name(self):
        with pytest.raises(msgspec.ValidationError, match="unknown field `stop_loss`"):
            OptimizerConfig.from_dict({"stop_loss": {"low": 1, "high": 2, "step": 1,
                                                     "default": 1}})

    def test_unknown_weight_is_rejected_by_name_and_path(self):
        with pytest.raises(msgspec.ValidationError, match=r"unknown field `rsx` - at `\$.weights`"):
            OptimizerConfig.from_dict({"weights": {"rsx": {"low": 0, "high": 5, "step": 5,
                                                           "default": 0}}})

    def test_bound_error_from_dict_names_the_field(self):
        message = re.escape("stop_loss_roi: default 2.5 is above high 2.0")
        with pytest.raises(ValueError, match=message):
            OptimizerConfig.from_dict(
                {"stop_loss_roi": {"low": 0.3, "high": 2.0, "step": 0.1, "default": 2.5}}
            )
