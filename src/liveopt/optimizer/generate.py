"""Variant generation: random, Sobol', grid and named-profile modes, and mutation.

Every mode puts the baseline in row 0, keeps every drawn value on its Range's step grid,
removes duplicates (see ``variants`` for what makes two rows equal) and is deterministic
for a seed: randomness comes only from ``numpy.random.Generator(PCG64(seed))`` and from
SciPy's Sobol' engine seeded the same way, never from a global generator.

This replaces the origin's generator (``origin-system.md`` C.12), which was deterministic,
capped at 8 variants, never normalised weights and, in the PR design, renormalised after
mutation only some of the time.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Iterator

import numpy as np
from scipy.stats import qmc

from liveopt.optimizer.space import FLOAT_PARAMS, WEIGHT_NAMES, OptimizerConfig, Range
from liveopt.optimizer.variants import (
    COLUMN_DTYPES,
    Origin,
    VariantParams,
    VariantSet,
    _row_keys,
    normalise_weights,
)

MODES: tuple[str, ...] = ("random", "sobol", "grid", "profiles")
PROFILE_NAMES: tuple[str, ...] = (
    "default",
    "conservative",
    "aggressive",
    "balanced",
    "scalping",
    "swing",
)
DEFAULT_CONFIG = OptimizerConfig()

Columns = dict[str, np.ndarray]

# Random and mutation refills draw at least this many candidates per round, so a small,
# nearly exhausted space does not take one round per missing row.
_MIN_DRAW = 64
_MAX_ROUNDS = 100

# Profile weights in points, WEIGHT_NAMES order (origin B.2.3: rsi/wr/macd/ao/ema/stoch/
# bb/kdj/obv/dom). "default" uses the config's weight defaults instead.
_PROFILE_POINTS: dict[str, tuple[float, ...]] = {
    "conservative": (15, 10, 25, 10, 30, 5, 5, 10, 5, 0),
    "aggressive": (30, 25, 15, 20, 10, 15, 5, 20, 15, 15),
    "balanced": (20, 15, 15, 15, 15, 10, 10, 12, 8, 8),
    "scalping": (20, 25, 10, 20, 5, 15, 5, 18, 12, 12),
    "swing": (20, 15, 30, 15, 25, 5, 10, 12, 10, 5),
}
# Values given directly in our units: RSI levels (B.2.3 scalping 35/65, swing 25/75),
# PR-03 thresholds on the [-1, 1] score, leverage and max hold (B.1.2).
_PROFILE_VALUES: dict[str, dict[str, float]] = {
    "conservative": {
        "strong_buy": 0.7, "buy": 0.5, "sell": -0.5, "strong_sell": -0.7,
        "leverage": 5, "max_hold_s": 1800,
    },
    "aggressive": {
        "strong_buy": 0.55, "buy": 0.35, "sell": -0.35, "strong_sell": -0.55,
        "leverage": 15, "max_hold_s": 900,
    },
    "scalping": {"rsi_oversold": 35, "rsi_overbought": 65},
    "swing": {"rsi_oversold": 25, "rsi_overbought": 75},
}
# PR-03 risk values are fractions on other ranges than ours, so each is placed at the
# same relative position of our Range: (value, PR-03 low, PR-03 high). Stop-loss
# magnitudes are used (PR-03 writes them negative); trailing activation maps onto
# break_even_buffer, the ROI above break-even at which our trailing stop arms.
_PROFILE_MAPPED: dict[str, dict[str, tuple[float, float, float]]] = {
    "conservative": {
        "stop_loss_roi": (0.05, 0.03, 0.15),
        "take_profit_roi": (0.08, 0.03, 0.20),
        "break_even_buffer": (0.08, 0.05, 0.15),
    },
    "aggressive": {
        "stop_loss_roi": (0.12, 0.03, 0.15),
        "take_profit_roi": (0.15, 0.03, 0.20),
        "break_even_buffer": (0.12, 0.05, 0.15),
    },
}

# Grid mode: the axes, each walked over its whole step grid. strong_sell follows
# strong_buy and sell follows buy (see _paired_index).
_GRID_AXES: tuple[str, ...] = ("stop_loss_roi", "take_profit_roi", "leverage", "strong_buy", "buy")
_GRID_PAIRS: dict[str, str] = {"strong_buy": "strong_sell", "buy": "sell"}


def profile(name: str, config: OptimizerConfig = DEFAULT_CONFIG) -> VariantParams:
    """Return the named signal profile of the origin system as a :class:`VariantParams`.

    Weights are returned in the origin's points (B.2.3), e.g. balanced
    20/15/15/15/15/10/10/12/8/8; a set normalises them. Points are not snapped to the
    step-5 grid (balanced, scalping and swing use 12, 8, 18...), only clipped to a custom
    config's bounds. ``"default"`` is the config's defaults, i.e. the default baseline.
    Every other parameter is the config default except:

    - scalping: RSI oversold 35 / overbought 65; swing: 25 / 75 (B.2.3). Their %R,
      Stochastic and order-book thresholds have no field here and are not mapped.
    - conservative and aggressive take the PR-03 (B.1.2) thresholds ±0.7/±0.5 and
      ±0.55/±0.35, leverage 5 and 15, and max hold 1800 s and 900 s (the upper end of
      their hold windows). PR-03's stop-loss 0.05/0.12 (range 0.03-0.15), take-profit
      0.08/0.15 (0.03-0.20) and trailing activation 0.08/0.12 (0.05-0.15) are fractions
      on other ranges, so each is put at the same relative position of our
      ``stop_loss_roi``, ``take_profit_roi`` and ``break_even_buffer`` Ranges. With the
      default config: stop-loss 0.6 / 1.6, take-profit 2.0 / 4.0, break-even buffer
      0.2 / 0.35 (percent ROI).
    - DOM: the profile's orderbook points are used as given; a zero weight is "off".

    Values are snapped to the nearest grid value of the config's Range.

    Raises
    ------
    ValueError
        If ``name`` is not one of :data:`PROFILE_NAMES`.
    """
    if name not in PROFILE_NAMES:
        raise ValueError(f"unknown profile {name!r}; known: {', '.join(PROFILE_NAMES)}")
    values = _default_values(config)
    if name in _PROFILE_POINTS:
        values["weights"] = tuple(
            float(min(max(points, r.low), r.high))
            for points, r in zip(_PROFILE_POINTS[name], config.weights.ranges(), strict=True)
        )
    for field, value in _PROFILE_VALUES.get(name, {}).items():
        values[field] = _snap(getattr(config, field), value)
    for field, (value, source_low, source_high) in _PROFILE_MAPPED.get(name, {}).items():
        target: Range = getattr(config, field)
        position = (value - source_low) / (source_high - source_low)
        values[field] = _snap(target, target.low + position * (target.high - target.low))
    values["leverage"] = int(values["leverage"])
    return VariantParams(**values)


def generate_variants(
    n: int,
    mode: str,
    seed: int,
    config: OptimizerConfig = DEFAULT_CONFIG,
    baseline: VariantParams | None = None,
) -> VariantSet:
    """Return ``n`` distinct variants, the baseline first, drawn from ``config``.

    Parameters
    ----------
    n : int
        Number of rows including the baseline (>= 1).
    mode : {"random", "sobol", "grid", "profiles"}
        - ``"random"``: every parameter uniform on its step grid (weights on their point
          grids, then normalised; a row whose points are all zero is redrawn), timeframe
          uniform over ``config.timeframes``.
        - ``"sobol"``: a scrambled Sobol' sequence in 26 dimensions (10 weights, 14 float
          parameters, leverage, timeframe); coordinate ``u`` of a dimension with ``m``
          grid values maps to index ``floor(u * m)``. The first draw uses
          ``random_base2``: a block of 2^k points (k the smallest with 2^k >= n - 1) is
          the size at which Sobol' points are balanced (SciPy warns for a first draw of
          any other size), and rows are used in sequence order, so the first n - 1
          points of the sequence are used. If duplicates or all-zero weights leave rows
          missing, the same sequence continues with ``random`` in small draws; balance
          only matters for the first block, and this keeps memory bounded.
        - ``"grid"``: deterministic; ``seed`` is not used. Weights, timeframe and every
          other parameter stay at the config defaults while five axes walk their full
          step grids: ``stop_loss_roi``, ``take_profit_roi``, ``leverage``,
          ``strong_buy`` and ``buy``. ``strong_sell`` mirrors ``strong_buy`` and ``sell``
          mirrors ``buy`` (index ``k`` of ``m`` maps to index
          ``round((1 - k / (m - 1)) * (m' - 1))`` of the paired Range, the mirror image
          for the default symmetric ranges; an axis with one value leaves its pair at
          the default). The grid has ``prod(sizes)`` points (102,060
          with the defaults). Points come coarse to fine: each axis orders its values
          ends first, then midpoints of the gaps, breadth first (0.3, 2.0, 1.1, 0.7,
          1.5, ... for ``stop_loss_roi``); a point's level is the highest position of
          its values in those orders; points are sorted by level, then by their
          positions in axis order. So the first 32 points are the corners, the first
          243 add every midpoint, and any prefix covers the box evenly. A point equal
          to the baseline is skipped. Raises if ``n - 1`` exceeds the points distinct
          from the baseline.
        - ``"profiles"``: the named profiles of :func:`profile` in :data:`PROFILE_NAMES`
          order, skipping any equal to the baseline (``"default"`` is, unless a baseline
          is given); ``seed`` is not used. Raises if ``n - 1`` exceeds what is left.
    seed : int
        Seed (>= 0) for ``PCG64`` or for the Sobol' scrambling.
    config : OptimizerConfig
        The search space.
    baseline : VariantParams, optional
        Row 0. Defaults to the config defaults (:func:`profile` ``"default"``). A given
        baseline is kept as-is (weights normalised); it need not lie on the grid, but
        its timeframe must be one of ``config.timeframes``. It is never removed; a
        generated duplicate of it is.

    Returns
    -------
    VariantSet
        ``n`` rows; ``origin`` is BASELINE for row 0 and the mode's code for the rest.

    Raises
    ------
    ValueError
        On a bad argument, or when the space holds fewer than ``n`` distinct variants
        (grid, profiles), or when random or Sobol' draws fail to find them within a
        bounded number of rounds (the space is, or is nearly, exhausted).
    """
    _check_int("n", n, 1)
    _check_int("seed", seed, 0)
    if mode not in MODES:
        raise ValueError(f"unknown mode {mode!r}; known: {', '.join(MODES)}")
    if baseline is None:
        baseline = profile("default", config)
    elif not isinstance(baseline, VariantParams):
        raise TypeError(f"baseline must be a VariantParams, got {type(baseline).__name__}")
    space = _Space(config)
    base = _params_columns(config, [baseline], Origin.BASELINE)
    keys = set(_keys(config, base))
    need = n - 1
    if mode in ("random", "sobol") and need > space.upper_bound:
        raise ValueError(
            f"{mode} mode: asked for {need} variants besides the baseline, but the search "
            f"space has at most {space.upper_bound} points"
        )
    if mode == "random":
        rng = np.random.Generator(np.random.PCG64(seed))
        parts = _fill(config, keys, need, lambda k: space.random(rng, k), _MAX_ROUNDS)
    elif mode == "sobol":
        parts = _fill(config, keys, need, _sobol_draw(space, seed), _MAX_ROUNDS)
    elif mode == "grid":
        parts = _take_grid(space, keys, need)
    else:
        parts = _take_profiles(config, keys, need)
    return VariantSet(config, _concat([base, *parts]))


def mutate(
    variants: VariantSet,
    rate: float,
    seed: int,
    config: OptimizerConfig | None = None,
) -> VariantSet:
    """Return a mutated copy of ``variants``: row 0 (the baseline) is kept unchanged.

    In every other row each of the 26 parameters (10 weight points, 14 float
    parameters, leverage, timeframe) is, with probability ``rate``, moved to another
    value of its grid drawn uniformly (a value not on the grid, such as a profile's 12
    points, may be redrawn to any grid value). Weights are then always renormalised from
    the points; a row whose points all became zero gets fresh random points. Rows that
    became duplicates (of the baseline or of an earlier row) are replaced in place by
    fresh random draws, so ``len`` is preserved. Mutated rows get origin MUTATION,
    replacements RANDOM; untouched rows keep theirs.

    Parameters
    ----------
    variants : VariantSet
        The parents; never modified.
    rate : float
        Per-parameter mutation probability, ``0 < rate <= 1``.
    seed : int
        Seed (>= 0) for ``PCG64``.
    config : OptimizerConfig, optional
        The search space to draw from; defaults to ``variants.config``. Its timeframes
        must equal those of ``variants.config`` (rows store timeframe indices).

    Raises
    ------
    ValueError
        On a bad rate, seed or config, an empty set, or a space too small to replace
        the duplicates.
    """
    if isinstance(rate, bool) or not isinstance(rate, (int, float, np.floating, np.integer)):
        raise ValueError(f"rate must be a number in (0, 1], got {rate!r}")
    if not (0.0 < rate <= 1.0):
        raise ValueError(f"rate must be in (0, 1], got {rate}")
    _check_int("seed", seed, 0)
    config = variants.config if config is None else config
    if config.timeframes != variants.config.timeframes:
        raise ValueError(
            f"config.timeframes {list(config.timeframes)} differ from the variant set's "
            f"{list(variants.config.timeframes)}"
        )
    if len(variants) == 0:
        raise ValueError("mutate: the variant set is empty (no baseline)")
    space = _Space(config)
    rng = np.random.Generator(np.random.PCG64(seed))
    columns = {name: np.array(array) for name, array in variants.columns().items()}
    children = len(variants) - 1
    if children == 0:
        return VariantSet(config, columns)

    chosen = rng.random((children, space.dims)) < rate
    changed = np.zeros(children, dtype=bool)
    for dim in range(space.dims):
        draws = rng.random(children)
        size = int(space.sizes[dim])
        if size == 1:
            continue
        current = space.read(columns, dim)[1:]
        index = space.index_of(dim, current)
        on_grid = index >= 0
        # Another grid value, uniform: draw among size - 1 and skip over the current one.
        moved = np.floor(draws * (size - 1)).astype(np.int64)
        moved += moved >= index
        anywhere = np.minimum(np.floor(draws * size).astype(np.int64), size - 1)
        new_index = np.where(on_grid, np.minimum(moved, size - 1), anywhere)
        mask = chosen[:, dim]
        space.write(columns, dim, 1 + np.flatnonzero(mask), space.value_at(dim, new_index[mask]))
        changed |= mask

    points = columns["weight_points"]
    space.redraw_zero_weights(rng, points, first_row=1)
    columns["weights"][1:] = normalise_weights(points[1:])
    columns["origin"][1:][changed] = Origin.MUTATION

    keys: set[bytes] = set()
    duplicates = []
    for row, key in enumerate(_keys(config, columns)):
        if key in keys:
            duplicates.append(row)
        keys.add(key)
    if duplicates:
        fresh = _concat(
            _fill(
                config, keys, len(duplicates), lambda k: space.random(rng, k),
                _MAX_ROUNDS,
            )
        )
        for name in COLUMN_DTYPES:
            columns[name][duplicates] = fresh[name]
    return VariantSet(config, columns)


class _Space:
    # The generator's view of a config: 26 stepped dimensions. Columns 0-9 are the
    # weight points, 10-23 FLOAT_PARAMS, 24 leverage, 25 the timeframe index.

    def __init__(self, config: OptimizerConfig) -> None:
        self.config = config
        self.ranges: tuple[Range, ...] = tuple(r for _, r in config.named_ranges())
        self.dims = len(self.ranges) + 1
        self.sizes = np.array(
            [r.size for r in self.ranges] + [len(config.timeframes)], dtype=np.int64
        )
        weight_ranges = self.ranges[: len(WEIGHT_NAMES)]
        weight_count = math.prod(r.size for r in weight_ranges)
        if all(r.low == 0.0 for r in weight_ranges):
            weight_count -= 1  # the all-zero row is not a variant
        # An upper bound: proportional weight points are one variant, counted here many.
        self.upper_bound = weight_count * math.prod(int(s) for s in self.sizes[10:])

    def value_at(self, dim: int, index: np.ndarray) -> np.ndarray:
        if dim == self.dims - 1:
            return np.asarray(index, dtype=np.int64)
        return self.ranges[dim].value_at(index)

    def index_of(self, dim: int, values: np.ndarray) -> np.ndarray:
        if dim == self.dims - 1:
            return np.asarray(values, dtype=np.int64)
        return self.ranges[dim].index_of(values)

    def read(self, columns: Columns, dim: int) -> np.ndarray:
        if dim < len(WEIGHT_NAMES):
            return columns["weight_points"][:, dim]
        return columns[self._name(dim)]

    def write(self, columns: Columns, dim: int, rows: np.ndarray, values: np.ndarray) -> None:
        if dim < len(WEIGHT_NAMES):
            columns["weight_points"][rows, dim] = values
        else:
            columns[self._name(dim)][rows] = values

    def _name(self, dim: int) -> str:
        names = (*FLOAT_PARAMS, "leverage", "timeframe")
        return names[dim - len(WEIGHT_NAMES)]

    def columns(self, index: np.ndarray, origin: Origin) -> Columns:
        # Columns for rows of step indices, shape (k, dims); weights must not be all 0.
        rows = len(index)
        columns = _empty_columns(rows, origin)
        for dim in range(self.dims):
            self.write(columns, dim, np.arange(rows), self.value_at(dim, index[:, dim]))
        columns["weights"] = normalise_weights(columns["weight_points"])
        return columns

    def random(self, rng: np.random.Generator, wanted: int) -> Columns:
        # Uniform rows on the grids; rows whose weight points are all zero are redrawn.
        index = rng.integers(0, self.sizes, size=(max(wanted, _MIN_DRAW), self.dims))
        weight_sizes = self.sizes[: len(WEIGHT_NAMES)]
        while True:
            zero = np.flatnonzero(self.weight_points(index).sum(axis=1) == 0.0)
            if len(zero) == 0:
                return self.columns(index, Origin.RANDOM)
            index[zero, : len(WEIGHT_NAMES)] = rng.integers(
                0, weight_sizes, size=(len(zero), len(WEIGHT_NAMES))
            )

    def columns_without_zero_weights(self, index: np.ndarray, origin: Origin) -> Columns:
        # Columns for the rows of index whose weight points are not all zero.
        keep = self.weight_points(index).sum(axis=1) > 0.0
        return self.columns(index[keep], origin)

    def weight_points(self, index: np.ndarray) -> np.ndarray:
        return np.stack(
            [self.value_at(d, index[:, d]) for d in range(len(WEIGHT_NAMES))], axis=1
        )

    def redraw_zero_weights(
        self, rng: np.random.Generator, points: np.ndarray, first_row: int
    ) -> None:
        # Redraw, in place, every row (from first_row) whose weight points are all zero.
        # The config guarantees a weight range with high > 0, so this ends.
        weight_sizes = self.sizes[: len(WEIGHT_NAMES)]
        while True:
            zero = first_row + np.flatnonzero(points[first_row:].sum(axis=1) == 0.0)
            if len(zero) == 0:
                return
            index = rng.integers(0, weight_sizes, size=(len(zero), len(WEIGHT_NAMES)))
            for dim in range(len(WEIGHT_NAMES)):
                points[zero, dim] = self.value_at(dim, index[:, dim])


def _check_int(name: str, value: object, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")


def _snap(value_range: Range, value: float) -> float:
    # The grid value nearest to value, clipped to the Range.
    index = round((value - value_range.low) / value_range.step)
    return float(value_range.value_at(min(max(index, 0), value_range.size - 1)))


def _canonical_default(value_range: Range) -> float:
    # The default as stored: the grid value's exact bits when the default is on the grid.
    index = int(value_range.index_of(value_range.default))
    if index >= 0:
        return float(value_range.value_at(index))
    return float(np.round(value_range.default, 12) + 0.0)


def _default_values(config: OptimizerConfig) -> dict:
    values: dict = {
        name: _canonical_default(getattr(config, name)) for name in FLOAT_PARAMS
    }
    values["weights"] = tuple(_canonical_default(r) for r in config.weights.ranges())
    values["leverage"] = int(config.leverage.default)
    values["timeframe"] = config.default_timeframe
    return values


def _empty_columns(rows: int, origin: Origin) -> Columns:
    columns: Columns = {}
    for name, dtype in COLUMN_DTYPES.items():
        shape = (rows, len(WEIGHT_NAMES)) if name.startswith("weight") else (rows,)
        columns[name] = np.zeros(shape, dtype=dtype)
    columns["origin"][:] = origin
    return columns


def _params_columns(
    config: OptimizerConfig, params: list[VariantParams], origin: Origin
) -> Columns:
    columns = _empty_columns(len(params), origin)
    for row, p in enumerate(params):
        if p.timeframe not in config.timeframes:
            raise ValueError(
                f"timeframe: {p.timeframe!r} is not one of config.timeframes "
                f"{list(config.timeframes)}"
            )
        columns["weight_points"][row] = p.weights
        for name in FLOAT_PARAMS:
            columns[name][row] = getattr(p, name)
        columns["leverage"][row] = p.leverage
        columns["timeframe"][row] = config.timeframes.index(p.timeframe)
    columns["weights"] = normalise_weights(columns["weight_points"])
    return columns


def _keys(config: OptimizerConfig, columns: Columns) -> list[bytes]:
    floats = np.stack([columns[name] for name in FLOAT_PARAMS], axis=1)
    names = [config.timeframes[i] for i in columns["timeframe"]]
    return _row_keys(columns["weights"], floats, columns["leverage"], names)


def _select(columns: Columns, rows: np.ndarray) -> Columns:
    return {name: array[rows] for name, array in columns.items()}


def _concat(parts: list[Columns]) -> Columns:
    return {name: np.concatenate([part[name] for part in parts]) for name in COLUMN_DTYPES}


def _take_new(config: OptimizerConfig, columns: Columns, keys: set[bytes], limit: int) -> Columns:
    # The first `limit` rows whose keys are not yet in `keys` (which are then added).
    kept: list[int] = []
    for row, key in enumerate(_keys(config, columns)):
        if len(kept) == limit:
            break
        if key not in keys:
            keys.add(key)
            kept.append(row)
    return _select(columns, np.array(kept, dtype=np.intp))


def _fill(
    config: OptimizerConfig,
    keys: set[bytes],
    need: int,
    draw: Callable[[int], Columns],
    max_rounds: int,
) -> list[Columns]:
    # Draw candidates until `need` new distinct rows are found, or give up.
    parts = [_empty_columns(0, Origin.RANDOM)]
    found = 0
    rounds = 0
    while found < need:
        if rounds == max_rounds:
            raise ValueError(
                f"found only {found} of {need} distinct variants after {rounds} rounds of "
                "draws; the search space is (nearly) exhausted"
            )
        part = _take_new(config, draw(need - found), keys, need - found)
        parts.append(part)
        found += len(part["leverage"])
        rounds += 1
    return parts


def _sobol_draw(space: _Space, seed: int) -> Callable[[int], Columns]:
    sampler = qmc.Sobol(
        d=space.dims, scramble=True, rng=np.random.Generator(np.random.PCG64(seed))
    )

    def draw(wanted: int) -> Columns:
        if sampler.num_generated == 0:
            # The first block is 2^k points, the size at which Sobol' points are balanced.
            unit = sampler.random_base2(max(0, math.ceil(math.log2(wanted))))
        else:
            # Refills continue the same sequence in small draws, keeping memory bounded.
            unit = sampler.random(max(wanted, _MIN_DRAW))
        index = np.minimum(np.floor(unit * space.sizes).astype(np.int64), space.sizes - 1)
        # All-zero weight points are not a variant; a later draw replaces the row.
        return space.columns_without_zero_weights(index, Origin.SOBOL)

    return draw


def _coarse_to_fine(size: int) -> list[int]:
    # Step indices of one axis: both ends, then the midpoints of the gaps, breadth first.
    if size == 1:
        return [0]
    order = [0, size - 1]
    queue = deque([(0, size - 1)])
    while queue:
        low, high = queue.popleft()
        if high - low < 2:
            continue
        middle = (low + high) // 2
        order.append(middle)
        queue.extend(((low, middle), (middle, high)))
    return order


def _paired_index(index: np.ndarray, size: int, paired_size: int) -> np.ndarray:
    # Mirror position on the paired Range (size > 1): the lowest strong_buy goes with
    # the highest (least extreme) strong_sell.
    return np.rint((1.0 - index / (size - 1)) * (paired_size - 1)).astype(np.int64)


def _grid_points(config: OptimizerConfig) -> Iterator[np.ndarray]:
    # Step indices on _GRID_AXES, one level (see generate_variants) per yielded block.
    ranges = [getattr(config, axis) for axis in _GRID_AXES]
    orders = [np.array(_coarse_to_fine(r.size), dtype=np.int64) for r in ranges]
    for level in range(max(len(order) for order in orders)):
        shape = [min(level + 1, len(order)) for order in orders]
        positions = np.indices(shape).reshape(len(shape), -1).T
        positions = positions[positions.max(axis=1) == level]
        yield np.stack([orders[a][positions[:, a]] for a in range(len(orders))], axis=1)


def _take_grid(space: _Space, keys: set[bytes], need: int) -> list[Columns]:
    config = space.config
    total = math.prod(getattr(config, axis).size for axis in _GRID_AXES)
    if need > total:
        raise ValueError(
            f"grid mode: asked for {need} variants besides the baseline, but the grid has "
            f"only {total} points"
        )
    defaults = _params_columns(config, [profile("default", config)], Origin.GRID)
    parts = [_empty_columns(0, Origin.GRID)]
    found = 0
    for block in _grid_points(config):
        if found == need:
            break
        columns = {name: np.repeat(array, len(block), axis=0) for name, array in defaults.items()}
        for a, axis in enumerate(_GRID_AXES):
            value_range: Range = getattr(config, axis)
            columns[axis] = value_range.value_at(block[:, a]).astype(COLUMN_DTYPES[axis])
            # A one-value axis leaves its pair at the default rather than forcing an end.
            if axis in _GRID_PAIRS and value_range.size > 1:
                paired: Range = getattr(config, _GRID_PAIRS[axis])
                paired_index = _paired_index(block[:, a], value_range.size, paired.size)
                columns[_GRID_PAIRS[axis]] = paired.value_at(paired_index)
        part = _take_new(config, columns, keys, need - found)
        parts.append(part)
        found += len(part["leverage"])
    if found < need:
        raise ValueError(
            f"grid mode: asked for {need} variants besides the baseline, but the grid has "
            f"only {found} points distinct from the baseline"
        )
    return parts


def _take_profiles(config: OptimizerConfig, keys: set[bytes], need: int) -> list[Columns]:
    candidates = _params_columns(
        config, [profile(name, config) for name in PROFILE_NAMES], Origin.PROFILE
    )
    part = _take_new(config, candidates, keys, need)
    if len(part["leverage"]) < need:
        raise ValueError(
            f"profiles mode: asked for {need} variants besides the baseline, but only "
            f"{len(part['leverage'])} profiles differ from it"
        )
    return [part]
