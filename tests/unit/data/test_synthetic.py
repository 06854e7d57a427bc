"""Tests of ``liveopt.data.synthetic``: the generator, the writer and the bundled data set."""

import gzip
from functools import cache

import numpy as np
import pytest

from liveopt.data.columns import Trades
from liveopt.data.readers import read_trades
from liveopt.data.synthetic import (
    BUNDLED_TRADES_PATH,
    DEFAULT_START_NS,
    LOT,
    MEAN_GAP_S,
    bundled_trades,
    generate_trades,
    write_trades_csv,
)

COLUMNS = ("ts", "price", "size", "side")


@cache
def _default_trades() -> Trades:
    return generate_trades()


def _assert_same_trades(actual: Trades, expected: Trades) -> None:
    for name in COLUMNS:
        np.testing.assert_array_equal(getattr(actual, name), getattr(expected, name), err_msg=name)
        assert getattr(actual, name).dtype == getattr(expected, name).dtype, name


class TestGenerateTrades:
    def test_same_seed_gives_identical_trades(self):
        # Act
        first, second = generate_trades(5_000, seed=7), generate_trades(5_000, seed=7)

        # Assert
        _assert_same_trades(first, second)

    def test_different_seeds_give_different_trades(self):
        # Act
        first, second = generate_trades(1_000, seed=1), generate_trades(1_000, seed=2)

        # Assert
        assert not np.array_equal(first.price, second.price)

    def test_global_numpy_rng_is_neither_used_nor_changed(self):
        # Arrange: the legacy global state is inspected on purpose, not used.
        _, keys, position, *_ = np.random.get_state()  # noqa: NPY002
        keys = keys.copy()

        # Act
        generate_trades(1_000)

        # Assert
        _, keys_after, position_after, *_ = np.random.get_state()  # noqa: NPY002
        np.testing.assert_array_equal(keys_after, keys)
        assert position_after == position

    def test_default_stream_has_the_documented_shape(self):
        # Act
        trades = _default_trades()

        # Assert
        assert len(trades) == 100_000
        assert trades.ts.dtype == np.int64
        assert (np.diff(trades.ts) >= 0).all()
        assert trades.ts[0] > DEFAULT_START_NS
        assert (trades.ts % 1_000_000 == 0).all()  # whole milliseconds
        mean_gap_s = np.diff(trades.ts).mean() / 1e9
        assert mean_gap_s == pytest.approx(MEAN_GAP_S, rel=0.02)
        span_days = (trades.ts[-1] - DEFAULT_START_NS) / 86_400e9
        assert 1.3 < span_days < 1.5

    def test_prices_sit_on_the_tick_grid_and_sizes_on_whole_lots(self):
        # Act
        trades = _default_trades()

        # Assert
        np.testing.assert_array_equal(trades.price, np.rint(trades.price * 10) / 10)
        np.testing.assert_array_equal(trades.size, np.rint(trades.size * 1000) / 1000)
        assert trades.size.min() >= LOT
        assert (trades.price > 0).all()
        assert set(np.unique(trades.side).tolist()) == {-1, 1}

    def test_sides_lean_towards_the_price_move(self):
        # Arrange
        trades = _default_trades()
        move = np.sign(np.diff(trades.price))
        moved = move != 0

        # Act
        correlation = np.corrcoef(move[moved], trades.side[1:][moved])[0, 1]

        # Assert
        assert correlation > 0.3

    def test_volatility_switches_between_regimes(self):
        # Arrange: realized volatility per hour of the log price.
        trades = _default_trades()
        hour = (trades.ts - trades.ts[0]) // 3_600_000_000_000
        log_price = np.log(trades.price)

        # Act
        hourly_vol = np.array([np.diff(log_price[hour == h]).std() for h in range(int(hour.max()))])

        # Assert: quiet and wild hours differ by far more than sampling noise would.
        assert hourly_vol.max() / hourly_vol.min() > 2.5

    def test_zero_trades_gives_empty_trades(self):
        # Act
        trades = generate_trades(0)

        # Assert
        assert len(trades) == 0

    @pytest.mark.parametrize(
        "kwargs", [{"n_trades": -1}, {"symbol_price": 0.0}, {"symbol_price": float("nan")}]
    )
    def test_invalid_arguments_raise_value_error(self, kwargs):
        # Act / Assert
        with pytest.raises(ValueError):
            generate_trades(**kwargs)


class TestWriteTradesCsv:
    @pytest.mark.parametrize("name", ["trades.csv", "trades.csv.gz"])
    def test_written_trades_read_back_identical(self, tmp_path, name):
        # Arrange
        trades = generate_trades(2_000, seed=3)
        path = tmp_path / name

        # Act
        write_trades_csv(trades, path)
        back = read_trades(path)

        # Assert
        _assert_same_trades(back, trades)
        assert back.rejected == 0

    def test_plain_file_has_integer_ns_and_buy_sell_text(self, tmp_path):
        # Arrange
        trades = Trades.from_arrays([10**18, 10**18 + 1], [0.1, 67000.3], [0.001, 2.5], [1, -1])
        path = tmp_path / "t.csv"

        # Act
        write_trades_csv(trades, path)

        # Assert
        assert path.read_text() == (
            "ts,price,size,side\n"
            "1000000000000000000,0.1,0.001,buy\n"
            "1000000000000000001,67000.3,2.5,sell\n"
        )

    def test_gzip_output_is_reproducible_with_zero_mtime(self, tmp_path):
        # Arrange
        trades = generate_trades(500)
        first, second = tmp_path / "a.csv.gz", tmp_path / "sub_b.csv.gz"

        # Act
        write_trades_csv(trades, first)
        write_trades_csv(trades, second)

        # Assert
        data = first.read_bytes()
        assert data == second.read_bytes()
        assert data[:2] == b"\x1f\x8b"
        assert data[4:8] == b"\x00\x00\x00\x00"  # gzip header MTIME

    @pytest.mark.parametrize(
        ("column", "value"), [("price", float("nan")), ("size", float("inf")), ("side", 0)]
    )
    def test_invalid_trades_are_not_written(self, tmp_path, column, value):
        # Arrange
        columns = {"ts": [1, 2], "price": [1.0, 2.0], "size": [1.0, 1.0], "side": [1, -1]}
        columns[column][1] = value
        path = tmp_path / "bad.csv"

        # Act / Assert
        with pytest.raises(ValueError):
            write_trades_csv(Trades.from_arrays(**columns), path)
        assert not path.exists()


class TestBundledTrades:
    def test_bundled_file_is_generate_trades_defaults_written_by_write_trades_csv(self, tmp_path):
        # Arrange: regenerate the data set from the defaults (this proves its provenance).
        regenerated = tmp_path / "synthetic_trades.csv.gz"

        # Act
        write_trades_csv(_default_trades(), regenerated)

        # Assert: identical CSV content and identical gzip bytes.
        bundled = BUNDLED_TRADES_PATH.read_bytes()
        assert gzip.decompress(regenerated.read_bytes()) == gzip.decompress(bundled)
        assert regenerated.read_bytes() == bundled

    def test_bundled_trades_equal_the_generated_arrays(self):
        # Act
        trades = bundled_trades()

        # Assert
        _assert_same_trades(trades, _default_trades())
        assert trades.rejected == 0

    def test_bundled_file_is_small(self):
        # Act
        size = len(BUNDLED_TRADES_PATH.read_bytes())

        # Assert
        assert size < 2_000_000
