"""The ``liveopt`` command: the demo and the replay of a user's file."""

from __future__ import annotations

import re

from liveopt.cli import main


def test_demo_replays_the_bundled_trades_and_prints_a_summary(capsys):
    assert main(["demo", "--timeframes", "1m,5m"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"^trades\s+100,000 ", out, re.MULTILINE)
    assert re.search(r"^rejected\s+0 input rows", out, re.MULTILINE)
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
    assert main(["replay", str(path), "--on-error", "skip", "--timeframes", "1m"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"^trades\s+2 ", out, re.MULTILINE)
    assert re.search(r"^rejected\s+1 input rows", out, re.MULTILINE)


def test_unknown_timeframe_is_a_clear_error(capsys):
    assert main(["demo", "--timeframes", "2m"]) == 2
    assert "unknown timeframe '2m'" in capsys.readouterr().err
