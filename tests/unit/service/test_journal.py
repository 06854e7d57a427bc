"""TradeJournal: append-only JSONL, paging, torn-line recovery, the fsync schedule."""

from __future__ import annotations

from pathlib import Path

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from liveopt.service.journal import (
    JOURNAL_FILES,
    JournalCorruptError,
    TradeJournal,
    open_journals,
)
from liveopt.service.views import TradeRecord


class FakeClock:
    """Monotonic seconds that move only when told."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def record(i: int, variant: int = 1) -> TradeRecord:
    return TradeRecord(
        variant_id=variant, config_hash=2**63 + i, side="long" if i % 2 else "short",
        entry_ts_ns=1_000 * i, exit_ts_ns=1_000 * i + 500, entry_price=100.0 + i,
        exit_price=101.5 + i / 3, size_lots=3.0, fees=0.12, funding=-0.01,
        net_pnl=(i - 5) / 7, roi_pct=1.25, exit_reason="take_profit",
    )


def test_append_writes_one_compact_json_object_per_line(tmp_path: Path) -> None:
    path = tmp_path / "trades.jsonl"
    with TradeJournal(path) as journal:
        for i in range(3):
            journal.append(record(i))

    lines = path.read_bytes().splitlines()
    assert len(lines) == 3
    assert [msgspec.json.decode(line, type=TradeRecord) for line in lines] == [
        record(i) for i in range(3)]
    assert all(b" " not in line and b"\n" not in line for line in lines)


def test_page_is_newest_first_with_offset_and_total(tmp_path: Path) -> None:
    with TradeJournal(tmp_path / "j.jsonl") as journal:
        for i in range(10):
            journal.append(record(i))

        page = journal.page(offset=2, limit=3)

    assert page.total == 10
    assert (page.offset, page.limit) == (2, 3)
    assert page.items == [record(7), record(6), record(5)]


def test_page_filters_by_variant(tmp_path: Path) -> None:
    with TradeJournal(tmp_path / "j.jsonl") as journal:
        for i in range(12):
            journal.append(record(i, variant=i % 3))

        page = journal.page(variant_id=1, offset=1, limit=2)
        absent = journal.page(variant_id=99)

    assert page.total == 4  # i = 1, 4, 7, 10
    assert page.items == [record(7, 1), record(4, 1)]
    assert absent.total == 0 and absent.items == []


def test_page_past_the_end_is_empty_and_bad_bounds_raise(tmp_path: Path) -> None:
    with TradeJournal(tmp_path / "j.jsonl") as journal:
        journal.append(record(0))
        assert journal.page(offset=5).items == []
        with pytest.raises(ValueError, match="limit"):
            journal.page(limit=0)
        with pytest.raises(ValueError, match="offset"):
            journal.page(offset=-1)


def test_restart_sees_old_records_and_appends_after_them(tmp_path: Path) -> None:
    path = tmp_path / "j.jsonl"
    with TradeJournal(path) as journal:
        for i in range(4):
            journal.append(record(i, variant=i % 2))

    with TradeJournal(path) as reopened:
        reopened.append(record(4, variant=0))
        assert reopened.count() == 5
        assert reopened.records_after(3) == [record(3, 1), record(4, 0)]
        assert reopened.page(variant_id=0).items == [record(4, 0), record(2, 0), record(0, 0)]

    assert len(path.read_bytes().splitlines()) == 5


def test_torn_last_line_is_counted_and_cut_off(tmp_path: Path) -> None:
    path = tmp_path / "j.jsonl"
    with TradeJournal(path) as journal:
        journal.append(record(0))
        journal.append(record(1))
    whole = path.read_bytes()
    torn = msgspec.json.encode(record(2))[:17]
    path.write_bytes(whole + torn)

    with TradeJournal(path) as reopened:
        assert reopened.torn_lines == 1
        assert reopened.torn_bytes == len(torn)
        assert reopened.count() == 2
        reopened.append(record(3))

    assert path.read_bytes() == whole + msgspec.json.encode(record(3)) + b"\n"


def test_corrupt_complete_line_raises_naming_its_number(tmp_path: Path) -> None:
    path = tmp_path / "j.jsonl"
    good = msgspec.json.encode(record(0)) + b"\n"
    path.write_bytes(good + b'{"variant_id": "x"}\n' + good)

    with pytest.raises(JournalCorruptError, match=r"line 2: "):
        TradeJournal(path)


def test_records_wait_until_fsync_every_then_are_written_together(tmp_path: Path) -> None:
    path = tmp_path / "j.jsonl"
    clock = FakeClock()
    journal = TradeJournal(path, fsync_every=3, fsync_interval_s=10.0, clock=clock)

    journal.append(record(0))
    journal.append(record(1))
    assert path.read_bytes() == b""
    assert journal.pending == 2 and journal.count() == 2
    journal.append(record(2))

    assert len(path.read_bytes().splitlines()) == 3
    assert journal.pending == 0 and journal.fsyncs == 1
    journal.close()


def test_oldest_waiting_record_is_written_after_the_interval(tmp_path: Path) -> None:
    path = tmp_path / "j.jsonl"
    clock = FakeClock()
    journal = TradeJournal(path, fsync_every=100, fsync_interval_s=1.0, clock=clock)
    journal.append(record(0))
    clock.now = 0.5
    journal.append(record(1))
    assert not journal.maybe_flush()
    assert path.read_bytes() == b""

    clock.now = 1.0
    assert journal.maybe_flush()

    assert len(path.read_bytes().splitlines()) == 2
    assert journal.fsyncs == 1
    journal.close()


def test_waiting_records_are_paged_before_they_are_written(tmp_path: Path) -> None:
    journal = TradeJournal(tmp_path / "j.jsonl", fsync_every=100, clock=FakeClock())
    journal.append(record(0))
    journal.flush()
    journal.append(record(1))

    assert journal.page().items == [record(1), record(0)]
    assert journal.records_after(0) == [record(0), record(1)]
    journal.close()


def test_crash_loses_only_the_waiting_records(tmp_path: Path) -> None:
    path = tmp_path / "j.jsonl"
    journal = TradeJournal(path, fsync_every=4, clock=FakeClock())
    for i in range(6):
        journal.append(record(i))
    # A crash: the object is abandoned without close(); its memory buffer is gone.
    del journal

    with TradeJournal(path) as reopened:
        assert reopened.records_after(0) == [record(i) for i in range(4)]


def test_before_flush_runs_before_every_write(tmp_path: Path) -> None:
    path = tmp_path / "j.jsonl"
    seen: list[int] = []
    journal = TradeJournal(path, fsync_every=2, clock=FakeClock(),
                           before_flush=lambda: seen.append(len(path.read_bytes())))
    for i in range(4):
        journal.append(record(i))

    assert len(seen) == 2
    assert seen[0] == 0  # called before the first write reached the file
    journal.close()


def test_open_journals_uses_the_two_documented_file_names(tmp_path: Path) -> None:
    journals = open_journals(tmp_path)
    for journal in journals.values():
        journal.close()

    assert {name: j.path.name for name, j in journals.items()} == JOURNAL_FILES
    assert JOURNAL_FILES == {"main": "trades.jsonl",
                             "experimental": "experimental-trades.jsonl"}


@settings(max_examples=25, deadline=None)
@given(st.lists(st.integers(0, 4), max_size=40), st.integers(0, 45), st.integers(1, 10),
       st.one_of(st.none(), st.integers(0, 4)), st.integers(1, 7))
def test_page_equals_reversed_filtered_slice(variants: list[int], offset: int, limit: int,
                                             variant: int | None, fsync_every: int) -> None:
    import tempfile

    with tempfile.TemporaryDirectory() as directory:
        journal = TradeJournal(Path(directory) / "j.jsonl", fsync_every=fsync_every,
                               clock=FakeClock())
        records = [record(i, v) for i, v in enumerate(variants)]
        for r in records:
            journal.append(r)

        page = journal.page(variant_id=variant, offset=offset, limit=limit)
        journal.close()

    selected = [r for r in reversed(records) if variant is None or r.variant_id == variant]
    assert page.total == len(selected)
    assert page.items == selected[offset:offset + limit]
