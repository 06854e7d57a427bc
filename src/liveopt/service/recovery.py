"""Crash recovery: a periodic engine snapshot plus a log of every market event since.

The engine is deterministic, so its state after a crash is the last snapshot's state with
the logged events replayed through it. The trades that replay closes are compared with the
journal lines written after the snapshot: those already journaled are not written again,
the missing ones (lost from the journal's write buffer by the crash) are appended. So no
trade is lost or counted twice, up to the last event that reached the tick log.

Files in the data directory:

- ``snapshot.bin``: msgpack :class:`SnapshotFile` (engine state, the journals' line counts,
  the caller's ``extra``), replaced atomically (temporary file, fsync, rename, fsync of the
  directory);
- ``ticks-<generation>.bin``: the event log started by that snapshot: a 16-byte header
  (magic, generation) then fixed 48-byte records ``kind, ts_ns, a, b, c, d`` (the engine's
  event kinds and columns, ``liveopt._core.variant_pass``). The previous log is deleted only
  once the snapshot that supersedes it has been renamed into place.

Ordering that makes this exact (write-ahead): every event is logged before the engine sees
it, and the tick log is flushed before each journal write (``TradeJournal.before_flush``),
so the journals never hold a trade whose events are not in the log.
"""

from __future__ import annotations

import os
import struct
import time
from collections import Counter
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import msgspec
import numpy as np

from liveopt._core.variant_pass import DEPTH, FUNDING_RATE, QUOTE, TRADE
from liveopt.engine import Engine
from liveopt.service.journal import (
    EXPERIMENTAL_JOURNAL,
    MAIN_JOURNAL,
    TradeJournal,
    fsync_directory,
)
from liveopt.service.leaderboard import MAIN_VARIANT, trade_record
from liveopt.service.views import TradeRecord

__all__ = [
    "EVENT_KINDS",
    "SNAPSHOT_FILE",
    "TICK_DTYPE",
    "RecordingInput",
    "RecoveryError",
    "RecoveryReport",
    "SnapshotFile",
    "SnapshotInfo",
    "StateStore",
    "journal_trades",
    "trade_records",
]

SNAPSHOT_FILE = "snapshot.bin"
SNAPSHOT_VERSION = 1
#: The engine event kinds the tick log holds (``variant_pass`` codes).
EVENT_KINDS = (TRADE, QUOTE, DEPTH, FUNDING_RATE)
_MAGIC = b"LOTICKS1"
_HEADER = struct.Struct("<8sQ")
_RECORD = struct.Struct("<b7xqdddd")
#: One tick-log record, as numpy reads the file.
TICK_DTYPE = np.dtype({
    "names": ["kind", "ts", "a", "b", "c", "d"],
    "formats": ["i1", "<i8", "<f8", "<f8", "<f8", "<f8"],
    "offsets": [0, 8, 16, 24, 32, 40],
    "itemsize": _RECORD.size,
})


class RecoveryError(RuntimeError):
    """The saved state cannot be used (another config, a damaged file...)."""


class SnapshotFile(msgspec.Struct, frozen=True, kw_only=True):
    """What ``snapshot.bin`` holds."""

    version: int
    generation: int  # the tick log started with it: ticks-<generation>.bin
    saved_at_ns: int
    events_logged: int  # events logged (all generations) before this snapshot
    journal_counts: dict[str, int]  # lines of each journal when it was taken
    engine: bytes
    extra: dict[str, Any]


class SnapshotInfo(msgspec.Struct, frozen=True, kw_only=True):
    """What :meth:`StateStore.save_snapshot` did."""

    generation: int
    events_logged: int
    journal_counts: dict[str, int]
    trades_journaled: int  # undrained engine trades it journaled itself


class RecoveryReport(msgspec.Struct, frozen=True, kw_only=True):
    """What :meth:`StateStore.recover` found and did."""

    snapshot_generation: int | None  # None: no snapshot, nothing to recover
    events_replayed: int
    events_logged: int  # total events logged up to the crash
    trades_replayed: int  # trades the replay closed
    trades_in_journal: int  # of those, already journaled before the crash
    trades_rejournaled: int  # of those, missing and appended now
    unexpected_journal_lines: int  # lines after the snapshot the replay did not produce
    torn_journal_lines: int
    torn_tick_bytes: int
    extra: dict[str, Any]
    events_rejected: int = 0  # logged events the engine refused (live and in the replay)


def trade_records(trades: np.ndarray, config_hashes: np.ndarray) -> list[TradeRecord]:
    """Journal records of the engine's closed trades (``TRADE_DTYPE`` rows), made by the
    controller's own conversion (``leaderboard.trade_record``), so a replayed trade
    compares equal to the line the crashed run wrote."""
    return [trade_record(row, int(config_hashes[int(row["variant"])])) for row in trades]


def _route(records: list[TradeRecord], main_variant_id: int) -> dict[str, list[TradeRecord]]:
    routed: dict[str, list[TradeRecord]] = {MAIN_JOURNAL: [], EXPERIMENTAL_JOURNAL: []}
    for record in records:
        name = MAIN_JOURNAL if record.variant_id == main_variant_id else EXPERIMENTAL_JOURNAL
        routed[name].append(record)
    return routed


def journal_trades(trades: np.ndarray, config_hashes: np.ndarray,
                   journals: Mapping[str, TradeJournal], *,
                   main_variant_id: int = MAIN_VARIANT) -> list[TradeRecord]:
    """Append the engine's closed trades to the journals (the main strategy's to
    ``"main"``, the others to ``"experimental"``); return the records written."""
    records = trade_records(trades, config_hashes)
    for name, routed in _route(records, main_variant_id).items():
        for record in routed:
            journals[name].append(record)
    return records


class RecordingInput:
    """The engine's four event calls, each logged to the store before the engine sees it
    (use it in place of ``engine.on_trade`` and friends)."""

    def __init__(self, engine: Engine, store: StateStore) -> None:
        self._engine = engine
        self._record = store.record_event

    def on_trade(self, ts_ns: int, price: float, size: float, side: int) -> None:
        """Log and feed a trade."""
        self._record(TRADE, ts_ns, price, size, side, 0.0)
        self._engine.on_trade(ts_ns, price, size, side)

    def on_quote(self, ts_ns: int, bid: float, bid_size: float, ask: float,
                 ask_size: float) -> None:
        """Log and feed a best bid/ask."""
        self._record(QUOTE, ts_ns, bid, bid_size, ask, ask_size)
        self._engine.on_quote(ts_ns, bid, bid_size, ask, ask_size)

    def on_depth(self, ts_ns: int, bid_size_5: float, ask_size_5: float) -> None:
        """Log and feed top-5 book sizes."""
        self._record(DEPTH, ts_ns, bid_size_5, ask_size_5, 0.0, 0.0)
        self._engine.on_depth(ts_ns, bid_size_5, ask_size_5)

    def on_funding_rate(self, ts_ns: int, rate: float) -> None:
        """Log and feed a funding rate."""
        self._record(FUNDING_RATE, ts_ns, rate, 0.0, 0.0, 0.0)
        self._engine.on_funding_rate(ts_ns, rate)


class StateStore:
    """Snapshots and the tick log of one data directory.

    Start with :meth:`recover` if :attr:`has_snapshot`, else with :meth:`save_snapshot`
    (both open a new tick log); then log every event with :meth:`record_event` (or
    :class:`RecordingInput`) before the engine sees it, snapshot periodically, and open
    the journals with ``before_flush=store.flush_log``.

    Only market events are logged, so anything else that changes the engine (stopping
    or resuming variants, the emergency stop, a reset or a promotion) must be followed
    by :meth:`save_snapshot` before the next event: a replay cannot repeat it.

    Parameters
    ----------
    data_dir : str or Path
        Where ``snapshot.bin`` and the tick logs live (created if missing).
    fsync_interval_s : float
        The tick log is fsynced at least this often while events arrive (and before
        every journal write).
    buffer_records : int
        Records buffered in memory before they are written to the file.
    clock : callable
        Monotonic seconds; ``time_ns``: wall-clock epoch ns for ``saved_at_ns``.
    main_variant_id : int
        The variant whose trades go to the main journal.
    """

    def __init__(self, data_dir: str | Path, *, fsync_interval_s: float = 1.0,
                 buffer_records: int = 4096, clock: Callable[[], float] = time.monotonic,
                 time_ns: Callable[[], int] = time.time_ns,
                 main_variant_id: int = MAIN_VARIANT) -> None:
        if buffer_records < 1:
            raise ValueError(f"buffer_records: {buffer_records} must be >= 1")
        self.data_dir = Path(data_dir)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.fsync_interval_s = fsync_interval_s
        self.main_variant_id = main_variant_id
        self._clock = clock
        self._time_ns = time_ns
        self._buffer = bytearray(buffer_records * _RECORD.size)
        self._buffered = 0
        self._log_fd = -1
        self._generation = 0
        self._events_logged = 0
        self._last_fsync = clock()
        # A store with a snapshot on disk must recover() before it may overwrite it.
        self._started = False

    @property
    def snapshot_path(self) -> Path:
        """``<data_dir>/snapshot.bin``."""
        return self.data_dir / SNAPSHOT_FILE

    @property
    def has_snapshot(self) -> bool:
        """Whether a snapshot exists (then :meth:`recover` is the way to start)."""
        return self.snapshot_path.exists()

    @property
    def events_logged(self) -> int:
        """Events logged since the data directory's first snapshot."""
        return self._events_logged

    def tick_log_path(self, generation: int) -> Path:
        """The tick log started by snapshot ``generation``."""
        return self.data_dir / f"ticks-{generation:08d}.bin"

    # ----------------------------------------------------------------------------------
    # The tick log

    def record_event(self, kind: int, ts_ns: int, a: float, b: float = 0.0,
                     c: float = 0.0, d: float = 0.0) -> None:
        """Log one engine event (call it before the engine sees the event)."""
        if self._log_fd < 0:
            raise RuntimeError("no tick log open: call save_snapshot() or recover() first")
        _RECORD.pack_into(self._buffer, self._buffered * _RECORD.size, kind, ts_ns, a, b, c, d)
        self._buffered += 1
        self._events_logged += 1
        if self._buffered * _RECORD.size == len(self._buffer):
            self._write_buffer()
            if self._clock() - self._last_fsync >= self.fsync_interval_s:
                self._fsync_log()

    def maybe_flush(self) -> None:
        """Write and fsync the buffered events if ``fsync_interval_s`` has passed; call it
        periodically so that quiet stretches do not keep events in memory."""
        if self._log_fd >= 0 and self._clock() - self._last_fsync >= self.fsync_interval_s:
            self.flush_log(fsync=True)

    def flush_log(self, fsync: bool = True) -> None:
        """Write the buffered events to the file (and fsync); the journals' hook."""
        if self._log_fd < 0:
            return
        self._write_buffer()
        if fsync:
            self._fsync_log()

    def _write_buffer(self) -> None:
        view = memoryview(self._buffer)[:self._buffered * _RECORD.size]
        while view:
            view = view[os.write(self._log_fd, view):]
        self._buffered = 0

    def _fsync_log(self) -> None:
        os.fsync(self._log_fd)
        self._last_fsync = self._clock()

    def _open_new_log(self, generation: int) -> int:
        path = self.tick_log_path(generation)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_APPEND, 0o644)
        try:
            os.write(fd, _HEADER.pack(_MAGIC, generation))
            os.fsync(fd)
            fsync_directory(self.data_dir)
        except BaseException:
            os.close(fd)
            path.unlink(missing_ok=True)
            raise
        return fd

    def close(self) -> None:
        """Write and fsync the buffered events and close the tick log (idempotent)."""
        if self._log_fd >= 0:
            self.flush_log(fsync=True)
            os.close(self._log_fd)
            self._log_fd = -1

    # ----------------------------------------------------------------------------------
    # Snapshots

    def save_snapshot(self, engine: Engine, journals: Mapping[str, TradeJournal], *,
                      extra: dict[str, Any] | None = None) -> SnapshotInfo:
        """Snapshot the engine and start a new tick log.

        Trades the engine still holds are journaled first (drain and journal them
        yourself to also publish them). The journals are flushed and fsynced, and their
        line counts saved with the engine state: recovery compares the lines after them.
        ``extra`` (msgpack-able builtins) is returned by :meth:`recover`.

        Raises
        ------
        RuntimeError
            If this store has not started and a snapshot exists (recover it first), or
            the engine does not keep its records (``keep_records=False``).
        """
        if not self._started and self.has_snapshot:
            raise RuntimeError(f"{self.snapshot_path} exists: call recover() first")
        if not engine.keep_records:
            raise RuntimeError("the engine must keep its records (keep_records=True)")
        batch = engine.drain_fills()
        journal_trades(batch.trades, engine.variants.config_hash, journals,
                       main_variant_id=self.main_variant_id)
        for journal in journals.values():
            journal.flush(fsync=True)  # flushes the tick log first
        counts = {name: journal.count() for name, journal in journals.items()}
        snapshot = SnapshotFile(
            version=SNAPSHOT_VERSION, generation=self._generation + 1,
            saved_at_ns=self._time_ns(), events_logged=self._events_logged,
            journal_counts=counts, engine=engine.snapshot(), extra=dict(extra or {}),
        )
        new_fd = self._open_new_log(snapshot.generation)
        try:
            self._write_snapshot(msgspec.msgpack.encode(snapshot))
        except BaseException:
            # The old snapshot and its log stay the recovery point.
            os.close(new_fd)
            self.tick_log_path(snapshot.generation).unlink(missing_ok=True)
            raise
        if self._log_fd >= 0:
            os.close(self._log_fd)
        self._log_fd = new_fd
        self._generation = snapshot.generation
        self._last_fsync = self._clock()
        self._started = True
        self._remove_old_logs()
        return SnapshotInfo(generation=snapshot.generation, events_logged=self._events_logged,
                            journal_counts=counts, trades_journaled=len(batch.trades))

    def _write_snapshot(self, data: bytes) -> None:
        temporary = self.snapshot_path.with_suffix(".tmp")
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(temporary, self.snapshot_path)
        fsync_directory(self.data_dir)

    def _remove_old_logs(self) -> None:
        for path in self.data_dir.glob("ticks-*.bin"):
            if path != self.tick_log_path(self._generation):
                path.unlink(missing_ok=True)

    def read_snapshot(self) -> SnapshotFile | None:
        """The saved snapshot, or None if there is none.

        Raises
        ------
        RecoveryError
            If the file is not a snapshot of this version.
        """
        try:
            data = self.snapshot_path.read_bytes()
        except FileNotFoundError:
            return None
        try:
            snapshot = msgspec.msgpack.decode(data, type=SnapshotFile)
        except msgspec.DecodeError as error:
            raise RecoveryError(f"{self.snapshot_path}: not a liveopt snapshot: {error}") from None
        if snapshot.version != SNAPSHOT_VERSION:
            raise RecoveryError(f"{self.snapshot_path}: snapshot version {snapshot.version}, "
                                f"this liveopt reads {SNAPSHOT_VERSION}")
        return snapshot

    def read_tick_log(self, generation: int) -> tuple[np.ndarray, int]:
        """The complete records of a tick log (``TICK_DTYPE``) and the bytes of a torn
        last record (a crash mid-write), which are ignored."""
        path = self.tick_log_path(generation)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise RecoveryError(f"{path}: the tick log of the snapshot is missing") from None
        if len(data) < _HEADER.size or _HEADER.unpack_from(data) != (_MAGIC, generation):
            raise RecoveryError(f"{path}: not the tick log of snapshot {generation}")
        body = len(data) - _HEADER.size
        complete = body - body % _RECORD.size
        records = np.frombuffer(data, dtype=TICK_DTYPE, count=complete // _RECORD.size,
                                offset=_HEADER.size)
        return records, body - complete

    # ----------------------------------------------------------------------------------
    # Recovery

    def recover(self, engine: Engine, journals: Mapping[str, TradeJournal]) -> RecoveryReport:
        """Restore ``engine`` (built with the snapshot's config and variants) from the last
        snapshot, replay the tick log, journal the trades the journals lack, and take a
        new snapshot (a new tick log starts).

        Raises
        ------
        RecoveryError
            If the snapshot or its tick log is unusable, the engine was built with another
            config or variants, or a journal has fewer lines than when the snapshot was
            taken.
        """
        if self._started:
            raise RuntimeError("recover() runs once, before any event is logged")
        torn_journal = sum(journal.torn_lines for journal in journals.values())
        snapshot = self.read_snapshot()
        if snapshot is None:
            self.save_snapshot(engine, journals)
            return RecoveryReport(
                snapshot_generation=None, events_replayed=0, events_logged=0,
                trades_replayed=0, trades_in_journal=0, trades_rejournaled=0,
                unexpected_journal_lines=0, torn_journal_lines=torn_journal,
                torn_tick_bytes=0, extra={},
            )
        try:
            engine.restore(snapshot.engine)
        except ValueError as error:
            raise RecoveryError(
                f"{self.snapshot_path}: {error}; start with the configuration it was taken "
                "with, or move the data directory aside to start afresh"
            ) from None
        records, torn_bytes = self.read_tick_log(snapshot.generation)
        rejected = _replay(engine, records)
        replayed = trade_records(engine.drain_fills().trades, engine.variants.config_hash)
        found = missing = unexpected = 0
        for name, expected in _route(replayed, self.main_variant_id).items():
            journal = journals[name]
            since = snapshot.journal_counts.get(name, 0)
            if journal.count() < since:
                raise RecoveryError(
                    f"{journal.path}: {journal.count()} lines, but {since} when the snapshot "
                    "was taken (the journal was truncated or replaced)"
                )
            present = Counter(journal.records_after(since))
            for record in expected:
                if present[record] > 0:
                    present[record] -= 1
                    found += 1
                else:
                    journal.append(record)
                    missing += 1
            unexpected += sum(present.values())
        self._generation = snapshot.generation
        self._events_logged = snapshot.events_logged + len(records)
        self._started = True
        self.save_snapshot(engine, journals, extra=snapshot.extra)
        return RecoveryReport(
            snapshot_generation=snapshot.generation, events_replayed=len(records),
            events_logged=self._events_logged, trades_replayed=len(replayed),
            trades_in_journal=found, trades_rejournaled=missing,
            unexpected_journal_lines=unexpected, torn_journal_lines=torn_journal,
            torn_tick_bytes=torn_bytes, extra=snapshot.extra, events_rejected=rejected,
        )


def _replay(engine: Engine, records: np.ndarray) -> int:
    # An event is logged before the engine checks it, so the log may hold events the live
    # engine refused (a bad price, a crossed quote). The checks depend only on the event
    # and the engine's state, so the replay refuses exactly the same ones: skip and count.
    on_trade, on_quote = engine.on_trade, engine.on_quote
    on_depth, on_funding_rate = engine.on_depth, engine.on_funding_rate
    rejected = 0
    for kind, ts, a, b, c, d in records.tolist():
        try:
            if kind == TRADE:
                on_trade(ts, a, b, int(c))
            elif kind == QUOTE:
                on_quote(ts, a, b, c, d)
            elif kind == DEPTH:
                on_depth(ts, a, b)
            elif kind == FUNDING_RATE:
                on_funding_rate(ts, a)
            else:
                raise RecoveryError(f"tick log: unknown event kind {kind} at ts {ts}")
        except (ValueError, OverflowError):
            rejected += 1
    return rejected
