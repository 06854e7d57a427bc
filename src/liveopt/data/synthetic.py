"""A deterministic synthetic BTC trade stream, and the copy of it bundled with the package.

The generator exists because the real data sets under ``shared/data`` are small or carry
licences that keep them out of the package (see its README). The stream is made to look
enough like a BTC-USDT tape for indicators and strategies to have something to chew on:

- arrivals are a Poisson process (exponential gaps, mean :data:`MEAN_GAP_S` seconds),
  stamped in whole milliseconds like exchange feeds, so equal timestamps can occur;
- the log price is a random walk whose volatility and drift switch between regimes (mean
  length :data:`MEAN_REGIME_S` seconds), so there are trends, ranges and quiet and wild
  stretches;
- the taker side leans towards the direction of the price move;
- sizes are log-normal in whole lots of :data:`LOT` BTC, prices sit on a :data:`TICK` grid.

All randomness comes from one ``numpy.random.Generator(PCG64(seed))``; the global RNG is
never used, so equal arguments give equal trades on every platform numpy supports.

The bundled file ``liveopt/_data/synthetic_trades.csv.gz`` is ``generate_trades()`` with the
defaults, written by :func:`write_trades_csv`. Regenerate it with
``python -m liveopt.data.synthetic``.
"""

from __future__ import annotations

import argparse
import gzip
import importlib.resources
import os
from pathlib import Path

import numpy as np

from liveopt.data.columns import Trades
from liveopt.data.readers import read_trades
from liveopt.units import NS_PER_MS

__all__ = [
    "BUNDLED_TRADES_PATH",
    "DEFAULT_SEED",
    "DEFAULT_START_NS",
    "LOT",
    "MEAN_GAP_S",
    "MEAN_REGIME_S",
    "TICK",
    "bundled_trades",
    "generate_trades",
    "write_trades_csv",
]

#: Seed of the bundled data set.
DEFAULT_SEED = 20240601
#: 2024-06-01T00:00:00Z in epoch nanoseconds.
DEFAULT_START_NS = 1_717_200_000_000_000_000
#: Mean time between trades, in seconds (100,000 trades span about 1.4 days).
MEAN_GAP_S = 1.2
#: Mean length of a volatility/drift regime, in seconds.
MEAN_REGIME_S = 3 * 3600.0
#: Price grid (USDT) and size grid (BTC).
TICK = 0.1
LOT = 0.001

#: The bundled data set: ``generate_trades()`` with the defaults, gzip-compressed CSV.
BUNDLED_TRADES_PATH = importlib.resources.files("liveopt") / "_data" / "synthetic_trades.csv.gz"

_SECONDS_PER_DAY = 86_400.0
# Daily volatility of the log price in the calm, normal and wild regimes.
_DAILY_VOLS = np.array([0.012, 0.025, 0.05])
# Regime drift per day, in units of that regime's daily volatility (normal, this sd).
_DRIFT_PER_VOL = 2.0
# Median trade size in lots and the log-normal shape.
_MEDIAN_LOTS = 15.0
_SIZE_SIGMA = 1.2
# Weight of the price shock against independent noise in the taker side.
_SIDE_NOISE = 1.0
_HEADER = "ts,price,size,side\n"
_SIDE_NAMES = {1: "buy", -1: "sell"}


def generate_trades(
    n_trades: int = 100_000,
    *,
    seed: int = DEFAULT_SEED,
    start_ns: int = DEFAULT_START_NS,
    symbol_price: float = 67_000.0,
) -> Trades:
    """Generate a deterministic synthetic trade stream.

    Parameters
    ----------
    n_trades : int, default 100_000
        Number of trades.
    seed : int, default DEFAULT_SEED
        Seed of the ``PCG64`` bit generator; the only source of randomness.
    start_ns : int, default DEFAULT_START_NS
        Epoch ns the stream starts from; the first trade comes one random gap later.
    symbol_price : float, default 67_000.0
        Price the random walk starts from, in USDT.

    Returns
    -------
    Trades
        ``ts`` non-decreasing int64 ns in whole milliseconds, ``price`` on the
        :data:`TICK` grid, ``size`` a whole number of :data:`LOT` (at least one lot),
        ``side`` +1/-1.

    Raises
    ------
    ValueError
        ``n_trades`` is negative or ``symbol_price`` is not a positive finite number.
    """
    if n_trades < 0:
        raise ValueError(f"n_trades must be >= 0, got {n_trades}")
    if not (np.isfinite(symbol_price) and symbol_price > 0):
        raise ValueError(f"symbol_price must be positive and finite, got {symbol_price!r}")
    rng = np.random.Generator(np.random.PCG64(seed))

    gaps_s = rng.exponential(MEAN_GAP_S, n_trades)
    gaps_ms = np.rint(gaps_s * 1000.0).astype(np.int64)
    ts = start_ns + np.cumsum(gaps_ms) * NS_PER_MS

    # Regimes switch as a Poisson process in time: P(switch before this trade) = 1 - e^(-gap/T).
    switches = rng.random(n_trades) < -np.expm1(-gaps_s / MEAN_REGIME_S)
    regime = np.cumsum(switches)
    n_regimes = int(regime[-1]) + 1 if n_trades else 0
    vol = rng.choice(_DAILY_VOLS, size=n_regimes)
    drift = rng.normal(0.0, _DRIFT_PER_VOL, size=n_regimes) * vol

    # Log-price step over each gap: drift * dt + vol * sqrt(dt) * shock, dt in days.
    dt_days = gaps_s / _SECONDS_PER_DAY
    shock = rng.standard_normal(n_trades)
    step = drift[regime] * dt_days + vol[regime] * np.sqrt(dt_days) * shock
    ticks = np.rint(symbol_price * np.exp(np.cumsum(step)) / TICK)
    # Dividing whole ticks by 10 gives the double nearest to the decimal price, whose repr
    # is short ("67012.3"); multiplying by 0.1 would not.
    price = np.maximum(ticks, 1.0) / round(1.0 / TICK)

    # The taker side follows the sign of the price shock, blurred by independent noise.
    side = np.where(shock + _SIDE_NOISE * rng.standard_normal(n_trades) > 0.0, 1, -1)

    lots = np.rint(rng.lognormal(np.log(_MEDIAN_LOTS), _SIZE_SIGMA, n_trades))
    size = np.maximum(lots, 1.0) / round(1.0 / LOT)

    source = (
        f"liveopt.data.synthetic.generate_trades(n_trades={n_trades}, seed={seed}, "
        f"start_ns={start_ns}, symbol_price={symbol_price!r})"
    )
    return Trades.from_arrays(ts, price, size, side, source=source)


def write_trades_csv(trades: Trades, path: str | os.PathLike[str]) -> None:
    """Write trades as a ``ts,price,size,side`` CSV file that :func:`read_trades` reads back.

    Parameters
    ----------
    trades : Trades
        The trades to write.
    path : str or os.PathLike
        Destination. A name ending in ``.gz`` is gzip-compressed (level 9, no file name and
        ``mtime=0`` in the gzip header, so equal trades give equal bytes); any other name
        gets plain CSV.

    Notes
    -----
    ``ts`` is written as integer epoch ns, ``side`` as ``buy``/``sell`` and the floats with
    ``repr``, which round-trips every float64 exactly.

    Raises
    ------
    ValueError
        A price or size is not finite, or a side is not +1/-1.
    """
    if not (np.isfinite(trades.price).all() and np.isfinite(trades.size).all()):
        raise ValueError("cannot write trades with non-finite prices or sizes")
    if not np.isin(trades.side, (1, -1)).all():
        raise ValueError("cannot write trades with a side other than +1/-1")
    rows = map(
        "{},{!r},{!r},{}\n".format,
        trades.ts.tolist(),
        trades.price.tolist(),
        trades.size.tolist(),
        map(_SIDE_NAMES.__getitem__, trades.side.tolist()),
    )
    payload = (_HEADER + "".join(rows)).encode("ascii")
    if os.fspath(path).endswith(".gz"):
        with (
            open(path, "wb") as raw,
            gzip.GzipFile(filename="", mode="wb", compresslevel=9, fileobj=raw, mtime=0) as gz,
        ):
            gz.write(payload)
    else:
        Path(path).write_bytes(payload)


def bundled_trades() -> Trades:
    """Read the bundled synthetic trade set.

    Returns
    -------
    Trades
        The 100,000 trades of ``generate_trades()`` with the defaults, about 1.4 days.
    """
    with importlib.resources.as_file(BUNDLED_TRADES_PATH) as path:
        return read_trades(path)


def _main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m liveopt.data.synthetic",
        description="Regenerate the bundled synthetic trades (generate_trades() defaults).",
    )
    parser.add_argument("--output", type=Path, help="file to write (default: the bundled file)")
    args = parser.parse_args(argv)
    with importlib.resources.as_file(BUNDLED_TRADES_PATH) as bundled:
        output = args.output or bundled
        write_trades_csv(generate_trades(), output)
    print(f"wrote {output} ({Path(output).stat().st_size:,} bytes)")


if __name__ == "__main__":
    _main()
