"""liveopt: run a trading bot's main strategy and thousands of variants of it on one live
market feed, each on its own paper account.

The package has three layers, imported in one direction only:

- ``liveopt._core``: compiled kernels (Numba and Cython) over arrays and explicit state;
- the engine layer (``liveopt.engine``, ``liveopt.optimizer``, ``liveopt.metrics``,
  ``liveopt.indicators``, ``liveopt.data``, ``liveopt.timeframes``, ``liveopt.replay``):
  validation at the boundary, stateful wrappers, batch and streaming APIs;
- the service layer (``liveopt.cli``, ``liveopt.service``): processes, I/O and the daemon.

``liveopt.Engine`` and ``liveopt.EngineConfig`` are the embedding API (see
``docs/paper-execution.md``); they are imported on first use, because loading the compiled
kernels takes a second or two.
"""

from typing import Any

__version__ = "0.1.0"

_LAZY = {"Engine", "EngineConfig"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        from liveopt import engine

        return getattr(engine, name)
    raise AttributeError(f"module 'liveopt' has no attribute {name!r}")


__all__ = ["Engine", "EngineConfig", "__version__"]
