"""Crash recovery: snapshot + tick log replay, no journaled trade lost or written twice.

The central tests crash a run (a real SIGKILL of a subprocess, and in-process abandonment
at kill points drawn by hypothesis), recover, and compare the journals with an
uninterrupted run over the same ticks.
"""

from __future__ import annotations

import functools
import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import msgspec
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from liveopt.data.synthetic import bundled_trades
from liveopt.engine import Engine, EngineConfig
from liveopt.optimizer import OptimizerConfig, Range, generate_variants
from liveopt.service.journal import JOURNAL_FILES, open_journals
from liveopt.service.recovery import (
    RecordingInput,
    RecoveryError,
    StateStore,
    journal_trades,
    trade_records,
)
from liveopt.service.views import TradeRecord

REPO = Path(__file__).resolve().parents[3]
N_TICKS = 3000


def make_engine(capital: float = 10_000.0) -> Engine:
    """Eight 1m variants with loose thresholds, so that a few thousand ticks close
    plenty of trades; safety stops off so every variant keeps trading."""
    space = OptimizerConfig(
        timeframes=("1m",), default_timeframe="1m",
        strong_buy=Range(0.1, 0.3, 0.05, 0.2), buy=Range(0.05, 0.1, 0.05, 0.1),
        sell=Range(-0.1, -0.05, 0.05, -0.1), strong_sell=Range(-0.3, -0.1, 0.05, -0.2),
        min_confidence=Range(0.0, 0.2, 0.05, 0.1), stop_loss_roi=Range(0.3, 0.6, 0.1, 0.5),
        take_profit_roi=Range(1.0, 1.5, 0.5, 1.0),
    )
    config = EngineConfig(capital=capital, buffer_events=64, max_loss_pct=None,
                          max_drawdown_pct=None, halt_below_pct=None,
                          baseline_max_drawdown_pct=None)
    return Engine(config, generate_variants(8, "random", 7, space))


@functools.cache
def ticks() -> tuple[list[int], list[float], list[float], list[int]]:
    trades = bundled_trades()
    return (trades.ts.tolist(), trades.price.tolist(), trades.size.tolist(),
            trades.side.tolist())


def feed(engine_input, start: int, stop: int) -> None:
    ts, price, size, side = ticks()
    for i in range(start, stop):
        engine_input.on_trade(ts[i], price[i], size[i], side[i])


def uninterrupted(n_events: int) -> dict[str, list[TradeRecord]]:
    """The journals of a run over the first ``n_events`` ticks that never crashed."""
    engine = make_engine()
    feed(engine, 0, n_events)
    records = trade_records(engine.drain_fills().trades, engine.variants.config_hash)
    return {"main": [r for r in records if r.variant_id == 0],
            "experimental": [r for r in records if r.variant_id != 0]}


@functools.cache
def full_reference() -> dict[str, list[TradeRecord]]:
    return uninterrupted(N_TICKS)


def assert_same_metrics(actual: np.ndarray, desired: np.ndarray) -> None:
    # Field by field: assert_array_equal treats NaN as equal only in float arrays.
    for name in desired.dtype.names:
        np.testing.assert_array_equal(actual[name], desired[name], err_msg=name)


def journal_contents(data_dir: Path) -> dict[str, list[TradeRecord]]:
    out = {}
    for name, file_name in JOURNAL_FILES.items():
        lines = (data_dir / file_name).read_bytes().splitlines()
        out[name] = [msgspec.json.decode(line, type=TradeRecord) for line in lines]
    return out


class Daemon:
    """The state-handling part of the daemon: log, feed, journal, snapshot."""

    def __init__(self, data_dir: Path, *, fsync_every: int = 7,
                 buffer_records: int = 32) -> None:
        self.store = StateStore(data_dir, buffer_records=buffer_records)
        self.journals = open_journals(data_dir, fsync_every=fsync_every,
                                      fsync_interval_s=3600.0,
                                      before_flush=self.store.flush_log)
        self.engine = make_engine()
        self.report = None
        if self.store.has_snapshot:
            self.report = self.store.recover(self.engine, self.journals)
        else:
            self.store.save_snapshot(self.engine, self.journals)
        self.input = RecordingInput(self.engine, self.store)

    def run(self, start: int, stop: int, *, drain_every: int = 50,
            snapshot_every: int = 700, on_snapshot=None) -> None:
        for i in range(start, stop, drain_every):
            feed(self.input, i, min(i + drain_every, stop))
            journal_trades(self.engine.drain_fills().trades, self.engine.variants.config_hash,
                           self.journals)
            if (i // drain_every + 1) % (snapshot_every // drain_every) == 0:
                info = self.store.save_snapshot(self.engine, self.journals)
                if on_snapshot is not None:
                    on_snapshot(info.generation)

    def close(self) -> None:
        for journal in self.journals.values():
            journal.close()
        self.store.close()


def crash_worker(data_dir: str, kill_at: str) -> None:
    """Run in a subprocess: feed ``kill_at`` ticks, say ``ready`` and wait to be killed,
    with trades still waiting in the journals' memory buffers."""
    daemon = Daemon(Path(data_dir))
    daemon.run(0, int(kill_at))
    print(f"ready {sum(j.pending for j in daemon.journals.values())}", flush=True)
    signal.pause()


# --- a real SIGKILL -------------------------------------------------------------------

# With the Daemon's defaults, 2500 ticks leave trades both journaled and still waiting
# in memory after the last snapshot, so both recovery paths run.
KILL_AT = 2500


def test_sigkill_mid_run_then_recovery_journals_exactly_the_uninterrupted_trades(
        tmp_path: Path) -> None:
    code = ("import sys; from tests.unit.service.test_recovery import crash_worker; "
            "crash_worker(sys.argv[1], sys.argv[2])")
    worker = subprocess.Popen(
        [sys.executable, "-c", code, str(tmp_path), str(KILL_AT)], cwd=REPO,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        ready = worker.stdout.readline().split()
        os.kill(worker.pid, signal.SIGKILL)
    finally:
        worker.kill()
        _, errors = worker.communicate(timeout=60)
    assert worker.returncode == -signal.SIGKILL, errors
    assert ready[:1] == ["ready"] and int(ready[1]) > 0, errors

    daemon = Daemon(tmp_path)
    report = daemon.report
    daemon.close()

    assert report is not None and report.snapshot_generation is not None
    assert report.trades_in_journal > 0 and report.trades_rejournaled > 0
    assert report.trades_in_journal + report.trades_rejournaled == report.trades_replayed
    assert report.unexpected_journal_lines == 0
    assert journal_contents(tmp_path) == uninterrupted(report.events_logged)


# --- kill points drawn by hypothesis --------------------------------------------------


@settings(max_examples=15, deadline=None)
@given(kill_at=st.integers(1, N_TICKS - 1), fsync_every=st.integers(2, 30),
       buffer_records=st.integers(1, 200))
def test_crash_at_any_point_then_recover_and_continue_equals_an_uninterrupted_run(
        kill_at: int, fsync_every: int, buffer_records: int) -> None:
    with tempfile.TemporaryDirectory() as directory:
        data_dir = Path(directory)
        crashed = Daemon(data_dir, fsync_every=fsync_every, buffer_records=buffer_records)
        crashed.run(0, kill_at)
        del crashed  # a crash: nothing is flushed or closed

        resumed = Daemon(data_dir, fsync_every=fsync_every, buffer_records=buffer_records)
        report = resumed.report
        assert report is not None
        assert report.events_logged <= kill_at
        # The feed resumes where the log ends (the events after it never happened).
        resumed.run(report.events_logged, N_TICKS)
        resumed.close()

        assert journal_contents(data_dir) == full_reference()
        assert report.unexpected_journal_lines == 0


def test_replay_is_deterministic_and_restores_metrics(tmp_path: Path) -> None:
    daemon = Daemon(tmp_path)
    daemon.run(0, 1500, snapshot_every=400)
    before = daemon.engine.metrics()
    assert before["trades"].sum() > 0
    daemon.close()  # a clean stop: everything is on disk

    again = Daemon(tmp_path)
    report = again.report
    after = again.engine.metrics()
    again.close()

    assert report is not None and report.events_logged == 1500
    assert report.events_replayed == 1500 - 1200
    assert report.trades_rejournaled == 0
    assert report.trades_in_journal == report.trades_replayed
    assert_same_metrics(after, before)


# --- the files ------------------------------------------------------------------------


def test_torn_tick_record_is_ignored_and_reported(tmp_path: Path) -> None:
    daemon = Daemon(tmp_path)
    daemon.run(0, 300)
    daemon.close()
    log = next(tmp_path.glob("ticks-*.bin"))
    with log.open("ab") as handle:
        handle.write(b"\x00" * 20)

    again = Daemon(tmp_path)
    again.close()

    assert again.report is not None
    assert again.report.torn_tick_bytes == 20
    assert again.report.events_logged == 300
    assert journal_contents(tmp_path) == uninterrupted(300)


def test_snapshot_replaces_the_tick_log_and_keeps_one(tmp_path: Path) -> None:
    daemon = Daemon(tmp_path)
    first = sorted(p.name for p in tmp_path.glob("ticks-*.bin"))
    daemon.run(0, 100)
    info = daemon.store.save_snapshot(daemon.engine, daemon.journals, extra={"note": "x"})
    daemon.close()

    assert first == ["ticks-00000001.bin"]
    assert sorted(p.name for p in tmp_path.glob("ticks-*.bin")) == [
        f"ticks-{info.generation:08d}.bin"]
    assert not list(tmp_path.glob("*.tmp"))
    assert daemon.store.read_snapshot().extra == {"note": "x"}


def test_extra_survives_recovery(tmp_path: Path) -> None:
    daemon = Daemon(tmp_path)
    daemon.store.save_snapshot(daemon.engine, daemon.journals, extra={"promotions": [1, 2]})
    daemon.close()

    again = Daemon(tmp_path)
    again.close()

    assert again.report.extra == {"promotions": [1, 2]}


def test_save_snapshot_journals_trades_the_caller_did_not_drain(tmp_path: Path) -> None:
    daemon = Daemon(tmp_path)
    feed(daemon.input, 0, 1500)
    info = daemon.store.save_snapshot(daemon.engine, daemon.journals)
    daemon.close()

    assert info.trades_journaled > 0
    assert journal_contents(tmp_path) == uninterrupted(1500)


def test_snapshot_from_another_config_is_refused(tmp_path: Path) -> None:
    Daemon(tmp_path).close()
    store = StateStore(tmp_path)
    journals = open_journals(tmp_path)

    with pytest.raises(RecoveryError, match="another EngineConfig"):
        store.recover(make_engine(capital=5_000.0), journals)


def test_existing_snapshot_cannot_be_overwritten_before_recovery(tmp_path: Path) -> None:
    Daemon(tmp_path).close()
    store = StateStore(tmp_path)

    with pytest.raises(RuntimeError, match="recover"):
        store.save_snapshot(make_engine(), open_journals(tmp_path))


def test_events_cannot_be_logged_before_a_start(tmp_path: Path) -> None:
    store = StateStore(tmp_path)

    with pytest.raises(RuntimeError, match="save_snapshot"):
        store.record_event(0, 1, 100.0, 1.0, 1.0)


def test_journal_shorter_than_at_snapshot_is_refused(tmp_path: Path) -> None:
    daemon = Daemon(tmp_path)
    daemon.run(0, 1500, snapshot_every=1400)
    daemon.close()
    experimental = tmp_path / JOURNAL_FILES["experimental"]
    assert experimental.read_bytes()  # the run closed trades
    experimental.write_bytes(b"")

    with pytest.raises(RecoveryError, match="truncated or replaced"):
        Daemon(tmp_path)


def test_quotes_depth_and_funding_are_logged_and_replayed(tmp_path: Path) -> None:
    ts, price, size, side = ticks()
    daemon = Daemon(tmp_path)
    for i in range(600):
        daemon.input.on_trade(ts[i], price[i], size[i], side[i])
        daemon.input.on_quote(ts[i], price[i] - 0.1, 2.0, price[i] + 0.1, 3.0)
        daemon.input.on_depth(ts[i], 20.0 + i % 7, 25.0)
    daemon.input.on_funding_rate(ts[600], 0.0001)
    before = daemon.engine.metrics()
    daemon.store.flush_log()
    log_records, torn = daemon.store.read_tick_log(1)
    del daemon  # a crash, with every event on disk

    again = Daemon(tmp_path)
    after = again.engine.metrics()
    again.close()

    assert torn == 0
    assert sorted(set(log_records["kind"].tolist())) == [0, 1, 2, 3]
    assert again.report.events_replayed == 3 * 600 + 1
    assert_same_metrics(after, before)
