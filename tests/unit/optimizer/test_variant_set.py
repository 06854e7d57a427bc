"""VariantSet: row access, take/concat, read-only columns and the documented config_hash."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from liveopt.optimizer import (
    FLOAT_PARAMS,
    OptimizerConfig,
    Origin,
    VariantParams,
    VariantSet,
    generate_variants,
    profile,
)
from tests.unit.optimizer.checks import assert_sets_identical


@pytest.fixture(scope="module")
def variants() -> VariantSet:
    return generate_variants(20, "random", seed=7)


class TestRowAccess:
    def test_getitem_returns_the_row_as_variant_params(self, variants):
        # Act
        row = variants[3]

        # Assert
        assert isinstance(row, VariantParams)
        assert row.weights == tuple(variants.weights[3])
        assert row.stop_loss_roi == variants.stop_loss_roi[3]
        assert row.leverage == variants.leverage[3]
        assert row.timeframe == variants.config.timeframes[variants.timeframe[3]]

    def test_negative_index_counts_from_the_end(self, variants):
        assert variants[-1] == variants[len(variants) - 1]

    def test_out_of_range_index_raises(self, variants):
        with pytest.raises(IndexError, match="variant 20 out of range"):
            variants[20]

    def test_slices_are_refused_in_favour_of_take(self, variants):
        with pytest.raises(TypeError, match="use take"):
            variants[1:3]

    def test_columns_are_read_only(self, variants):
        with pytest.raises(ValueError, match="read-only"):
            variants.stop_loss_roi[0] = 1.0


class TestTakeAndConcat:
    def test_take_returns_the_rows_in_the_given_order(self, variants):
        # Act
        taken = variants.take([5, 0, 2])

        # Assert
        assert len(taken) == 3
        assert taken[0] == variants[5]
        assert taken[1] == variants[0]
        assert np.array_equal(taken.config_hash, variants.config_hash[[5, 0, 2]])

    def test_concat_appends_the_other_rows(self, variants):
        # Arrange
        head, tail = variants.take(range(8)), variants.take(range(8, 20))

        # Act
        joined = head.concat(tail)

        # Assert
        assert_sets_identical(joined, variants)

    def test_concat_of_sets_from_different_configs_is_refused(self, variants):
        other = generate_variants(2, "random", 1, config=OptimizerConfig(timeframes=("5m",)))
        with pytest.raises(ValueError, match="different configs"):
            variants.concat(other)

    def test_weights_that_do_not_sum_to_one_are_refused(self, variants):
        columns = {name: np.array(a) for name, a in variants.columns().items()}
        columns["weights"][1] *= 1.01
        with pytest.raises(ValueError, match="sum to 1"):
            VariantSet(variants.config, columns)


class TestConfigHash:
    def test_hash_is_blake2b_of_the_documented_bytes(self, variants):
        # Arrange: rebuild row 4's bytes by hand from the module docstring.
        row = 4
        numbers = [*variants.weights[row], *(getattr(variants, p)[row] for p in FLOAT_PARAMS)]
        payload = b"liveopt.variant.v1"
        payload += (np.round(np.array(numbers), 12) + 0.0).astype("<f8").tobytes()
        payload += np.int64(variants.leverage[row]).astype("<i8").tobytes()
        payload += variants.config.timeframes[variants.timeframe[row]].encode()

        # Act
        expected = int.from_bytes(hashlib.blake2b(payload, digest_size=8).digest(), "little")

        # Assert
        assert int(variants.config_hash[row]) == expected

    def test_row_hash_equals_the_hash_of_its_variant_params(self, variants):
        for row in range(len(variants)):
            assert variants[row].config_hash() == int(variants.config_hash[row])

    def test_proportional_weight_points_are_the_same_variant(self):
        base = profile("balanced")
        doubled = VariantParams(
            **{**_fields(base), "weights": tuple(2 * w for w in base.weights)}
        )
        assert doubled.config_hash() == base.config_hash()

    def test_any_parameter_change_changes_the_hash(self):
        base = profile("default")
        for name in (*FLOAT_PARAMS, "leverage"):
            changed = VariantParams(**{**_fields(base), name: getattr(base, name) + 1})
            assert changed.config_hash() != base.config_hash(), name

    def test_hash_does_not_depend_on_the_order_of_config_timeframes(self):
        # Arrange
        forward = OptimizerConfig(timeframes=("5m", "1h"))
        backward = OptimizerConfig(timeframes=("1h", "5m"))
        baseline = profile("aggressive")

        # Act
        a = generate_variants(1, "random", 0, config=forward, baseline=baseline)
        b = generate_variants(1, "random", 0, config=backward, baseline=baseline)

        # Assert
        assert a.timeframe[0] != b.timeframe[0]
        assert a.config_hash[0] == b.config_hash[0]

    def test_repr_counts_rows_by_origin(self, variants):
        assert repr(variants) == "VariantSet(n=20, baseline=1, random=19)"
        assert variants.origin[0] == Origin.BASELINE


def _fields(params: VariantParams) -> dict:
    return {name: getattr(params, name) for name in params.__struct_fields__}


def test_a_baseline_with_unordered_thresholds_is_rejected_with_its_values():
    fields = {name: getattr(profile("default"), name)
              for name in profile("default").__struct_fields__}
    fields.update(buy=0.7, strong_buy=0.65)
    with pytest.raises(ValueError, match="strong_buy >= buy > sell >= strong_sell"):
        generate_variants(1, "random", 0, baseline=VariantParams(**fields))
