"""liveopt's compiled core: pure kernels over arrays and explicit state.

Rules for everything under this package (enforced by review and by the import-linter
contract in ``pyproject.toml``):

- no I/O, no clocks, no logging, no global random state: time arrives as ``int64``
  nanoseconds, state arrives as caller-owned arrays;
- kernels write into caller-owned buffers and never allocate per update;
- inputs are validated once, at the boundary in the engine layer; kernels assume them valid.

Numba kernels (``*_nb``) loop over arrays: indicators, the indicator bank. Cython
(``ingest``) takes the per-trade path that Python calls once per event. The split and the
measurements behind it are in ``docs/architecture.md``.
"""
