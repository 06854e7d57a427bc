"""liveopt: run a main strategy and thousands of variants of it on one live market feed.

The package has three layers, imported in one direction only:

- ``liveopt._core``: compiled kernels (Numba and Cython) over arrays and explicit state;
- the engine layer (``liveopt.data``, ``liveopt.indicators``, ``liveopt.timeframes``):
  validation at the boundary, stateful wrappers, batch and streaming APIs;
- the service layer (``liveopt.cli``, ``liveopt.service``): processes, I/O and the daemon.
"""

__version__ = "0.1.0"
