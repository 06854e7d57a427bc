"""Fan-out of the controller's events to any number of consumers, never blocking it.

Each consumer owns a bounded queue. :meth:`EventHub.publish` appends to every queue
synchronously; a full queue loses its *oldest* event (the consumer sees the newest state
and a gap, counted in ``dropped``), so a stalled WebSocket client or a slow log writer can
never hold the engine's event loop.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator

from liveopt.service.events import ServiceEvent


class Subscription:
    """One consumer's bounded event queue (``protocol.EventSubscription``).

    Iterate it with ``async for``; iteration ends after :meth:`close`.
    """

    def __init__(self, hub: EventHub, maxsize: int) -> None:
        if maxsize < 1:
            raise ValueError(f"maxsize: {maxsize} must be >= 1")
        self._hub = hub
        self._queue: deque[ServiceEvent] = deque()
        self._maxsize = maxsize
        self._wakeup = asyncio.Event()
        self._closed = False
        #: Events lost because this consumer was too slow (oldest first).
        self.dropped = 0

    @property
    def pending(self) -> int:
        """Events queued and not yet taken."""
        return len(self._queue)

    @property
    def closed(self) -> bool:
        return self._closed

    def put(self, event: ServiceEvent) -> None:
        """Queue ``event`` without waiting; a full queue drops its oldest event."""
        if self._closed:
            return
        if len(self._queue) >= self._maxsize:
            self._queue.popleft()
            self.dropped += 1
        self._queue.append(event)
        self._wakeup.set()

    def get_nowait(self) -> ServiceEvent | None:
        """The oldest queued event, or None when the queue is empty."""
        return self._queue.popleft() if self._queue else None

    async def get(self) -> ServiceEvent | None:
        """The oldest event, waiting for one; None once the subscription is closed."""
        while not self._queue:
            if self._closed:
                return None
            self._wakeup.clear()
            await self._wakeup.wait()
        return self._queue.popleft()

    def __aiter__(self) -> AsyncIterator[ServiceEvent]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[ServiceEvent]:
        while True:
            event = await self.get()
            if event is None:
                return
            yield event

    def close(self) -> None:
        """Stop receiving events; a waiting iterator ends after the queued ones."""
        if not self._closed:
            self._closed = True
            self._wakeup.set()
            self._hub._remove(self)


class EventHub:
    """Publishes events to every open :class:`Subscription`."""

    def __init__(self) -> None:
        self._subscribers: list[Subscription] = []
        #: Events published since the start.
        self.published = 0

    def subscribe(self, maxsize: int = 1000) -> Subscription:
        """A new consumer queue holding at most ``maxsize`` events."""
        subscription = Subscription(self, maxsize)
        self._subscribers.append(subscription)
        return subscription

    def publish(self, event: ServiceEvent) -> None:
        """Hand ``event`` to every subscriber (constant time per subscriber)."""
        self.published += 1
        for subscription in self._subscribers:
            subscription.put(event)

    @property
    def subscribers(self) -> int:
        return len(self._subscribers)

    @property
    def dropped(self) -> int:
        """Events dropped over the open subscriptions."""
        return sum(s.dropped for s in self._subscribers)

    def _remove(self, subscription: Subscription) -> None:
        if subscription in self._subscribers:
            self._subscribers.remove(subscription)
