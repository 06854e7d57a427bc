"""The optimizer's search space and variant generator.

:class:`OptimizerConfig` is the typed search space; :func:`generate_variants` and
:func:`mutate` turn it into a :class:`VariantSet`, one contiguous array per parameter,
for the variant-pass kernel.
"""

from liveopt.optimizer.generate import (
    DEFAULT_CONFIG,
    MODES,
    PROFILE_NAMES,
    generate_variants,
    mutate,
    profile,
)
from liveopt.optimizer.space import (
    FLOAT_PARAMS,
    WEIGHT_NAMES,
    OptimizerConfig,
    Range,
    WeightRanges,
)
from liveopt.optimizer.variants import (
    COLUMN_DTYPES,
    Origin,
    VariantParams,
    VariantSet,
    normalise_weights,
)

__all__ = [
    "COLUMN_DTYPES",
    "DEFAULT_CONFIG",
    "FLOAT_PARAMS",
    "MODES",
    "PROFILE_NAMES",
    "WEIGHT_NAMES",
    "OptimizerConfig",
    "Origin",
    "Range",
    "VariantParams",
    "VariantSet",
    "WeightRanges",
    "generate_variants",
    "mutate",
    "normalise_weights",
    "profile",
]
