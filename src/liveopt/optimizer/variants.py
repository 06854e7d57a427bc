"""Variants as a struct of arrays: one contiguous column per parameter, one row per variant.

The variant-pass kernel reads the columns directly; :class:`VariantParams` exists only to
inspect one row (display, tests) and to hand a baseline to the generator.

``config_hash``
    Each row is tagged with a stable 64-bit hash of its parameters, used to tag journal
    records. It is the BLAKE2b digest (8 bytes, read little-endian as ``uint64``) of:

    1. the ASCII tag ``liveopt.variant.v1``;
    2. 24 little-endian float64 values, each rounded to 12 decimals with ``-0.0``
       written as ``0.0``: the 10 normalised weights in :data:`WEIGHT_NAMES` order, then
       the 14 :data:`FLOAT_PARAMS` in their order;
    3. the leverage as a little-endian int64;
    4. the timeframe's canonical name in UTF-8 (the name, not its index, so the hash does
       not depend on the order of ``OptimizerConfig.timeframes``).

    The same bytes, without the tag, are the key that deduplicates variants: two rows are
    duplicates exactly when their hashed parameters are equal. Weight points are not
    hashed, so proportional point vectors (10/20 and 20/40) are the same variant.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping, Sequence
from enum import IntEnum

import msgspec
import numpy as np

from liveopt.optimizer.space import FLOAT_PARAMS, GRID_DECIMALS, WEIGHT_NAMES, OptimizerConfig
from liveopt.timeframes import canonical_timeframe

_HASH_TAG = b"liveopt.variant.v1"
# Tolerance on "weights sum to 1", for stored rows and for recognising normalised input.
WEIGHT_SUM_TOLERANCE = 1e-12


class Origin(IntEnum):
    """How a variant was made; stored as int8 in ``VariantSet.origin``."""

    BASELINE = 0
    PROFILE = 1
    GRID = 2
    RANDOM = 3
    SOBOL = 4
    MUTATION = 5


class VariantParams(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """The parameters of one variant, for display, tests and passing a baseline.

    Field meanings and units are those of :class:`OptimizerConfig`.

    Parameters
    ----------
    weights : tuple of float
        Ten non-negative weights in :data:`WEIGHT_NAMES` order with a positive sum. Rows
        of a :class:`VariantSet` hold fractions summing to 1; a baseline may be given in
        points and is normalised when it joins a set.
    timeframe : str
        Canonical timeframe name.

    Raises
    ------
    ValueError
        On a wrong number of weights, a negative or non-finite value, all-zero weights,
        a leverage below 1 or a non-canonical timeframe.
    """

    weights: tuple[float, ...]
    rsi_oversold: float
    rsi_overbought: float
    strong_buy: float
    buy: float
    sell: float
    strong_sell: float
    min_confidence: float
    stop_loss_roi: float
    take_profit_roi: float
    break_even_buffer: float
    trailing_step: float
    trailing_move: float
    leverage: int
    position_size_pct: float
    timeframe: str
    max_hold_s: float

    def __post_init__(self) -> None:
        if len(self.weights) != len(WEIGHT_NAMES):
            raise ValueError(
                f"weights: expected {len(WEIGHT_NAMES)} values {list(WEIGHT_NAMES)}, "
                f"got {len(self.weights)}"
            )
        for name, value in zip(WEIGHT_NAMES, self.weights, strict=True):
            if not (math.isfinite(value) and value >= 0.0):
                raise ValueError(f"weights.{name}: {value} must be finite and >= 0")
        if sum(self.weights) <= 0.0:
            raise ValueError("weights: all weights are zero; at least one must be > 0")
        for name in FLOAT_PARAMS:
            if not math.isfinite(getattr(self, name)):
                raise ValueError(f"{name}: {getattr(self, name)} is not finite")
        if int(self.leverage) != self.leverage or self.leverage < 1:
            raise ValueError(f"leverage: {self.leverage} must be an integer >= 1")
        if canonical_timeframe(self.timeframe) != self.timeframe:
            raise ValueError(
                f"timeframe: {self.timeframe!r} must be given by its canonical name "
                f"{canonical_timeframe(self.timeframe)!r}"
            )

    def normalised_weights(self) -> np.ndarray:
        """Return the weights as float64 fractions summing to 1."""
        return normalise_weights(np.asarray(self.weights, dtype=np.float64)[None, :])[0]

    def config_hash(self) -> int:
        """Return the variant's stable hash (see the module docstring); equal to the
        ``config_hash`` of the :class:`VariantSet` row it came from."""
        floats = np.array([[getattr(self, name) for name in FLOAT_PARAMS]], dtype=np.float64)
        key = _row_keys(
            self.normalised_weights()[None, :],
            floats,
            np.array([self.leverage], dtype=np.int64),
            [self.timeframe],
        )[0]
        return _hash_key(key)


def normalise_weights(points: np.ndarray) -> np.ndarray:
    """Return each row of ``points`` divided by its sum, as C-contiguous float64.

    Rows that already sum to 1 within 1e-12 are returned unchanged, so normalising twice
    gives the same bits (a row read from a set and fed back as a baseline keeps its hash).
    """
    points = np.asarray(points, dtype=np.float64)
    totals = points.sum(axis=1, keepdims=True)
    already = np.abs(totals - 1.0) <= WEIGHT_SUM_TOLERANCE
    return np.ascontiguousarray(np.where(already, points, points / totals))


def _canonical(values: np.ndarray) -> np.ndarray:
    # Rounded little-endian float64 with -0.0 folded into 0.0: equal values, equal bytes.
    return np.ascontiguousarray(np.round(values, GRID_DECIMALS) + 0.0, dtype="<f8")


def _row_keys(
    weights: np.ndarray, floats: np.ndarray, leverage: np.ndarray, timeframes: Sequence[str]
) -> list[bytes]:
    # The canonical bytes of each row (module docstring, items 2-4).
    numbers = np.concatenate([_canonical(weights), _canonical(floats)], axis=1)
    numbers = np.ascontiguousarray(numbers, dtype="<f8")
    levers = np.ascontiguousarray(leverage, dtype="<i8")
    return [
        numbers[i].tobytes() + levers[i].tobytes() + timeframes[i].encode()
        for i in range(len(levers))
    ]


def _hash_key(key: bytes) -> int:
    digest = hashlib.blake2b(_HASH_TAG + key, digest_size=8).digest()
    return int.from_bytes(digest, "little")


#: Every column of a :class:`VariantSet` and its dtype (``config_hash`` is derived).
COLUMN_DTYPES: dict[str, np.dtype] = {
    "weights": np.dtype(np.float64),
    "weight_points": np.dtype(np.float64),
    **{name: np.dtype(np.float64) for name in FLOAT_PARAMS},
    "leverage": np.dtype(np.int64),
    "timeframe": np.dtype(np.int64),
    "origin": np.dtype(np.int8),
}


class VariantSet:
    """A set of variants stored column-wise: one contiguous array per parameter.

    Build one with :func:`liveopt.optimizer.generate_variants`; the arrays are read-only
    and every operation returns a new set.

    Attributes
    ----------
    config : OptimizerConfig
        The search space the rows belong to; ``timeframe`` indexes its ``timeframes``.
    weights : ndarray of float64, shape (n, 10)
        Normalised weights in :data:`WEIGHT_NAMES` order; rows are non-negative and sum
        to 1 within 1e-12.
    weight_points : ndarray of float64, shape (n, 10)
        The points the weights were normalised from. Mutation redraws points on their
        grids and renormalises, so it needs them; a caller's baseline keeps the values it
        was given.
    rsi_oversold, ..., max_hold_s : ndarray of float64, shape (n,)
        One column per name in :data:`FLOAT_PARAMS`.
    leverage : ndarray of int64, shape (n,)
    timeframe : ndarray of int64, shape (n,)
        Index into ``config.timeframes``.
    config_hash : ndarray of uint64, shape (n,)
        Stable hash of each row's parameters (module docstring).
    origin : ndarray of int8, shape (n,)
        An :class:`Origin` code.

    Raises
    ------
    ValueError
        On a missing or unknown column, a wrong shape, negative weights, weights that do
        not sum to 1 or differ from ``weight_points`` normalised, or a timeframe index
        outside ``config.timeframes``.
    """

    config: OptimizerConfig
    weights: np.ndarray
    weight_points: np.ndarray
    rsi_oversold: np.ndarray
    rsi_overbought: np.ndarray
    strong_buy: np.ndarray
    buy: np.ndarray
    sell: np.ndarray
    strong_sell: np.ndarray
    min_confidence: np.ndarray
    stop_loss_roi: np.ndarray
    take_profit_roi: np.ndarray
    break_even_buffer: np.ndarray
    trailing_step: np.ndarray
    trailing_move: np.ndarray
    leverage: np.ndarray
    position_size_pct: np.ndarray
    timeframe: np.ndarray
    max_hold_s: np.ndarray
    config_hash: np.ndarray
    origin: np.ndarray

    def __init__(self, config: OptimizerConfig, columns: Mapping[str, np.ndarray]) -> None:
        missing = set(COLUMN_DTYPES) - set(columns)
        unknown = set(columns) - set(COLUMN_DTYPES)
        if missing or unknown:
            raise ValueError(
                f"VariantSet columns: missing {sorted(missing)}, unknown {sorted(unknown)}"
            )
        self.config = config
        rows = len(columns["leverage"])
        for name, dtype in COLUMN_DTYPES.items():
            array = np.array(columns[name], dtype=dtype, order="C", copy=True)
            expected = (rows, len(WEIGHT_NAMES)) if name.startswith("weight") else (rows,)
            if array.shape != expected:
                raise ValueError(f"{name}: shape {array.shape}, expected {expected}")
            array.setflags(write=False)
            setattr(self, name, array)
        if np.any(self.weights < 0.0) or np.any(
            np.abs(self.weights.sum(axis=1) - 1.0) > WEIGHT_SUM_TOLERANCE
        ):
            raise ValueError("weights: every row must be non-negative and sum to 1")
        if rows and not np.allclose(
            self.weights, normalise_weights(self.weight_points), rtol=0.0, atol=1e-12
        ):
            raise ValueError("weights: rows must equal weight_points divided by their sums")
        # The signal classes assume ordered thresholds (docs/signal-model.md); the config's
        # ranges guarantee it for generated rows, a caller's baseline is checked here.
        ordered = (self.strong_buy >= self.buy) & (self.buy > self.sell) & (
            self.sell >= self.strong_sell
        )
        if not np.all(ordered):
            row = int(np.flatnonzero(~ordered)[0])
            raise ValueError(
                f"thresholds of row {row} must satisfy strong_buy >= buy > sell >= "
                f"strong_sell, got {self.strong_buy[row]}, {self.buy[row]}, "
                f"{self.sell[row]}, {self.strong_sell[row]}"
            )
        if np.any((self.timeframe < 0) | (self.timeframe >= len(config.timeframes))):
            raise ValueError(
                f"timeframe: indices must lie in [0, {len(config.timeframes)})"
            )
        keys = self._keys()
        hashes = np.fromiter((_hash_key(key) for key in keys), dtype=np.uint64, count=rows)
        hashes.setflags(write=False)
        self.config_hash = hashes

    def __len__(self) -> int:
        return len(self.leverage)

    def __repr__(self) -> str:
        counts = np.bincount(self.origin, minlength=len(Origin))
        made = ", ".join(f"{o.name.lower()}={counts[o]}" for o in Origin if counts[o])
        return f"VariantSet(n={len(self)}, {made})"

    def __getitem__(self, index: int) -> VariantParams:
        """Return row ``index`` (negative counts from the end) as a :class:`VariantParams`."""
        if not isinstance(index, (int, np.integer)) or isinstance(index, bool):
            raise TypeError(f"VariantSet index must be an integer, got {index!r}; use take()")
        if not -len(self) <= index < len(self):
            raise IndexError(f"variant {index} out of range for a set of {len(self)}")
        return VariantParams(
            weights=tuple(float(w) for w in self.weights[index]),
            **{name: float(getattr(self, name)[index]) for name in FLOAT_PARAMS},
            leverage=int(self.leverage[index]),
            timeframe=self.config.timeframes[int(self.timeframe[index])],
        )

    def columns(self) -> dict[str, np.ndarray]:
        """Return the stored columns (read-only arrays), ``config_hash`` excluded."""
        return {name: getattr(self, name) for name in COLUMN_DTYPES}

    def take(self, indices: Sequence[int] | np.ndarray) -> VariantSet:
        """Return a new set of the rows at ``indices``, in that order."""
        order = np.asarray(indices, dtype=np.intp)
        return VariantSet(self.config, {k: v[order] for k, v in self.columns().items()})

    def concat(self, other: VariantSet) -> VariantSet:
        """Return a new set with ``other``'s rows after this set's.

        Raises
        ------
        ValueError
            If the two sets were made from different configs.
        """
        if other.config != self.config:
            raise ValueError("concat: the two variant sets belong to different configs")
        mine, theirs = self.columns(), other.columns()
        return VariantSet(
            self.config, {name: np.concatenate([mine[name], theirs[name]]) for name in mine}
        )

    def _keys(self) -> list[bytes]:
        # Canonical bytes per row: the deduplication key and the hash input.
        floats = np.stack([getattr(self, name) for name in FLOAT_PARAMS], axis=1)
        names = [self.config.timeframes[i] for i in self.timeframe]
        return _row_keys(self.weights, floats, self.leverage, names)
