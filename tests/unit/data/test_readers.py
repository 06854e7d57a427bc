"""Tests of ``liveopt.data.readers``: formats, timestamps, and exact error locations."""

import gzip
import logging
import pickle
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from liveopt.data import readers
from liveopt.data.columns import Candles, Rejection, Trades
from liveopt.data.readers import (
    MAX_REPORTED_REJECTIONS,
    DataFormatError,
    read_candles,
    read_trades,
)
from liveopt.units import NS_PER_MS
from tests.conftest import DATA_DIR

SHARED_DATA = DATA_DIR
FTX_BTCPERP_1M = SHARED_DATA / "nautilus_ftx_btcperp_1m" / "btc-perp-20211231-20220201_1m.csv"

T0_MS = 1_640_991_660_000  # 2021-12-31 23:01:00 UTC
T0_NS = T0_MS * NS_PER_MS
TRADES_HEADER = "ts,price,size,side"
CANDLES_HEADER = "ts,open,high,low,close,volume"


def _utc_ns(*fields: int, nanosecond: int = 0) -> int:
    moment = datetime(*fields, tzinfo=UTC)
    return int(moment.timestamp()) * 1_000_000_000 + nanosecond


def _write(tmp_path: Path, lines: list[str], name: str = "data.csv", *, gz: bool = False) -> Path:
    path = tmp_path / name
    text = "".join(line + "\n" for line in lines).encode()
    path.write_bytes(gzip.compress(text) if gz else text)
    return path


def _trade_rows(n: int) -> list[str]:
    return [f"{T0_MS + 1000 * i},{100.0 + i},0.5,buy" for i in range(n)]


def _candle_rows(n: int) -> list[str]:
    return [f"{T0_MS + 60_000 * i},100,101,99,100.5,10" for i in range(n)]


@pytest.fixture
def ftx_candles_path() -> Path:
    """The real FTX BTC-PERP 1m candle file in shared/data."""
    return FTX_BTCPERP_1M


# ----------------------------------------------------------------------------- formats


class TestFormats:
    def test_read_trades_plain_csv_returns_typed_columns(self, tmp_path):
        # Arrange
        path = _write(tmp_path, [TRADES_HEADER, f"{T0_MS},100.5,0.25,buy", f"{T0_MS},101,2,sell"])

        # Act
        trades = read_trades(path)

        # Assert
        assert isinstance(trades, Trades)
        assert trades.ts.tolist() == [T0_NS, T0_NS]
        assert trades.price.tolist() == [100.5, 101.0]
        assert trades.size.tolist() == [0.25, 2.0]
        assert trades.side.tolist() == [1, -1]
        assert (trades.ts.dtype, trades.price.dtype, trades.side.dtype) == (
            np.int64,
            np.float64,
            np.int8,
        )
        assert trades.rejected == 0
        assert trades.rejections == ()
        assert trades.source == str(path)

    @pytest.mark.parametrize("name", ["trades.csv.gz", "trades.csv", "trades"])
    def test_read_trades_gzip_is_detected_by_magic_bytes_whatever_the_name(self, tmp_path, name):
        # Arrange
        path = _write(tmp_path, [TRADES_HEADER, *_trade_rows(3)], name, gz=True)

        # Act
        trades = read_trades(path)

        # Assert
        assert len(trades) == 3
        assert trades.price.tolist() == [100.0, 101.0, 102.0]

    def test_read_trades_plain_file_named_gz_reads_as_plain_csv(self, tmp_path):
        # Arrange
        path = _write(tmp_path, [TRADES_HEADER, *_trade_rows(2)], "trades.csv.gz")

        # Act
        trades = read_trades(path)

        # Assert
        assert len(trades) == 2

    def test_read_candles_gzip_and_plain_give_equal_candles(self, tmp_path):
        # Arrange
        lines = [CANDLES_HEADER, *_candle_rows(4)]
        plain = _write(tmp_path, lines, "c.csv")
        packed = _write(tmp_path, lines, "c.csv.gz", gz=True)

        # Act
        a, b = read_candles(plain), read_candles(packed)

        # Assert
        for name in ("ts", "open", "high", "low", "close", "volume"):
            np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
        assert len(a) == 4

    def test_read_trades_side_is_case_insensitive(self, tmp_path):
        # Arrange
        sides = ["BUY", "Sell", "bUy", "sELL", " buy "]
        rows = [f"{T0_MS},100,1,{side}" for side in sides]
        path = _write(tmp_path, [TRADES_HEADER, *rows])

        # Act
        trades = read_trades(path)

        # Assert
        assert trades.side.tolist() == [1, -1, 1, -1, 1]

    def test_read_trades_equal_timestamps_are_allowed(self, tmp_path):
        # Arrange
        path = _write(tmp_path, [TRADES_HEADER, *[f"{T0_MS},100,1,buy"] * 3])

        # Act
        trades = read_trades(path)

        # Assert
        assert trades.ts.tolist() == [T0_NS] * 3
        assert trades.rejected == 0

    @pytest.mark.parametrize("content", [b"", b"\n\n"])
    def test_read_trades_empty_file_returns_empty_trades(self, tmp_path, content):
        # Arrange
        path = tmp_path / "empty.csv"
        path.write_bytes(content)

        # Act
        trades = read_trades(path)

        # Assert
        assert len(trades) == 0
        assert trades.ts.dtype == np.int64
        assert trades.side.dtype == np.int8

    def test_read_candles_header_only_returns_empty_candles(self, tmp_path):
        # Arrange
        path = _write(tmp_path, [CANDLES_HEADER], gz=True)

        # Act
        candles = read_candles(path)

        # Assert
        assert isinstance(candles, Candles)
        assert len(candles) == 0
        assert candles.volume.dtype == np.float64

    def test_read_trades_blank_lines_are_not_rows_and_line_numbers_stay_physical(self, tmp_path):
        # Arrange: line 3 is blank, the bad price is on line 5.
        rows = _trade_rows(3)
        path = _write(tmp_path, [TRADES_HEADER, rows[0], "", rows[1], "x,y"])

        # Act
        with pytest.raises(DataFormatError) as caught:
            read_trades(path)

        # Assert
        assert caught.value.line == 5

    def test_read_trades_quoted_line_break_keeps_line_numbers_physical(self, tmp_path):
        # Arrange: the record on lines 2-3 has a quoted note with a line break.
        lines = [
            "ts,price,size,side,note",
            f'{T0_MS},100,1,buy,"first\nsecond"',
            f"{T0_MS},100,1,buy,ok",
            f"{T0_MS},abc,1,buy,ok",
        ]
        path = _write(tmp_path, lines)

        # Act
        with pytest.raises(DataFormatError) as caught:
            read_trades(path)

        # Assert
        assert (caught.value.line, caught.value.column) == (5, "price")

    def test_read_trades_byte_order_mark_is_ignored(self, tmp_path):
        # Arrange
        path = tmp_path / "bom.csv"
        path.write_bytes(("\ufeff" + TRADES_HEADER + "\n" + _trade_rows(1)[0] + "\n").encode())

        # Act
        trades = read_trades(path)

        # Assert
        assert len(trades) == 1


# ---------------------------------------------------------------------------- headers


class TestHeaders:
    @pytest.mark.parametrize("alias", ["ts", "timestamp", "time", "date", "Timestamp", " DATE "])
    def test_read_trades_accepts_timestamp_column_aliases(self, tmp_path, alias):
        # Arrange
        path = _write(tmp_path, [f"{alias},price,size,side", f"{T0_MS},100,1,buy"])

        # Act
        trades = read_trades(path)

        # Assert
        assert trades.ts.tolist() == [T0_NS]

    def test_read_candles_columns_in_any_order_with_extra_columns_ignored(self, tmp_path):
        # Arrange
        lines = [
            "symbol,volume,close,low,high,open,date,trades",
            f"BTC-USDT,10,100.5,99,101,100,{T0_MS},7",
            f"BTC-USDT,11,101.5,100,102,100.5,{T0_MS + 60_000},9",
        ]
        path = _write(tmp_path, lines)

        # Act
        candles = read_candles(path)

        # Assert
        assert candles.ts.tolist() == [T0_NS, T0_NS + 60_000 * NS_PER_MS]
        assert candles.open.tolist() == [100.0, 100.5]
        assert candles.high.tolist() == [101.0, 102.0]
        assert candles.low.tolist() == [99.0, 100.0]
        assert candles.close.tolist() == [100.5, 101.5]
        assert candles.volume.tolist() == [10.0, 11.0]

    def test_read_trades_missing_column_error_names_file_and_column(self, tmp_path):
        # Arrange
        path = _write(tmp_path, ["ts,price,side", f"{T0_MS},100,buy"])

        # Act
        with pytest.raises(DataFormatError) as caught:
            read_trades(path)

        # Assert
        error = caught.value
        assert (error.path, error.line, error.column) == (str(path), 1, "size")
        assert str(path) in str(error)
        assert "missing required column" in str(error)

    def test_read_candles_missing_timestamp_column_lists_accepted_names(self, tmp_path):
        # Arrange
        path = _write(tmp_path, ["when,open,high,low,close,volume"])

        # Act
        with pytest.raises(DataFormatError) as caught:
            read_candles(path)

        # Assert
        assert caught.value.column == "ts"
        assert "ts, timestamp, time, date" in caught.value.reason

    def test_read_trades_two_timestamp_columns_are_ambiguous(self, tmp_path):
        # Arrange
        path = _write(tmp_path, ["date,time,price,size,side", "2021-12-31,23:01,100,1,buy"])

        # Act
        with pytest.raises(DataFormatError) as caught:
            read_trades(path)

        # Assert
        assert (caught.value.line, caught.value.column) == (1, "time")
        assert "ambiguous header" in caught.value.reason

    def test_read_trades_error_reports_column_as_written_in_the_header(self, tmp_path):
        # Arrange
        path = _write(tmp_path, ["Timestamp,Price,Size,Side", f"{T0_MS},-1,1,buy"])

        # Act
        with pytest.raises(DataFormatError) as caught:
            read_trades(path)

        # Assert
        assert caught.value.column == "Price"


# ------------------------------------------------------------------------- timestamps


def _joined(*parts: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    return st.tuples(*parts).map("".join)


def _optional(part: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    return st.one_of(st.just(""), part)


def _two_digits(low: int, high: int, prefix: str = "") -> st.SearchStrategy[str]:
    return st.integers(low, high).map(lambda v: f"{prefix}{v:02d}")


# ISO texts of the shape the vectorized fast path takes: "YYYY-MM-DD[( |T)HH:MM[:SS[.F]]]"
# with 1-9 fractional digits, then nothing, "Z" or "+00:00".
_FAST_PATH_ISO_TEXT = _joined(
    st.integers(1700, 2199).map("{:04d}".format),
    _two_digits(1, 12, "-"),
    _two_digits(1, 28, "-"),
    _optional(
        _joined(
            st.sampled_from(["T", " "]),
            _two_digits(0, 23),
            _two_digits(0, 59, ":"),
            _optional(
                _joined(
                    _two_digits(0, 59, ":"),
                    _optional(st.from_regex(r"\.[0-9]{1,9}", fullmatch=True)),
                )
            ),
        )
    ),
    st.sampled_from(["", "Z", "+00:00"]),
)


class TestTimestamps:
    @pytest.mark.parametrize(
        ("text", "expected"),
        [
            (str(T0_MS), T0_NS),  # epoch ms
            (str(T0_NS), T0_NS),  # epoch ns
            ("0", 0),  # ms by magnitude
            ("-86400000", -86_400 * 10**9),  # ms before the epoch
            ("9223372036854", 9_223_372_036_854 * NS_PER_MS),  # largest ms that fits int64 ns
            ("100000000000000000", 10**17),  # smallest ns (1e17)
            ("2021-12-31 23:01:00.000000", T0_NS),  # the FTX format
            ("2021-12-31T23:01:00", T0_NS),
            ("2021-12-31T23:01", T0_NS),
            ("2021-12-31", _utc_ns(2021, 12, 31)),
            ("2021-12-31T23:01:00Z", T0_NS),
            ("2021-12-31T23:01:00+00:00", T0_NS),
            ("2022-01-01T00:31:00+01:30", T0_NS),  # offsets are converted to UTC
            ("2021-12-31T18:01:00-05:00", T0_NS),
            ("2021-12-31T18:01:00-0500", T0_NS),
            ("2021-12-31 23:01:00.123456789", T0_NS + 123_456_789),  # 9 digits, exact
            ("2021-12-31T23:01:00.123456789Z", T0_NS + 123_456_789),
            ("2022-01-01T01:01:00.000000001+02:00", T0_NS + 1),
            ("2021-12-31T23:01:00.5", T0_NS + 500_000_000),
            ("1969-12-31T23:59:59.999999999Z", -1),
            ("2262-04-11T23:47:16.854775807Z", 2**63 - 1),  # the last int64 ns
        ],
    )
    def test_read_trades_timestamp_forms_give_epoch_ns(self, tmp_path, text, expected):
        # Arrange
        path = _write(tmp_path, [TRADES_HEADER, f"{text},100,1,buy"])

        # Act
        trades = read_trades(path)

        # Assert
        assert trades.ts.tolist() == [expected]

    def test_read_trades_units_are_decided_per_value(self, tmp_path):
        # Arrange: ms, ns and ISO text in one column.
        rows = [
            f"{T0_MS},100,1,buy",
            f"{T0_NS + NS_PER_MS},100,1,buy",
            "2021-12-31T23:01:00.002Z,100,1,buy",
        ]
        path = _write(tmp_path, [TRADES_HEADER, *rows])

        # Act
        trades = read_trades(path)

        # Assert
        assert trades.ts.tolist() == [T0_NS, T0_NS + NS_PER_MS, T0_NS + 2 * NS_PER_MS]

    @pytest.mark.parametrize(
        ("text", "reason"),
        [
            ("100000000000000", "ambiguous integer timestamp unit"),  # 1e14: neither ms nor ns
            ("99999999999999999", "ambiguous integer timestamp unit"),  # just below 1e17
            ("9223372036855", "out of the int64 nanosecond range"),  # ms * 1e6 overflows
            ("99999999999999999999", "out of the int64 nanosecond range"),
            ("2262-04-11T23:47:16.854775808Z", "out of the int64 nanosecond range"),
            ("2021-12-31T23:01:00.1234567891", "more than 9 fractional second digits"),
            ("2021-02-30", "invalid date or time"),
            ("2021-12-31 24:00", "invalid date or time"),
            ("2021-12-31T23:01:00+24:00", "invalid UTC offset"),
            ("1640991660000.0", "not a timestamp"),
            ("NaT", "not a timestamp"),
            ("today", "not a timestamp"),
            ("2021-12", "not a timestamp"),
            ("", "not a timestamp"),
        ],
    )
    def test_read_trades_bad_timestamp_reports_line_column_and_reason(self, tmp_path, text, reason):
        # Arrange
        path = _write(tmp_path, [TRADES_HEADER, f"{T0_MS},100,1,buy", f"{text},100,1,buy"])

        # Act
        with pytest.raises(DataFormatError) as caught:
            read_trades(path)

        # Assert
        assert (caught.value.line, caught.value.column) == (3, "ts")
        assert reason in caught.value.reason
        assert repr(text) in caught.value.reason

    @settings(max_examples=50, deadline=None)
    @given(
        ns=st.lists(
            st.integers(_utc_ns(1700, 1, 1), _utc_ns(2199, 12, 31)), min_size=1, max_size=20
        ),
        separator=st.sampled_from(["T", " "]),
        suffix=st.sampled_from(["", "Z", "+00:00"]),
    )
    def test_iso_text_with_nine_digits_round_trips_exactly(
        self, tmp_path_factory, ns, separator, suffix
    ):
        # Arrange: the same instants as UTC text (fast path) and as +05:30 text (per value).
        ns = sorted(ns)
        utc = [_iso(value, separator, suffix, offset_minutes=0) for value in ns]
        shifted = [_iso(value, separator, "", offset_minutes=330) for value in ns]
        folder = tmp_path_factory.mktemp("iso")
        fast = _write(folder, [TRADES_HEADER, *[f"{t},1,1,buy" for t in utc]], "utc.csv")
        slow = _write(folder, [TRADES_HEADER, *[f"{t},1,1,buy" for t in shifted]], "off.csv")

        # Act
        got_fast, got_slow = read_trades(fast).ts.tolist(), read_trades(slow).ts.tolist()

        # Assert
        assert got_fast == ns
        assert got_slow == ns

    @settings(max_examples=200, deadline=None)
    @given(texts=st.lists(_FAST_PATH_ISO_TEXT, min_size=1, max_size=8))
    def test_iso_fast_path_agrees_with_the_per_value_parser(self, texts):
        # Arrange
        expected = [readers._timestamp_ns(text) for text in texts]

        # Act
        fast = readers._iso_timestamps_fast(texts)

        # Assert
        assert fast is not None, texts
        ns, unreadable = fast
        assert ns.tolist() == expected
        assert not unreadable.any()


def _iso(ns: int, separator: str, suffix: str, offset_minutes: int) -> str:
    seconds, fraction = divmod(ns, 1_000_000_000)
    local = datetime.fromtimestamp(seconds + 60 * offset_minutes, tz=UTC)
    text = local.strftime(f"%Y-%m-%d{separator}%H:%M:%S") + f".{fraction:09d}"
    if offset_minutes:
        sign = "+" if offset_minutes > 0 else "-"
        hours, minutes = divmod(abs(offset_minutes), 60)
        return f"{text}{sign}{hours:02d}:{minutes:02d}"
    return text + suffix


# ------------------------------------------------------------- bad rows, raise mode

# One bad row per class: (reader, data lines after the header, expected line, column,
# start of the reason). Line 1 is the header; every case has good rows around the bad one.
_GOOD_TRADE = f"{T0_MS},100,1,buy"
_LATER_TRADE = f"{T0_MS + 5000},100,1,buy"
_GOOD_CANDLE = f"{T0_MS},100,101,99,100.5,10"
_LATER_CANDLE = f"{T0_MS + 120_000},100,101,99,100.5,10"

BAD_TRADES = {
    "price_not_a_number": (f"{T0_MS},abc,1,buy", "price", "not a number: 'abc'"),
    "price_empty": (f"{T0_MS},,1,buy", "price", "not a number: ''"),
    "price_nan": (f"{T0_MS},nan,1,buy", "price", "not finite: 'nan'"),
    "price_inf": (f"{T0_MS},inf,1,buy", "price", "not finite: 'inf'"),
    "price_zero": (f"{T0_MS},0,1,buy", "price", "not positive: '0'"),
    "price_negative": (f"{T0_MS},-5.5,1,buy", "price", "not positive: '-5.5'"),
    "size_not_a_number": (f"{T0_MS},100,1.2.3,buy", "size", "not a number: '1.2.3'"),
    "size_inf": (f"{T0_MS},100,-inf,buy", "size", "not finite: '-inf'"),
    "size_negative": (f"{T0_MS},100,-0.5,buy", "size", "negative: '-0.5'"),
    "side_unknown": (f"{T0_MS},100,1,hold", "side", "unknown side"),
    "ts_not_a_timestamp": ("yesterday,100,1,buy", "ts", "not a timestamp"),
    "ts_ambiguous": ("1000000000000000,100,1,buy", "ts", "ambiguous integer timestamp unit"),
    "ts_backwards": (f"{T0_MS - 1},100,1,buy", "ts", "timestamp goes backwards"),
    "too_many_fields": (f"{T0_MS},100,1,buy,extra", "", "expected 4 fields, got 5"),
    "too_few_fields": (f"{T0_MS},100,1", "", "expected 4 fields, got 3"),
}

BAD_CANDLES = {
    "open_not_a_number": (f"{T0_MS + 60_000},x,101,99,100.5,10", "open", "not a number: 'x'"),
    "close_nan": (f"{T0_MS + 60_000},100,101,99,NaN,10", "close", "not finite: 'NaN'"),
    "low_zero": (f"{T0_MS + 60_000},100,101,0,100.5,10", "low", "not positive: '0'"),
    "volume_negative": (f"{T0_MS + 60_000},100,101,99,100.5,-1", "volume", "negative: '-1'"),
    "high_below_open": (f"{T0_MS + 60_000},100,99.5,99,99.8,10", "high", "inconsistent candle"),
    "high_below_close": (f"{T0_MS + 60_000},100,100.4,99,100.5,10", "high", "inconsistent"),
    "low_above_close": (f"{T0_MS + 60_000},100,101,99.9,99.8,10", "low", "inconsistent candle"),
    "low_above_open": (f"{T0_MS + 60_000},100,101,100.1,100.5,10", "low", "inconsistent"),
    "ts_duplicate": (f"{T0_MS},100,101,99,100.5,10", "ts", "duplicate timestamp"),
    "ts_backwards": (f"{T0_MS - 60_000},100,101,99,100.5,10", "ts", "timestamp goes backwards"),
    "too_many_fields": (f"{T0_MS + 60_000},1,1,1,1,1,1", "", "expected 6 fields, got 7"),
}


class TestRaiseMode:
    @pytest.mark.parametrize("case", BAD_TRADES.values(), ids=BAD_TRADES.keys())
    def test_read_trades_bad_row_raises_with_its_line_and_column(self, tmp_path, case):
        # Arrange: header, a good row, the bad row on line 3, a later good row.
        bad_line, column, reason = case
        path = _write(tmp_path, [TRADES_HEADER, _GOOD_TRADE, bad_line, _LATER_TRADE])

        # Act
        with pytest.raises(DataFormatError) as caught:
            read_trades(path)

        # Assert
        error = caught.value
        assert (error.path, error.line, error.column) == (str(path), 3, column)
        assert error.reason.startswith(reason)

    @pytest.mark.parametrize("case", BAD_CANDLES.values(), ids=BAD_CANDLES.keys())
    def test_read_candles_bad_row_raises_with_its_line_and_column(self, tmp_path, case):
        # Arrange: header, a good row, the bad row on line 3, a later good row.
        bad_line, column, reason = case
        path = _write(tmp_path, [CANDLES_HEADER, _GOOD_CANDLE, bad_line, _LATER_CANDLE])

        # Act
        with pytest.raises(DataFormatError) as caught:
            read_candles(path)

        # Assert
        error = caught.value
        assert (error.path, error.line, error.column) == (str(path), 3, column)
        assert error.reason.startswith(reason)

    def test_error_message_has_path_line_column_and_value(self, tmp_path):
        # Arrange
        path = _write(tmp_path, [TRADES_HEADER, _GOOD_TRADE, f"{T0_MS},abc,1,buy"])

        # Act
        with pytest.raises(DataFormatError) as caught:
            read_trades(path)

        # Assert
        assert str(caught.value) == f"{path}:3: column 'price': not a number: 'abc'"
        assert isinstance(caught.value, ValueError)

    def test_error_for_wrong_field_count_has_no_column_in_message(self, tmp_path):
        # Arrange
        path = _write(tmp_path, [TRADES_HEADER, "1,2"])

        # Act
        with pytest.raises(DataFormatError) as caught:
            read_trades(path)

        # Assert
        assert str(caught.value) == f"{path}:2: expected 4 fields, got 2"

    def test_the_first_bad_row_in_file_order_is_reported(self, tmp_path):
        # Arrange: a time-order problem on line 3 comes before a bad price on line 4.
        lines = [TRADES_HEADER, _LATER_TRADE, _GOOD_TRADE, f"{T0_MS},abc,1,buy"]
        path = _write(tmp_path, lines)

        # Act
        with pytest.raises(DataFormatError) as caught:
            read_trades(path)

        # Assert
        assert (caught.value.line, caught.value.column) == (3, "ts")

    def test_within_a_row_problems_are_reported_in_column_order(self, tmp_path):
        # Arrange: both price and side are bad on line 2.
        path = _write(tmp_path, [TRADES_HEADER, f"{T0_MS},abc,1,hold"])

        # Act
        with pytest.raises(DataFormatError) as caught:
            read_trades(path)

        # Assert
        assert caught.value.column == "price"

    def test_backwards_check_across_chunks_reports_the_right_line(self, tmp_path, monkeypatch):
        # Arrange: two-row chunks; line 6 (third chunk) is older than line 3 (first chunk).
        monkeypatch.setattr(readers, "CHUNK_ROWS", 2)
        rows = [f"{T0_MS + step},100,1,buy" for step in (0, 9000, 9000, 9500, 8999)]
        path = _write(tmp_path, [TRADES_HEADER, *rows])

        # Act
        with pytest.raises(DataFormatError) as caught:
            read_trades(path)

        # Assert
        assert (caught.value.line, caught.value.column) == (6, "ts")

    def test_duplicate_candle_across_chunks_is_rejected(self, tmp_path, monkeypatch):
        # Arrange
        monkeypatch.setattr(readers, "CHUNK_ROWS", 2)
        rows = _candle_rows(2)
        path = _write(tmp_path, [CANDLES_HEADER, *rows, rows[1]])

        # Act
        with pytest.raises(DataFormatError) as caught:
            read_candles(path)

        # Assert
        assert (caught.value.line, caught.value.column) == (4, "ts")
        assert caught.value.reason.startswith("duplicate timestamp")

    def test_truncated_gzip_stream_raises_data_format_error(self, tmp_path):
        # Arrange
        packed = gzip.compress("\n".join([TRADES_HEADER, *_trade_rows(2000)]).encode())
        path = tmp_path / "cut.csv.gz"
        path.write_bytes(packed[: len(packed) // 2])

        # Act
        with pytest.raises(DataFormatError) as caught:
            read_trades(path)

        # Assert
        assert caught.value.column == ""
        assert "gzip" in caught.value.reason

    def test_invalid_utf8_raises_data_format_error(self, tmp_path):
        # Arrange
        path = tmp_path / "latin1.csv"
        path.write_bytes(
            TRADES_HEADER.encode() + b"\n" + f"{T0_MS},100,1,b\xe9y\n".encode("latin-1")
        )

        # Act
        with pytest.raises(DataFormatError) as caught:
            read_trades(path)

        # Assert
        assert "UTF-8" in caught.value.reason

    def test_data_format_error_survives_pickling(self):
        # Arrange
        error = DataFormatError("f.csv", 7, "size", "negative: '-1'")

        # Act
        copy = pickle.loads(pickle.dumps(error))

        # Assert
        assert (copy.path, copy.line, copy.column, copy.reason) == (
            "f.csv",
            7,
            "size",
            "negative: '-1'",
        )
        assert str(copy) == str(error)

    @pytest.mark.parametrize("on_error", ["ignore", "SKIP", None])
    def test_unknown_on_error_value_raises_value_error(self, tmp_path, on_error):
        # Arrange
        path = _write(tmp_path, [TRADES_HEADER])

        # Act / Assert
        with pytest.raises(ValueError, match="on_error"):
            read_trades(path, on_error=on_error)


# --------------------------------------------------------------------- skip mode


class TestSkipMode:
    @pytest.mark.parametrize("case", BAD_TRADES.values(), ids=BAD_TRADES.keys())
    def test_read_trades_skip_drops_bad_row_counts_and_logs_it(self, tmp_path, caplog, case):
        # Arrange
        bad_line, column, reason = case
        path = _write(tmp_path, [TRADES_HEADER, _GOOD_TRADE, bad_line, _LATER_TRADE])

        # Act
        with caplog.at_level(logging.WARNING, logger=readers.__name__):
            trades = read_trades(path, on_error="skip")

        # Assert
        assert len(trades) == 2
        assert trades.ts.tolist() == [T0_NS, T0_NS + 5000 * NS_PER_MS]
        assert trades.rejected == 1
        (rejection,) = trades.rejections
        assert (rejection.line, rejection.column) == (3, column)
        assert rejection.reason.startswith(reason)
        (record,) = caplog.records
        assert record.levelno == logging.WARNING
        assert str(path) in record.getMessage()
        assert "rejected 1 of 3" in record.getMessage()

    @pytest.mark.parametrize("case", BAD_CANDLES.values(), ids=BAD_CANDLES.keys())
    def test_read_candles_skip_drops_bad_row_counts_and_logs_it(self, tmp_path, caplog, case):
        # Arrange
        bad_line, column, reason = case
        path = _write(tmp_path, [CANDLES_HEADER, _GOOD_CANDLE, bad_line, _LATER_CANDLE])

        # Act
        with caplog.at_level(logging.WARNING, logger=readers.__name__):
            candles = read_candles(path, on_error="skip")

        # Assert
        assert candles.ts.tolist() == [T0_NS, T0_NS + 120_000 * NS_PER_MS]
        assert candles.rejected == 1
        (rejection,) = candles.rejections
        assert isinstance(rejection, Rejection)
        assert (rejection.line, rejection.column) == (3, column)
        assert rejection.reason.startswith(reason)
        (record,) = caplog.records
        assert str(path) in record.getMessage()
        assert "rejected 1 of 3" in record.getMessage()

    def test_skip_counts_every_bad_row_but_reports_the_first_hundred(self, tmp_path, caplog):
        # Arrange: 250 bad rows interleaved with 250 good ones.
        rows = []
        for i in range(250):
            rows.append(f"{T0_MS + i},100,1,buy")
            rows.append(f"{T0_MS + i},-1,1,buy")
        path = _write(tmp_path, [TRADES_HEADER, *rows])

        # Act
        with caplog.at_level(logging.WARNING, logger=readers.__name__):
            trades = read_trades(path, on_error="skip")

        # Assert
        assert len(trades) == 250
        assert trades.rejected == 250
        assert len(trades.rejections) == MAX_REPORTED_REJECTIONS == 100
        assert [r.line for r in trades.rejections] == list(range(3, 203, 2))
        assert len(caplog.records) == 1
        assert "rejected 250 of 500" in caplog.records[0].getMessage()

    def test_skip_trades_rejects_only_rows_below_the_max_of_accepted_rows(self, tmp_path):
        # Arrange: seconds 1, 3, 2 (backwards), 3 (equal: fine), 4.
        rows = [f"{T0_MS + 1000 * s},100,1,buy" for s in (1, 3, 2, 3, 4)]
        path = _write(tmp_path, [TRADES_HEADER, *rows])

        # Act
        trades = read_trades(path, on_error="skip")

        # Assert
        assert trades.ts.tolist() == [T0_NS + 1000 * NS_PER_MS * s for s in (1, 3, 3, 4)]
        assert [(r.line, r.column) for r in trades.rejections] == [(4, "ts")]

    def test_skip_candles_rejects_rows_at_or_below_the_max_of_accepted_rows(self, tmp_path):
        # Arrange: minutes 1, 3, 3 (duplicate), 2 (backwards), 4.
        rows = [f"{T0_MS + 60_000 * m},100,101,99,100.5,10" for m in (1, 3, 3, 2, 4)]
        path = _write(tmp_path, [CANDLES_HEADER, *rows])

        # Act
        candles = read_candles(path, on_error="skip")

        # Assert
        assert candles.ts.tolist() == [T0_NS + 60_000 * NS_PER_MS * m for m in (1, 3, 4)]
        assert [r.line for r in candles.rejections] == [4, 5]
        assert candles.rejections[0].reason.startswith("duplicate timestamp")
        assert candles.rejections[1].reason.startswith("timestamp goes backwards")

    def test_skip_a_rejected_row_does_not_raise_the_time_bar(self, tmp_path):
        # Arrange: line 3 is late but has a bad price; line 4 is only compared with line 2.
        rows = [f"{T0_MS},100,1,buy", f"{T0_MS + 9000},-1,1,buy", f"{T0_MS + 1000},100,1,buy"]
        path = _write(tmp_path, [TRADES_HEADER, *rows])

        # Act
        trades = read_trades(path, on_error="skip")

        # Assert
        assert trades.ts.tolist() == [T0_NS, T0_NS + 1000 * NS_PER_MS]
        assert [(r.line, r.column) for r in trades.rejections] == [(3, "price")]

    def test_skip_time_order_carries_across_chunks(self, tmp_path, monkeypatch):
        # Arrange
        monkeypatch.setattr(readers, "CHUNK_ROWS", 2)
        rows = [f"{T0_MS + 1000 * s},100,1,buy" for s in (1, 5, 2, 6, 5, 7)]
        path = _write(tmp_path, [TRADES_HEADER, *rows])

        # Act
        trades = read_trades(path, on_error="skip")

        # Assert
        assert trades.ts.tolist() == [T0_NS + 1000 * NS_PER_MS * s for s in (1, 5, 6, 7)]
        assert [r.line for r in trades.rejections] == [4, 6]

    def test_skip_on_clean_file_logs_nothing(self, tmp_path, caplog):
        # Arrange
        path = _write(tmp_path, [TRADES_HEADER, *_trade_rows(5)])

        # Act
        with caplog.at_level(logging.DEBUG, logger=readers.__name__):
            trades = read_trades(path, on_error="skip")

        # Assert
        assert len(trades) == 5
        assert trades.rejected == 0
        assert caplog.records == []

    def test_skip_still_raises_for_a_missing_column(self, tmp_path):
        # Arrange
        path = _write(tmp_path, ["ts,price,size", f"{T0_MS},100,1"])

        # Act / Assert
        with pytest.raises(DataFormatError, match="column 'side': missing required column"):
            read_trades(path, on_error="skip")


# ------------------------------------------------------------------ round trip


@settings(max_examples=40, deadline=None)
@given(
    rows=st.lists(
        st.tuples(
            st.integers(0, 10**9),
            st.floats(min_value=1e-12, max_value=1e12, allow_nan=False, exclude_min=False),
            st.floats(min_value=0.0, max_value=1e9, allow_nan=False),
            st.sampled_from([1, -1]),
        ),
        max_size=30,
    )
)
def test_trades_written_with_repr_read_back_exactly(tmp_path_factory, rows):
    # Arrange
    ts = (T0_NS + np.cumsum([gap for gap, *_ in rows], dtype=np.int64)).tolist()
    names = {1: "buy", -1: "sell"}
    lines = [f"{t},{p!r},{s!r},{names[d]}" for t, (_, p, s, d) in zip(ts, rows, strict=True)]
    path = _write(tmp_path_factory.mktemp("rt"), [TRADES_HEADER, *lines], gz=True)

    # Act
    trades = read_trades(path)

    # Assert
    assert trades.ts.tolist() == ts
    assert trades.price.tolist() == [p for _, p, _, _ in rows]
    assert trades.size.tolist() == [s for _, _, s, _ in rows]
    assert trades.side.tolist() == [d for _, _, _, d in rows]


# --------------------------------------------------------------------- real data


class TestRealData:
    def test_read_candles_ftx_file_reads_directly(self, ftx_candles_path):
        # Act
        candles = read_candles(ftx_candles_path)

        # Assert
        assert len(candles) == 45_031
        assert candles.rejected == 0
        assert candles.ts[0] == _utc_ns(2021, 12, 31, 23, 1)
        assert candles.ts[-1] == _utc_ns(2022, 2, 1, 5, 31)
        assert (np.diff(candles.ts) > 0).all()
        for name in ("open", "high", "low", "close", "volume"):
            assert np.isfinite(getattr(candles, name)).all()
        assert candles.open[0] == 46319.0
        assert candles.volume[0] == 2300413.7295

    def test_read_candles_ftx_file_gzipped_gives_the_same_candles(self, ftx_candles_path, tmp_path):
        # Arrange
        packed = tmp_path / "ftx.csv.gz"
        packed.write_bytes(gzip.compress(ftx_candles_path.read_bytes()))

        # Act
        plain, compressed = read_candles(ftx_candles_path), read_candles(packed)

        # Assert
        for name in ("ts", "open", "high", "low", "close", "volume"):
            np.testing.assert_array_equal(getattr(plain, name), getattr(compressed, name))
