"""``Engine.copy_variant_params`` / ``set_variant_params``: what promotion relies on.

A variant given another's parameters must from then on decide exactly as that variant
does (also when it moves to another timeframe block of the internal order), keep its own
account, leave every other variant untouched, and keep snapshots bit-identical.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from liveopt.data import Trades, bundled_trades
from liveopt.engine import Engine, EngineConfig
from liveopt.optimizer import OptimizerConfig, Range, generate_variants

# Thresholds low enough that random variants trade often on a short stream.
SPACE = OptimizerConfig(
    strong_buy=Range(0.2, 0.5, 0.05, 0.3),
    buy=Range(0.1, 0.2, 0.05, 0.15),
    sell=Range(-0.2, -0.1, 0.05, -0.15),
    strong_sell=Range(-0.5, -0.2, 0.05, -0.3),
    min_confidence=Range(0.3, 0.6, 0.05, 0.4),
    timeframes=("1m", "5m"),
    default_timeframe="1m",
)
CONFIG = EngineConfig(max_loss_pct=None, max_drawdown_pct=None, halt_below_pct=None,
                      baseline_max_drawdown_pct=None)
DECISION_FIELDS = ("side", "entry_ts", "exit_ts", "entry_price", "exit_price", "reason")
N_TRADES = 16_000
CHUNK = 500


@pytest.fixture(scope="module")
def trades() -> Trades:
    full = bundled_trades()
    return Trades.from_arrays(full.ts[:N_TRADES], full.price[:N_TRADES],
                              full.size[:N_TRADES], full.side[:N_TRADES])


def new_engine(n: int = 12, seed: int = 7) -> Engine:
    return Engine(CONFIG, generate_variants(n, "random", seed, SPACE))


def feed(engine: Engine, trades: Trades, start: int, stop: int) -> None:
    engine.on_trades(trades.ts[start:stop], trades.price[start:stop], trades.size[start:stop],
                     trades.side[start:stop])


def source_with(engine: Engine, same_timeframe: bool) -> int:
    tf = engine.variants.timeframe
    ids = [v for v in range(1, len(engine)) if (tf[v] == tf[0]) == same_timeframe]
    assert ids, "the generated set lacks a variant of the wanted timeframe"
    return ids[0]


def feed_until_flat(engine: Engine, trades: Trades, variants: list[int]) -> int:
    """Feed chunks until every listed variant is flat (after some trading); return the
    index of the next trade to feed."""
    done = 0
    while done < N_TRADES // 2:
        feed(engine, trades, done, done + CHUNK)
        done += CHUNK
        metrics = engine.metrics()
        if done >= 3 * CHUNK and all(metrics["side"][v] == 0 for v in variants):
            return done
    raise AssertionError("the variants never were flat together")


def decisions(trades: np.ndarray, variant: int, after_ts: int) -> list[tuple]:
    rows = trades[(trades["variant"] == variant) & (trades["entry_ts"] > after_ts)]
    return [tuple(row[f] for f in DECISION_FIELDS) for row in rows]


@pytest.mark.parametrize("same_timeframe", [True, False], ids=["same_tf", "other_tf"])
def test_target_trades_like_the_source_after_copy(trades, same_timeframe):
    engine = new_engine()
    twin = new_engine()  # the same stream without the copy
    source = source_with(engine, same_timeframe)
    cut = feed_until_flat(engine, trades, [0, source])
    feed(twin, trades, 0, cut)
    before = engine.metrics()
    cut_ts = int(trades.ts[cut - 1])
    engine.drain_fills()
    twin.drain_fills()

    engine.copy_variant_params(source, 0)

    after = engine.metrics()
    # The account and statistics stay; only the hash follows the new parameters.
    for name in ("trades", "net_pnl", "equity", "max_drawdown", "side"):
        assert after[name][0] == before[name][0]
    assert after["config_hash"][0] == before["config_hash"][source]
    assert engine.variants[0] == engine.variants[source]
    feed(engine, trades, cut, N_TRADES)
    feed(twin, trades, cut, N_TRADES)
    got, expected = engine.drain_fills().trades, twin.drain_fills().trades
    promoted = decisions(got, 0, cut_ts)
    assert promoted, "the promoted variant never traded after the copy"
    assert promoted == decisions(got, source, cut_ts)
    assert decisions(got, 0, cut_ts) != decisions(expected, 0, cut_ts)
    for v in range(1, len(engine)):  # nobody else is touched
        assert np.array_equal(got[got["variant"] == v], expected[expected["variant"] == v])


def test_a_variant_moved_to_another_timeframe_block_changes_the_layout(trades):
    engine = new_engine()
    source = source_with(engine, same_timeframe=False)
    engine.copy_variant_params(source, 0)
    rebuilt = Engine(CONFIG, engine.variants)
    assert engine.timeframes == rebuilt.timeframes
    assert np.array_equal(engine.variants.timeframe, rebuilt.variants.timeframe)
    assert engine.variants.timeframe[0] == engine.variants.timeframe[source]
    # Same snapshot bytes as an engine built with the new parameters from the start.
    assert engine.snapshot() == rebuilt.snapshot()


@pytest.mark.parametrize("same_timeframe", [True, False], ids=["same_tf", "other_tf"])
def test_snapshot_after_copy_restores_bit_identically(trades, same_timeframe):
    engine = new_engine()
    source = source_with(engine, same_timeframe)
    feed(engine, trades, 0, 4_000)
    old_snapshot = engine.snapshot()
    engine.copy_variant_params(source, 0)
    feed(engine, trades, 4_000, 6_000)
    engine.drain_fills()
    snapshot = engine.snapshot()
    restored = Engine(CONFIG, engine.variants)
    restored.restore(snapshot)
    feed(engine, trades, 6_000, N_TRADES)
    feed(restored, trades, 6_000, N_TRADES)
    assert engine.metrics().tobytes() == restored.metrics().tobytes()
    assert engine.drain_fills().trades.tobytes() == restored.drain_fills().trades.tobytes()
    assert engine.snapshot() == restored.snapshot()
    with pytest.raises(ValueError, match="other variants"):
        engine.restore(old_snapshot)


def test_set_variant_params_back_restores_the_exact_state(trades):
    engine = new_engine()
    twin = new_engine()
    feed(engine, trades, 0, 5_000)
    feed(twin, trades, 0, 5_000)
    source = source_with(engine, same_timeframe=False)
    previous = engine.variants[0]
    engine.copy_variant_params(source, 0)
    assert engine.snapshot() != twin.snapshot()
    engine.set_variant_params(0, previous)
    assert np.array_equal(engine.variants.config_hash, twin.variants.config_hash)
    assert engine.snapshot() == twin.snapshot()
    feed(engine, trades, 5_000, 9_000)
    feed(twin, trades, 5_000, 9_000)
    assert engine.metrics().tobytes() == twin.metrics().tobytes()


@settings(max_examples=15, deadline=None)
@given(pairs=st.lists(st.tuples(st.integers(0, 11), st.integers(0, 11)), min_size=1,
                      max_size=4))
def test_any_sequence_of_copies_undone_leaves_the_engine_unchanged(trades, pairs):
    engine = new_engine()
    feed(engine, trades, 0, 2_000)
    reference = engine.snapshot()
    undo = []
    for source, target in pairs:
        undo.append((target, engine.variants[target]))
        engine.copy_variant_params(source, target)
        assert engine.variants[target] == engine.variants[source]
        assert engine.metrics()["config_hash"][target] == engine.variants.config_hash[source]
    for target, params in reversed(undo):
        engine.set_variant_params(target, params)
    assert engine.snapshot() == reference


def test_bad_ids_and_unknown_timeframes_are_refused():
    engine = new_engine()
    with pytest.raises(ValueError, match="no variant 12"):
        engine.copy_variant_params(12, 0)
    with pytest.raises(ValueError, match="no variant -1"):
        engine.copy_variant_params(1, -1)
    params = engine.variants[0]
    one_tf = Engine(CONFIG, generate_variants(3, "random", 1, SPACE).take([0]))
    foreign = params.__class__(**{**{f: getattr(params, f) for f in params.__struct_fields__},
                                  "timeframe": "5m"})
    with pytest.raises(ValueError, match="timeframe"):
        one_tf.set_variant_params(0, foreign)
