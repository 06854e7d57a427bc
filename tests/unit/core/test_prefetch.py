"""The prefetch intrinsic: a hint that compiles into a kernel and changes nothing."""

import numpy as np
import pytest
from numba import njit
from numba.core.errors import TypingError

from liveopt._core.prefetch import prefetch_nb


@njit(_nrt=False)
def _sum_with_prefetch(rows, order):
    total = 0.0
    for k in range(order.shape[0]):
        if k + 4 < order.shape[0]:
            prefetch_nb(rows, order[k + 4], 1)
        total += rows[order[k], 1]
    return total


def test_prefetching_rows_leaves_the_computation_and_the_array_unchanged():
    rng = np.random.default_rng(3)
    rows = rng.random((5_000, 7))
    order = rng.integers(0, len(rows), 20_000)
    before = rows.copy()
    assert _sum_with_prefetch(rows, order) == pytest.approx(rows[order, 1].sum(), rel=1e-12)
    assert np.array_equal(rows, before)
    asm = next(iter(_sum_with_prefetch.inspect_asm().values()))
    assert "prefetch" in asm  # the hint really is in the compiled code


def test_prefetch_accepts_only_two_dimensional_arrays():
    @njit(_nrt=False)
    def one_dimensional(values):
        prefetch_nb(values, 0, 0)

    with pytest.raises(TypingError):
        one_dimensional(np.zeros(3))
