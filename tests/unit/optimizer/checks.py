"""Invariants every VariantSet made by the generator must satisfy, shared by the tests."""

from __future__ import annotations

import numpy as np

from liveopt.optimizer import (
    COLUMN_DTYPES,
    FLOAT_PARAMS,
    WEIGHT_NAMES,
    Origin,
    VariantParams,
    VariantSet,
    normalise_weights,
)

# Rows whose every value must be a grid point (weights included).
DRAWN = (Origin.RANDOM, Origin.SOBOL)


def on_grid_or_default(value_range, values: np.ndarray) -> np.ndarray:
    return (value_range.index_of(values) >= 0) | np.isclose(values, value_range.default)


def assert_variant_set_invariants(variants: VariantSet, n: int, baseline: VariantParams):
    config = variants.config
    assert len(variants) == n

    # Dtypes, shapes, contiguity.
    for name, dtype in COLUMN_DTYPES.items():
        array = getattr(variants, name)
        assert array.dtype == dtype, name
        assert array.flags.c_contiguous, name
        expected = (n, len(WEIGHT_NAMES)) if name.startswith("weight") else (n,)
        assert array.shape == expected, name
    assert variants.config_hash.dtype == np.uint64

    # Row 0 is the baseline.
    assert variants.origin[0] == Origin.BASELINE
    assert int(variants.config_hash[0]) == baseline.config_hash()
    assert np.array_equal(variants.weight_points[0], np.asarray(baseline.weights))
    assert np.all(variants.origin[1:] != Origin.BASELINE)

    # Weights: non-negative, normalised, from their points.
    assert np.all(variants.weights >= 0.0)
    assert np.all(np.abs(variants.weights.sum(axis=1) - 1.0) <= 1e-12)
    assert np.array_equal(variants.weights, normalise_weights(variants.weight_points))

    # No duplicates: by hash and by exact parameter values.
    assert len(np.unique(variants.config_hash)) == n
    table = np.concatenate(
        [
            np.round(variants.weights, 12),
            np.stack([getattr(variants, p) for p in FLOAT_PARAMS], axis=1),
            variants.leverage[:, None],
            variants.timeframe[:, None],
        ],
        axis=1,
    )
    assert len(np.unique(table, axis=0)) == n

    # Every generated value within its Range; drawn rows exactly on the grid.
    generated = slice(1, None)
    drawn = np.isin(variants.origin, DRAWN)
    for name, value_range in config.named_ranges():
        if name.startswith("weights."):
            values = variants.weight_points[:, WEIGHT_NAMES.index(name[len("weights.") :])]
        else:
            values = getattr(variants, name).astype(np.float64)
        assert np.all(value_range.contains(values[generated])), name
        snapped = on_grid_or_default(value_range, values[generated])
        if name.startswith("weights."):
            # Profile points are the origin's (12, 8, 18...), not multiples of the step.
            snapped |= variants.origin[generated] == Origin.PROFILE
        assert np.all(snapped), name
        assert np.all(value_range.index_of(values[drawn]) >= 0), name
    assert np.all((variants.timeframe >= 0) & (variants.timeframe < len(config.timeframes)))


def assert_sets_identical(a: VariantSet, b: VariantSet) -> None:
    for name in (*COLUMN_DTYPES, "config_hash"):
        left, right = getattr(a, name), getattr(b, name)
        assert left.dtype == right.dtype and np.array_equal(left, right), name
