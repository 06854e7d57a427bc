"""Market events into the engine in micro-batches, with the tick-to-decision latency.

The feed calls :meth:`MicroBatcher.on_market_event` from the event loop for every event;
it only appends the event to the engine's buffer (a Cython call) and notes when the first
event of the batch arrived. The batch is processed (one compiled engine pass) when
``max_ticks`` events are pending or ``interval_s`` after its first event, whichever comes
first; then ``after_pass`` runs (draining fills, journals, events). The engine never
waits on I/O and the feed never waits on the engine for longer than one pass.

Latency: one observation per batch, from the receive time of its *oldest* event (the
injected clock) to the end of the engine pass that consumed it, so it is the worst case
of the batch.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from liveopt.engine import Engine
from liveopt.exchange.feed import SequenceGap
from liveopt.exchange.messages import CandleUpdate, DepthTop5, QuoteTick, TradeTick
from liveopt.service.runtime_metrics import LatencyRecorder, RateMeter

log = logging.getLogger("liveopt.controller")


class MicroBatcher:
    """Feeds one engine; counts everything it receives (nothing is dropped silently)."""

    def __init__(self, engine: Engine, *, clock_ns: Callable[[], int], interval_s: float,
                 max_ticks: int, latency: LatencyRecorder, rate: RateMeter,
                 after_pass: Callable[[], None],
                 engine_input: Callable[[Engine], Any] | None = None) -> None:
        self.engine = engine
        # What the events are pushed into: the engine itself, or a wrapper with the same
        # on_trade/on_quote/on_depth calls (e.g. recovery's write-ahead RecordingInput).
        self._wrap = engine_input or (lambda e: e)
        self._input = self._wrap(engine)
        self._clock_ns = clock_ns
        self._interval_s = interval_s
        self._max_ticks = max_ticks
        self.latency = latency
        self.rate = rate
        self._after_pass = after_pass
        self._pending = 0
        self._oldest_ns = 0
        self._last_ts: int | None = None
        self._handle: asyncio.TimerHandle | None = None
        #: Market events handed to the engine.
        self.ticks = 0
        #: Events refused by the engine's boundary check (bad price, crossed quote...).
        self.rejected = 0
        #: Events stamped earlier than the previous one: processed at its time instead
        #: (topics arrive interleaved; the engine needs time order).
        self.reordered = 0
        self.candles_ignored = 0
        self.gaps = 0
        self.unknown = 0
        self.last_receive_ns: int | None = None

    def replace_engine(self, engine: Engine) -> None:
        """Feed ``engine`` from now on (after a reset); pending events are processed into
        the old one first."""
        self.flush()
        self.engine = engine
        self._input = self._wrap(engine)
        self._last_ts = None

    @property
    def pending(self) -> int:
        return self._pending

    def on_market_event(self, event: object) -> None:
        """The feed's sink: one decoded market event (or a sequence gap)."""
        now = self._clock_ns()
        self.last_receive_ns = now
        engine = self._input
        try:
            if isinstance(event, TradeTick):
                engine.on_trade(self._time(event.ts_ns), event.price, float(event.size),
                                event.side)
            elif isinstance(event, QuoteTick):
                engine.on_quote(self._time(event.ts_ns), event.bid, float(event.bid_size),
                                event.ask, float(event.ask_size))
            elif isinstance(event, DepthTop5):
                engine.on_depth(self._time(event.ts_ns), float(sum(event.bid_sizes)),
                                float(sum(event.ask_sizes)))
            elif isinstance(event, CandleUpdate):
                self.candles_ignored += 1  # the engine builds its own candles from trades
                return
            elif isinstance(event, SequenceGap):
                self.gaps += 1
                return
            else:
                self.unknown += 1
                return
        except (ValueError, TypeError, OverflowError) as error:
            self.rejected += 1
            if self.rejected & (self.rejected - 1) == 0:  # log the 1st, 2nd, 4th, 8th...
                log.warning("market event rejected (%d so far): %s", self.rejected, error)
            return
        self._last_ts = max(self._last_ts or 0, event.ts_ns)
        if self._pending == 0:
            self._oldest_ns = now
        self._pending += 1
        if self._pending >= self._max_ticks:
            self.flush()
        elif self._handle is None:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:  # no loop (embedded use, tests): flush() is called
                return
            self._handle = loop.call_later(self._interval_s, self.flush)

    def _time(self, ts_ns: int) -> int:
        last = self._last_ts
        if last is not None and ts_ns < last:
            self.reordered += 1
            return last
        return ts_ns

    def flush(self) -> None:
        """Process the pending events now (one engine pass), record the batch's latency,
        then run ``after_pass``."""
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
        count = self._pending
        self.engine.flush()
        if count:
            end = self._clock_ns()
            self.latency.observe(end - self._oldest_ns)
            self.rate.add(count, end)
            self.ticks += count
            self._pending = 0
        self._after_pass()
