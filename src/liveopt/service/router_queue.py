"""The main strategy's fills handed to the order router without the engine waiting.

The engine path only appends to a queue; one worker task awaits the router's calls in
order (an entry completes before the exit that follows it is sent). A call that raises is
counted and logged, and the worker goes on.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Awaitable
from typing import Any, Protocol

log = logging.getLogger("liveopt.controller")


class MainOrderRouter(Protocol):
    """What the controller needs of ``liveopt.service.router.MainOrderRouter``."""

    async def on_entry(self, fill: Any) -> Any: ...

    async def on_exit(self, trade: Any) -> Any: ...

    async def flatten(self) -> tuple[int, bool]: ...

    def status(self) -> Any: ...


class RouterQueue:
    """Ordered, non-blocking calls into a :class:`MainOrderRouter`."""

    def __init__(self, router: MainOrderRouter) -> None:
        self.router = router
        self._calls: deque[tuple[str, Any]] = deque()
        self._wakeup = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        #: Router calls that raised.
        self.failures = 0
        self.sent = 0
        self._busy = False

    @property
    def pending(self) -> int:
        return len(self._calls)

    def entry(self, fill: Any) -> None:
        """Queue ``router.on_entry(fill)``."""
        self._put("entry", fill)

    def exit(self, trade: Any) -> None:
        """Queue ``router.on_exit(trade)``."""
        self._put("exit", trade)

    def clear(self) -> int:
        """Forget queued calls (the emergency stop); returns how many were dropped."""
        dropped = len(self._calls)
        self._calls.clear()
        return dropped

    def _put(self, kind: str, payload: Any) -> None:
        self._calls.append((kind, payload))
        self._wakeup.set()
        self._ensure_worker()

    def _ensure_worker(self) -> None:
        if self._task is not None and not self._task.done():
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # no loop yet: the calls wait for the first one
            return
        self._task = loop.create_task(self._work(), name="liveopt-router-queue")

    async def drain(self) -> None:
        """Wait until every queued call has been made (tests, shutdown)."""
        self._ensure_worker()
        while self._calls or (self._task is not None and self._busy):
            await asyncio.sleep(0)

    async def _work(self) -> None:
        while True:
            while not self._calls:
                self._wakeup.clear()
                await self._wakeup.wait()
            kind, payload = self._calls.popleft()
            self._busy = True
            try:
                call: Awaitable[Any] = (self.router.on_entry(payload) if kind == "entry"
                                        else self.router.on_exit(payload))
                await call
                self.sent += 1
            except asyncio.CancelledError:
                raise
            except Exception as error:  # counted and alerted; the loop must go on
                self.failures += 1
                log.error("main order router %s failed: %r", kind, error)
            finally:
                self._busy = False

    async def close(self) -> None:
        """Stop the worker (queued calls are dropped)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
