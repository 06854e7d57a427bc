"""Append-only trade journals: one compact JSON ``TradeRecord`` per line.

Two files per data directory: ``trades.jsonl`` (the main strategy) and
``experimental-trades.jsonl`` (the variants). Records are buffered in memory and written
and fsynced together on a bounded schedule: as soon as ``fsync_every`` records wait, or
the oldest waiting record is ``fsync_interval_s`` old (checked on each append and on
:meth:`TradeJournal.maybe_flush`), and on close. A crash loses at most those waiting
records, and crash recovery (``liveopt.service.recovery``) writes them again from the tick
log, which is always flushed before the journal (``before_flush``).

On open the file is read once: an index of line offsets (and of lines per variant) is kept
in memory for paging. A last line without its newline is a write torn by a crash: it is
counted, reported and cut off. Any other undecodable line stops the open with its number.
"""

from __future__ import annotations

import logging
import os
import time
from array import array
from collections.abc import Callable
from pathlib import Path

import msgspec

from liveopt.service.views import TradePage, TradeRecord

__all__ = [
    "EXPERIMENTAL_JOURNAL",
    "JOURNAL_FILES",
    "MAIN_JOURNAL",
    "JournalCorruptError",
    "TradeJournal",
    "fsync_directory",
    "open_journals",
]

MAIN_JOURNAL = "main"
EXPERIMENTAL_JOURNAL = "experimental"
#: Journal name -> file name in the data directory.
JOURNAL_FILES: dict[str, str] = {
    MAIN_JOURNAL: "trades.jsonl",
    EXPERIMENTAL_JOURNAL: "experimental-trades.jsonl",
}
MAX_PAGE = 1000

_log = logging.getLogger(__name__)


class JournalCorruptError(ValueError):
    """A complete line of a journal is not a TradeRecord; the message names the file and
    the line number (1-based)."""


class TradeJournal:
    """One append-only JSONL journal of closed trades.

    Parameters
    ----------
    path : str or Path
        The file; created (with its directory) if missing.
    fsync_interval_s : float
        Longest time a record waits in memory before it is written and fsynced.
    fsync_every : int
        Most records that wait in memory.
    clock : callable
        Monotonic seconds (injected for tests).
    before_flush : callable or None
        Called before each write, e.g. to flush the tick log first (write-ahead).

    Raises
    ------
    JournalCorruptError
        If a complete line does not decode.
    """

    def __init__(self, path: str | Path, *, fsync_interval_s: float = 1.0,
                 fsync_every: int = 100, clock: Callable[[], float] = time.monotonic,
                 before_flush: Callable[[], None] | None = None) -> None:
        if not fsync_interval_s > 0:
            raise ValueError(f"fsync_interval_s: {fsync_interval_s!r} must be > 0")
        if fsync_every < 1:
            raise ValueError(f"fsync_every: {fsync_every!r} must be >= 1")
        self.path = Path(path)
        self.fsync_interval_s = fsync_interval_s
        self.fsync_every = fsync_every
        self.before_flush = before_flush
        self._clock = clock
        self._encoder = msgspec.json.Encoder()
        self._decoder = msgspec.json.Decoder(TradeRecord)
        self._offsets = array("q")  # start of each written line; one extra: the end
        self._by_variant: dict[int, list[int]] = {}
        self._pending: list[bytes] = []
        self._pending_since: float | None = None
        #: fsync calls made (the schedule's visible effect).
        self.fsyncs = 0
        #: Torn (unterminated) last lines found and cut off at open, and their bytes.
        self.torn_lines = 0
        self.torn_bytes = 0
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o644)
        try:
            self._load()
        except BaseException:
            os.close(self._fd)
            raise

    # ----------------------------------------------------------------------------------
    # Opening

    def _load(self) -> None:
        data = self.path.read_bytes()
        end = data.rfind(b"\n") + 1  # everything after the last newline is torn
        if end < len(data):
            self.torn_lines = 1
            self.torn_bytes = len(data) - end
            _log.warning("%s: cut off a torn last line of %d bytes (a crash mid-write)",
                         self.path, self.torn_bytes)
            os.ftruncate(self._fd, end)
            os.fsync(self._fd)
        offset = 0
        self._offsets.append(0)
        while offset < end:
            stop = data.index(b"\n", offset) + 1
            line_number = len(self._offsets)
            try:
                record = self._decoder.decode(data[offset:stop - 1])
            except msgspec.DecodeError as error:
                raise JournalCorruptError(
                    f"{self.path} line {line_number}: not a trade record: {error}"
                ) from None
            self._by_variant.setdefault(record.variant_id, []).append(line_number - 1)
            self._offsets.append(stop)
            offset = stop

    # ----------------------------------------------------------------------------------
    # Writing

    def append(self, record: TradeRecord) -> None:
        """Add one record; it is written by the schedule (see the module docstring)."""
        line = self._encoder.encode(record) + b"\n"
        if not self._pending:
            self._pending_since = self._clock()
        index = self.count()
        self._pending.append(line)
        self._by_variant.setdefault(record.variant_id, []).append(index)
        self.maybe_flush()

    def maybe_flush(self) -> bool:
        """Write and fsync if the schedule says so; return whether it did. Call it
        periodically so a quiet journal does not keep records waiting."""
        if not self._pending:
            return False
        waited = self._clock() - (self._pending_since or 0.0)
        if len(self._pending) >= self.fsync_every or waited >= self.fsync_interval_s:
            self.flush(fsync=True)
            return True
        return False

    def flush(self, fsync: bool = True) -> None:
        """Write the waiting records now (``before_flush`` first), then fsync if asked."""
        if self.before_flush is not None:
            self.before_flush()
        if self._pending:
            data = b"".join(self._pending)
            view = memoryview(data)
            while view:
                written = os.write(self._fd, view)
                view = view[written:]
            start = self._offsets[-1]
            for line in self._pending:
                start += len(line)
                self._offsets.append(start)
            self._pending.clear()
            self._pending_since = None
        if fsync:
            os.fsync(self._fd)
            self.fsyncs += 1

    def close(self) -> None:
        """Write and fsync what waits, then close the file (idempotent)."""
        if self._fd < 0:
            return
        self.flush(fsync=True)
        os.close(self._fd)
        self._fd = -1

    def __enter__(self) -> TradeJournal:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ----------------------------------------------------------------------------------
    # Reading

    @property
    def pending(self) -> int:
        """Records waiting in memory (lost by a crash now)."""
        return len(self._pending)

    def count(self) -> int:
        """Records in the journal, waiting ones included."""
        return len(self._offsets) - 1 + len(self._pending)

    def _line(self, index: int) -> bytes:
        written = len(self._offsets) - 1
        if index >= written:
            return self._pending[index - written]
        start, stop = self._offsets[index], self._offsets[index + 1]
        return os.pread(self._fd, stop - start, start)

    def _record(self, index: int) -> TradeRecord:
        return self._decoder.decode(self._line(index))

    def page(self, *, variant_id: int | None = None, offset: int = 0,
             limit: int = 100) -> TradePage:
        """Records newest first, optionally of one variant only.

        Raises
        ------
        ValueError
            If ``offset < 0`` or ``limit`` is outside ``[1, 1000]``.
        """
        if offset < 0:
            raise ValueError(f"offset: {offset} must be >= 0")
        if not 1 <= limit <= MAX_PAGE:
            raise ValueError(f"limit: {limit} must be in [1, {MAX_PAGE}]")
        if variant_id is None:
            total = self.count()
            indices = range(total - 1 - offset, max(total - 1 - offset - limit, -1), -1)
        else:
            lines = self._by_variant.get(variant_id, [])
            total = len(lines)
            stop = max(total - offset, 0)
            indices = reversed(lines[max(stop - limit, 0):stop])
        items = [self._record(i) for i in indices]
        return TradePage(items=items, total=total, offset=offset, limit=limit)

    def records_after(self, line: int) -> list[TradeRecord]:
        """The records from line index ``line`` (0-based: skip the first ``line``) to the
        end, oldest first."""
        if line < 0:
            raise ValueError(f"line: {line} must be >= 0")
        return [self._record(i) for i in range(line, self.count())]


def open_journals(data_dir: str | Path, *, fsync_interval_s: float = 1.0,
                  fsync_every: int = 100, clock: Callable[[], float] = time.monotonic,
                  before_flush: Callable[[], None] | None = None) -> dict[str, TradeJournal]:
    """Open both journals of a data directory, keyed ``"main"`` and ``"experimental"``."""
    journals: dict[str, TradeJournal] = {}
    try:
        for name, file_name in JOURNAL_FILES.items():
            journals[name] = TradeJournal(
                Path(data_dir) / file_name, fsync_interval_s=fsync_interval_s,
                fsync_every=fsync_every, clock=clock, before_flush=before_flush,
            )
    except BaseException:
        for journal in journals.values():
            journal.close()
        raise
    return journals


def fsync_directory(path: str | Path) -> None:
    """fsync a directory, so that a rename or a new file in it survives a power loss."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
