"""Crash recovery of the whole daemon: ``liveopt run`` in a subprocess (fed by a simulator
running in a thread of the test process), killed with SIGKILL mid-run, then the daemon
restarted on the same data directory; and the tick log's tolerance of events the engine
refused."""

from __future__ import annotations

import asyncio
import io
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import msgspec
import pytest

from liveopt.engine import Engine, EngineConfig
from liveopt.optimizer import generate_variants
from liveopt.service.config import load_config
from liveopt.service.daemon import Daemon
from liveopt.service.journal import open_journals
from liveopt.service.recovery import RecordingInput, RecoveryReport, StateStore
from liveopt.service.views import TradeRecord
from tests.unit.service.test_daemon import start_fast_sim

ROOT = Path(__file__).resolve().parents[3]
START_LIMIT_S = 60.0  # a first run may load the compiled kernels from a cold cache
WAIT_LIMIT_S = 20.0
JOURNALS = ("trades.jsonl", "experimental-trades.jsonl")
CONFIG = """\
[service]
data_dir = "{data_dir}"
mode = "paper"

[exchange]
rest_url = "{rest_url}"

[optimizer]
enabled = true
variants = 16
seed = 1
generation = "random"

[optimizer.space]
timeframes = ["1m"]
default_timeframe = "1m"
strong_buy = {{ low = 0.05, high = 0.15, step = 0.05, default = 0.1 }}
buy = {{ low = 0.02, high = 0.04, step = 0.01, default = 0.03 }}
sell = {{ low = -0.04, high = -0.02, step = 0.01, default = -0.03 }}
strong_sell = {{ low = -0.15, high = -0.05, step = 0.05, default = -0.1 }}
min_confidence = {{ low = 0.05, high = 0.15, step = 0.05, default = 0.1 }}

[api]
port = 0

[journal]
fsync_interval_s = 0.2
snapshot_interval_s = 60.0
"""


class Process:
    """A subprocess whose standard output is collected line by line by a thread."""

    def __init__(self, args: list[str], env: dict[str, str]) -> None:
        self.popen = subprocess.Popen(
            [sys.executable, "-m", "liveopt.cli", *args], cwd=ROOT, env=env,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.lines: list[str] = []
        self.errors: list[str] = []
        self._threads = [threading.Thread(target=self._read, args=(stream, sink), daemon=True)
                         for stream, sink in ((self.popen.stdout, self.lines),
                                              (self.popen.stderr, self.errors))]
        for thread in self._threads:
            thread.start()

    @staticmethod
    def _read(stream, sink: list[str]) -> None:
        for line in stream:
            sink.append(line.rstrip("\n"))

    def wait_for_line(self, pattern: str, limit_s: float) -> re.Match[str]:
        """The first output line matching ``pattern``."""
        deadline = time.monotonic() + limit_s
        while True:
            for line in list(self.lines):
                match = re.search(pattern, line)
                if match:
                    return match
            if self.popen.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"no line matching {pattern!r}; stdout {self.lines}, "
                            f"stderr {self.errors[-20:]}")
            time.sleep(0.05)

    def finish(self) -> int:
        """Wait for the exit and the readers; return the exit status."""
        status = self.popen.wait(timeout=30)
        for thread in self._threads:
            thread.join(timeout=5)
        return status

    def kill(self) -> None:
        if self.popen.poll() is None:
            self.popen.kill()
        self.finish()


@contextmanager
def simulator_in_a_thread() -> Iterator[str]:
    """The test suite's fast simulator on its own event loop in a thread; yields its URL."""
    ready = threading.Event()
    state: dict[str, object] = {}

    async def serve() -> None:
        sim = await start_fast_sim()
        stop = asyncio.Event()
        state["url"], state["stop"] = sim.url, stop
        state["loop"] = asyncio.get_running_loop()
        ready.set()
        try:
            await stop.wait()
        finally:
            await sim.stop()

    thread = threading.Thread(target=asyncio.run, args=(serve(),), daemon=True)
    thread.start()
    assert ready.wait(timeout=30), "the simulator did not start"
    try:
        yield str(state["url"])
    finally:
        loop = state["loop"]
        assert isinstance(loop, asyncio.AbstractEventLoop)
        loop.call_soon_threadsafe(state["stop"].set)  # type: ignore[union-attr]
        thread.join(timeout=10)


@contextmanager
def running(args: list[str], env: dict[str, str]) -> Iterator[Process]:
    process = Process(args, env)
    try:
        yield process
    finally:
        process.kill()


def trade_lines(data_dir: Path) -> list[bytes]:
    """The complete lines of both journals."""
    lines: list[bytes] = []
    for name in JOURNALS:
        path = data_dir / name
        if path.exists():
            data = path.read_bytes()
            lines.extend(data[:data.rfind(b"\n") + 1].splitlines())
    return lines


def wait_for(condition: Callable[[], bool], what: str, process: Process) -> None:
    deadline = time.monotonic() + WAIT_LIMIT_S
    while not condition():
        if process.popen.poll() is not None or time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}; stderr {process.errors[-20:]}")
        time.sleep(0.05)


def test_sigkill_mid_run_then_restart_recovers_without_duplicates_and_continues(
        tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "LIVEOPT_API_TOKEN": "t" * 24}
    for name in ("KUCOIN_API_KEY", "KUCOIN_API_SECRET", "KUCOIN_API_PASSPHRASE",
                 "OPTIMIZER_ENABLED"):
        env.pop(name, None)
    data_dir = tmp_path / "data"
    with simulator_in_a_thread() as rest_url:
        config = tmp_path / "liveopt.toml"
        config.write_text(CONFIG.format(data_dir=data_dir, rest_url=rest_url))
        with running(["run", "--config", str(config)], env) as first:
            first.wait_for_line(r"dashboard: http://127\.0\.0\.1:\d+/", START_LIMIT_S)
            wait_for(lambda: len(trade_lines(data_dir)) >= 1, "journaled trades", first)
            first.popen.send_signal(signal.SIGKILL)
            assert first.finish() == -signal.SIGKILL
        after_kill = trade_lines(data_dir)

        # The restart runs in this process (the same code as ``liveopt run``, without a
        # second interpreter start-up): it must recover, then go on trading.
        restart = asyncio.run(_restart_and_continue(config, env, data_dir,
                                                     len(after_kill)))
        report = restart.recovery
        assert report is not None and report.snapshot_generation is not None
        assert report.events_replayed > 0
        assert report.trades_replayed == report.trades_in_journal + report.trades_rejournaled
        assert report.trades_in_journal == len(after_kill)  # every line, none twice
        assert report.unexpected_journal_lines == 0
        assert re.search(r"recovered: snapshot \d+, [1-9]\d* events replayed", restart.output)

    lines = trade_lines(data_dir)
    assert set(after_kill) <= set(lines)
    records = [msgspec.json.decode(line, type=TradeRecord) for line in lines]
    keys = [(r.variant_id, r.entry_ts_ns, r.exit_ts_ns) for r in records]
    assert len(keys) == len(set(keys)), "a trade was journaled twice"


class Restart:
    """What the in-process restart saw."""

    def __init__(self, recovery: RecoveryReport | None, output: str) -> None:
        self.recovery = recovery
        self.output = output


async def _restart_and_continue(config: Path, env: dict[str, str], data_dir: Path,
                                lines_before: int) -> Restart:
    out = io.StringIO()
    daemon = await Daemon.start(load_config(config, env), environ=env, out=out)
    try:
        report = daemon.recovery
        assert report is not None
        floor = lines_before + report.trades_rejournaled
        deadline = time.monotonic() + WAIT_LIMIT_S
        while len(trade_lines(data_dir)) <= floor:  # the journals grow again
            assert time.monotonic() < deadline, "no new trade after the restart"
            await asyncio.sleep(0.05)
    finally:
        await daemon.stop()
    return Restart(report, out.getvalue())


# --- the tick log keeps events the engine refused ---------------------------------------


def _engine() -> Engine:
    return Engine(EngineConfig(), generate_variants(3, "random", 0))


def test_event_the_engine_refused_does_not_poison_the_tick_log() -> None:
    # RecordingInput logs an event before the engine checks it; recovery must replay past
    # it (the engine refuses it again) instead of failing on it.
    with tempfile.TemporaryDirectory() as directory:
        store = StateStore(directory)
        journals = open_journals(directory, before_flush=store.flush_log)
        engine = _engine()
        store.save_snapshot(engine, journals)
        recording = RecordingInput(engine, store)
        start = 1_700_000_000_000_000_000
        recording.on_trade(start, 100.0, 1.0, 1)
        with pytest.raises(ValueError, match="price"):
            recording.on_trade(start + 1, float("nan"), 1.0, 1)
        with pytest.raises(ValueError, match="crossed"):
            recording.on_quote(start + 2, 101.0, 1.0, 100.0, 1.0)
        recording.on_trade(start + 3, 101.0, 2.0, -1)
        store.close()
        expected = _engine()
        expected.restore(engine.snapshot())

        restarted = StateStore(directory)
        journals = open_journals(directory, before_flush=restarted.flush_log)
        recovered = _engine()
        report = restarted.recover(recovered, journals)
        assert report.events_replayed == 4
        assert report.events_rejected == 2
        assert recovered.snapshot() == expected.snapshot()
        restarted.close()
        for journal in journals.values():
            journal.close()
