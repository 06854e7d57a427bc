"""mutate: keeps size and baseline, always renormalises, never touches its input."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from liveopt.optimizer import (
    COLUMN_DTYPES,
    FLOAT_PARAMS,
    OptimizerConfig,
    Origin,
    VariantSet,
    generate_variants,
    mutate,
    profile,
)
from tests.unit.optimizer.checks import assert_sets_identical, assert_variant_set_invariants

SCALARS = (*FLOAT_PARAMS, "leverage", "timeframe")


def _snapshot(variants: VariantSet) -> dict[str, np.ndarray]:
    return {name: getattr(variants, name).copy() for name in (*COLUMN_DTYPES, "config_hash")}


def _changed_entries(parent: VariantSet, child: VariantSet) -> np.ndarray:
    # (rows - 1, parameters) booleans: which scalar parameters and weight points moved.
    scalars = np.stack(
        [getattr(parent, s)[1:] != getattr(child, s)[1:] for s in SCALARS], axis=1
    )
    return np.concatenate([child.weight_points[1:] != parent.weight_points[1:], scalars], axis=1)


@pytest.fixture(scope="module")
def parents() -> VariantSet:
    return generate_variants(200, "random", seed=3)


class TestMutate:
    def test_mutated_set_satisfies_the_invariants(self, parents):
        children = mutate(parents, 0.3, seed=1)
        assert_variant_set_invariants(children, len(parents), profile("default"))

    def test_baseline_row_is_kept_unchanged(self, parents):
        children = mutate(parents, 1.0, seed=1)
        assert children[0] == parents[0]
        assert children.config_hash[0] == parents.config_hash[0]
        assert children.origin[0] == Origin.BASELINE

    def test_rate_one_moves_every_parameter_of_every_mutated_row(self, parents):
        # Act
        children = mutate(parents, 1.0, seed=2)

        # Assert: mutated rows differ in every parameter (all have >1 grid value here);
        # the few duplicates replaced by fresh random rows are exempt.
        mutated = children.origin[1:] == Origin.MUTATION
        assert mutated.mean() > 0.95
        assert np.all(_changed_entries(parents, children)[mutated])
        assert np.all(children.config_hash[1:] != parents.config_hash[1:])

    def test_tiny_rate_changes_little(self, parents):
        # Act
        children = mutate(parents, 0.002, seed=2)

        # Assert: about 0.2 % of the 199 x 26 entries, far from most.
        changed = _changed_entries(parents, children)
        assert changed.mean() < 0.01
        assert np.count_nonzero(np.any(changed, axis=1)) < 40

    def test_weights_are_renormalised_whenever_points_move(self, parents):
        children = mutate(parents, 0.5, seed=4)
        sums = children.weights.sum(axis=1)
        assert np.all(np.abs(sums - 1.0) <= 1e-12)
        assert np.allclose(
            children.weights, children.weight_points / children.weight_points.sum(axis=1)[:, None],
            rtol=0, atol=1e-15,
        )

    def test_same_seed_gives_identical_children_and_another_seed_does_not(self, parents):
        assert_sets_identical(mutate(parents, 0.2, 9), mutate(parents, 0.2, 9))
        assert not np.array_equal(
            mutate(parents, 0.2, 9).config_hash, mutate(parents, 0.2, 10).config_hash
        )

    def test_duplicates_are_replaced_by_fresh_random_rows(self):
        # Arrange: a set whose rows 1 and 2 repeat row 0 (the baseline).
        base = generate_variants(2, "random", 0)
        parents = base.take([0, 0, 0, 1])

        # Act: a tiny rate leaves rows 1 and 2 (almost surely) equal to the baseline.
        children = mutate(parents, 1e-9, seed=0)

        # Assert
        assert len(children) == 4
        assert len(np.unique(children.config_hash)) == 4
        assert children.origin[1] == Origin.RANDOM and children.origin[2] == Origin.RANDOM
        assert children.config_hash[3] == parents.config_hash[3]

    def test_profile_points_off_the_grid_can_be_mutated(self):
        parents = generate_variants(6, "profiles", 0)
        children = mutate(parents, 1.0, 0)
        assert_variant_set_invariants(children, 6, profile("default"))

    @pytest.mark.parametrize("rate", [0, -0.1, 1.5, float("nan"), "0.5", True])
    def test_rate_outside_zero_to_one_is_refused(self, parents, rate):
        with pytest.raises(ValueError, match="rate must be"):
            mutate(parents, rate, 0)

    def test_config_with_other_timeframes_is_refused(self, parents):
        with pytest.raises(ValueError, match="differ from the variant set's"):
            mutate(parents, 0.1, 0, config=OptimizerConfig(timeframes=("5m",)))

    def test_a_set_of_only_the_baseline_is_returned_as_is(self):
        lone = generate_variants(1, "random", 0)
        assert_sets_identical(mutate(lone, 1.0, 0), lone)

    @settings(max_examples=40, deadline=None)
    @given(
        mode=st.sampled_from(("random", "sobol", "grid")),
        n=st.integers(1, 300),
        rate=st.floats(1e-6, 1.0),
        seed=st.integers(0, 2**32),
    )
    def test_mutation_keeps_size_baseline_and_normalisation_and_spares_its_input(
        self, mode, n, rate, seed
    ):
        # Arrange
        parents = generate_variants(n, mode, seed)
        before = _snapshot(parents)

        # Act
        children = mutate(parents, rate, seed + 1)

        # Assert
        assert_variant_set_invariants(children, n, profile("default"))
        assert children[0] == parents[0]
        for name, array in before.items():
            assert np.array_equal(getattr(parents, name), array), name
