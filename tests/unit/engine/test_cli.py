"""The ``liveopt`` command: the replay of the bundled trades and of a user's file (the demo,
the daemon on the simulator, is tested in tests/unit/service/test_daemon.py)."""

from __future__ import annotations

import json
import re

import pytest

from liveopt.cli import main
from tests.conftest import FTX_BTCPERP_1M


def test_replay_bundled_runs_the_variants_over_the_bundled_trades_and_prints_a_leaderboard(
    capsys, tmp_path
):
    summary_path = tmp_path / "summary.json"
    assert main(["replay", "--bundled", "--variants", "40", "--seed", "3", "--json",
                 str(summary_path)]) == 0
    out = capsys.readouterr().out
    assert re.search(r"^ticks\s+100,000 ", out, re.MULTILINE)
    assert re.search(r"^variants\s+40 \(random, seed 3\) on 1m", out, re.MULTILINE)
    assert "top 10 by net PnL:" in out
    summary = json.loads(summary_path.read_text())
    assert summary["ticks"] == 100_000 and summary["variants"] == 40
    assert summary["elapsed_s"] > 0
    assert summary["variant_ticks_per_s"] == pytest.approx(
        100_000 * 40 / summary["elapsed_s"])
    assert len(summary["top"]) == 10
    assert set(summary["top"][0]) >= {"id", "net_pnl", "trades", "sharpe", "max_drawdown"}
    pnl = [row["net_pnl"] for row in summary["top"]]
    assert pnl == sorted(pnl, reverse=True)
    assert summary["trades"] >= sum(row["trades"] for row in summary["top"])


def test_replay_of_a_candles_file_trades_on_its_bars_and_shows_progress(capsys):
    path = FTX_BTCPERP_1M
    assert main(["replay", str(path), "--variants", "20", "--timeframe", "5m",
                 "--progress"]) == 0
    captured = capsys.readouterr()
    assert re.search(r"^source .*\(candles\)", captured.out, re.MULTILINE)
    assert re.search(r"^ticks\s+45,031 ", captured.out, re.MULTILINE)
    assert "on 5m" in captured.out
    assert "100.0% 45,031/45,031" in captured.err


def test_indicators_command_prints_the_bank_on_the_bundled_trades(capsys):
    assert main(["indicators", "--timeframes", "1m,5m"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"^trades\s+100,000 ", out, re.MULTILINE)
    assert re.search(r"^candles\s+1m: [\d,]+, 5m: [\d,]+", out, re.MULTILINE)
    assert "24 unique configurations" in out
    assert re.search(r"rsi\(14\)@1m\s+rsi \d+\.\d{4}", out)


def test_replay_of_a_bad_file_stops_with_the_line_and_column(tmp_path, capsys):
    path = tmp_path / "trades.csv"
    path.write_text("ts,price,size,side\n1700000000000,100,1,buy\n1700000001000,abc,1,sell\n")
    assert main(["replay", str(path)]) == 2
    err = capsys.readouterr().err
    assert f"{path}:3: column 'price': not a number: 'abc'" in err


def test_replay_with_skip_reports_how_many_rows_it_rejected(tmp_path, capsys):
    path = tmp_path / "trades.csv"
    path.write_text(
        "ts,price,size,side\n1700000000000,100,1,buy\n1700000001000,-5,1,sell\n"
        "1700000002000,101,2,sell\n"
    )
    assert main(["replay", str(path), "--on-error", "skip", "--variants", "5"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"^ticks\s+2 .*, 1 input rows rejected", out, re.MULTILINE)


def test_unknown_timeframe_is_a_clear_error(capsys):
    assert main(["replay", "--bundled", "--timeframe", "2m"]) == 2
    assert "unknown timeframe '2m'" in capsys.readouterr().err


def test_a_file_that_is_neither_trades_nor_candles_is_a_clear_error(tmp_path, capsys):
    path = tmp_path / "quotes.csv"
    path.write_text("ts,bid,ask\n1700000000000,100,101\n")
    assert main(["replay", str(path)]) == 2
    assert "not a trades file" in capsys.readouterr().err


def test_replay_needs_a_file_or_bundled_but_not_both(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["replay"])
    assert exit_info.value.code == 2
    assert "give a file or --bundled" in capsys.readouterr().err
