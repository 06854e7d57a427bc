"""What the controller tests share: a stepping clock, list journals, a recording router,
market ticks from the bundled data set and a controller factory."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from liveopt.data import bundled_trades
from liveopt.engine import EngineConfig
from liveopt.exchange.messages import TradeTick
from liveopt.optimizer import OptimizerConfig, Range
from liveopt.scoring import PromotionGate
from liveopt.service.controller import LiveOptimizerController
from liveopt.service.controller_config import ControllerConfig, engine_factory
from liveopt.service.runtime_metrics import MemoryReading
from liveopt.service.views import TradePage, TradeRecord

# Thresholds low enough that random variants trade often on a short stream.
SPACE = OptimizerConfig(
    strong_buy=Range(0.2, 0.5, 0.05, 0.3),
    buy=Range(0.1, 0.2, 0.05, 0.15),
    sell=Range(-0.2, -0.1, 0.05, -0.15),
    strong_sell=Range(-0.5, -0.2, 0.05, -0.3),
    min_confidence=Range(0.3, 0.6, 0.05, 0.4),
    timeframes=("1m", "5m"),
    default_timeframe="1m",
)
NO_LIMITS = EngineConfig(max_loss_pct=None, max_drawdown_pct=None, halt_below_pct=None,
                         baseline_max_drawdown_pct=None)
#: No costs: random variants then win about as often as they lose (gate candidates exist).
FREE = EngineConfig(max_loss_pct=None, max_drawdown_pct=None, halt_below_pct=None,
                    baseline_max_drawdown_pct=None, taker_fee=0.0, maker_fee=0.0,
                    slippage_bps=0.0)
N_VARIANTS = 12
CLOCK_STEP_NS = 1_000  # every clock reading is 1 us after the previous one


class SteppingClock:
    """An injected clock that moves ``step`` ns at every reading."""

    def __init__(self, start: int = 1_700_000_000_000_000_000, step: int = CLOCK_STEP_NS):
        self.now = start
        self.step = step
        self.readings = 0

    def __call__(self) -> int:
        self.now += self.step
        self.readings += 1
        return self.now


class ListJournal:
    """A journal in a list (``append`` and ``page``, newest first)."""

    def __init__(self, fail: bool = False) -> None:
        self.records: list[TradeRecord] = []
        self.fail = fail

    def append(self, record: TradeRecord) -> None:
        if self.fail:
            raise OSError("disk full")
        self.records.append(record)

    def page(self, *, variant_id: int | None = None, offset: int = 0,
             limit: int = 100) -> TradePage:
        rows = [r for r in reversed(self.records)
                if variant_id is None or r.variant_id == variant_id]
        return TradePage(items=rows[offset:offset + limit], total=len(rows), offset=offset,
                         limit=limit)


class RecordingRouter:
    """A main-order router that records its calls (optionally failing each one)."""

    def __init__(self, fail: bool = False) -> None:
        self.calls: list[tuple[str, Any]] = []
        self.fail = fail
        self.resumed = 0

    async def on_entry(self, fill: Any) -> bool:
        self.calls.append(("entry", fill))
        if self.fail:
            raise RuntimeError("exchange down")
        return True

    async def on_exit(self, trade: Any) -> bool:
        self.calls.append(("exit", trade))
        if self.fail:
            raise RuntimeError("exchange down")
        return True

    async def flatten(self) -> tuple[int, bool]:
        self.calls.append(("flatten", None))
        return 2, True

    def resume(self) -> None:
        self.resumed += 1

    def status(self) -> dict[str, int]:
        return {"calls": len(self.calls)}


@lru_cache(maxsize=1)
def _trade_columns() -> tuple[np.ndarray, ...]:
    full = bundled_trades()
    return full.ts, full.price, np.maximum(np.round(full.size), 1).astype(np.int64), full.side


def ticks(start: int, stop: int) -> list[TradeTick]:
    """Bundled trades ``[start, stop)`` as the feed delivers them."""
    ts, price, size, side = _trade_columns()
    return [
        TradeTick(symbol="XBTUSDTM", ts_ns=int(ts[i]), price=float(price[i]),
                  size=int(size[i]), side=int(side[i]), sequence=i, trade_id=str(i))
        for i in range(start, stop)
    ]


def make_controller(tmp_path: Path, *, clock: Callable[[], int] | None = None,
                    memory_pct: float = 10.0, engine_config: EngineConfig = NO_LIMITS,
                    **overrides: Any) -> LiveOptimizerController:
    """A controller over ``N_VARIANTS`` active variants with list journals (``.main``,
    ``.experimental`` on the returned object) and an injected memory reading."""
    kwargs = {k: overrides.pop(k) for k in ("router", "trade_hook", "budget", "sleep",
                                            "engine_input", "after_promotion",
                                            "main_journal", "experimental_journal",
                                            "memory_reader") if k in overrides}
    settings = {"optimizer_enabled": True, "variants": N_VARIANTS, "seed": 7,
                "batch_max_ticks": 64, "gate": PromotionGate(min_trades=2), **overrides}
    config = ControllerConfig(**settings)
    main = kwargs.pop("main_journal", ListJournal())
    experimental = kwargs.pop("experimental_journal", ListJournal())
    total = 64 * 2**30
    memory = kwargs.pop("memory_reader", None) or (
        lambda: MemoryReading(rss_bytes=int(total * memory_pct / 100), total_bytes=total))
    controller = LiveOptimizerController(
        config, engine_factory=engine_factory(config, engine_config, SPACE), data_dir=tmp_path,
        main_journal=main, experimental_journal=experimental,
        clock_ns=clock or SteppingClock(), memory_reader=memory, **kwargs,
    )
    controller.main = main  # type: ignore[attr-defined]
    controller.experimental = experimental  # type: ignore[attr-defined]
    return controller


def feed(controller: LiveOptimizerController, events: list[TradeTick]) -> None:
    for event in events:
        controller.on_market_event(event)
    controller.flush()


def run(coro):
    return asyncio.run(coro)
