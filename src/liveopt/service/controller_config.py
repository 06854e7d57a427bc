"""The controller's settings and the default way it builds its engine."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING

import msgspec

from liveopt.engine import Engine, EngineConfig
from liveopt.optimizer import DEFAULT_CONFIG, MODES, OptimizerConfig, VariantParams
from liveopt.optimizer import generate_variants as _generate
from liveopt.scoring import PromotionGate, ScoringEngine
from liveopt.service.alerts import AlertConfig
from liveopt.service.views import MODES as TRADING_MODES

if TYPE_CHECKING:
    from liveopt.service.config import ServiceConfig

#: Builds the engine (at start-up and on reset) around the configured main parameters
#: (None: the optimizer config's defaults).
EngineFactory = Callable[[VariantParams | None], Engine]


class ControllerConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """How the controller runs (docs/controller.md).

    Parameters
    ----------
    mode : {"paper", "sim", "live"}
        ``paper``: no order leaves the process, whatever router is given.
    symbol : str
        The traded contract (shown in status; the feed chooses what arrives).
    optimizer_enabled : bool
        Off: only the main strategy (variant 0) runs.
    variants : int
        Variants including the main strategy when the optimizer is on (>= 1).
    generation : str
        ``liveopt.optimizer.generate_variants`` mode; ``seed`` its seed.
    batch_interval_s : float
        Longest wait of a received tick before the engine pass that consumes it.
    batch_max_ticks : int
        A batch of this many pending ticks is processed at once, without waiting.
    cadence_s : float
        Telemetry cadence: metrics, ranking, equity samples, alerts, ``MetricsUpdated``.
    evaluate_every_s : float
        Period of the promotion gate's evaluation.
    auto_promote : bool
        Apply the best gate candidate automatically (at most once per
        ``auto_promote_cooldown_s``).
    equity_points : int
        Equity samples kept per variant (the bounded history behind the curves).
    equity_leaders : int
        How many of the best-ranked variants are sampled besides the main strategy.
    rate_window_s : float
        Window of the ticks-per-second figure.
    """

    mode: str = "paper"
    symbol: str = "XBTUSDTM"
    optimizer_enabled: bool = False
    variants: int = 10
    generation: str = "random"
    seed: int = 0
    batch_interval_s: float = 0.005
    batch_max_ticks: int = 256
    cadence_s: float = 1.0
    evaluate_every_s: float = 5.0
    auto_promote: bool = False
    auto_promote_cooldown_s: float = 3600.0
    equity_points: int = 300
    equity_leaders: int = 10
    rate_window_s: float = 10.0
    scoring: ScoringEngine = ScoringEngine()
    gate: PromotionGate = PromotionGate()
    alerts: AlertConfig = AlertConfig()

    def __post_init__(self) -> None:
        if self.mode not in TRADING_MODES:
            raise ValueError(f"mode: {self.mode!r} is not one of {', '.join(TRADING_MODES)}")
        if self.generation not in MODES:
            raise ValueError(f"generation: {self.generation!r} is not one of {', '.join(MODES)}")
        for name in ("variants", "batch_max_ticks", "equity_points", "equity_leaders"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name}: {getattr(self, name)} must be >= 1")
        if self.seed < 0:
            raise ValueError(f"seed: {self.seed} must be >= 0")
        for name in ("batch_interval_s", "cadence_s", "evaluate_every_s", "rate_window_s"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"{name}: {value!r} must be a finite number > 0")
        if not (math.isfinite(self.auto_promote_cooldown_s) and self.auto_promote_cooldown_s >= 0):
            raise ValueError(f"auto_promote_cooldown_s: {self.auto_promote_cooldown_s!r} "
                             "must be >= 0")


def variant_count(config: ControllerConfig) -> int:
    """Rows of the variant set: the main strategy alone when the optimizer is off."""
    return config.variants if config.optimizer_enabled else 1


def engine_factory(config: ControllerConfig, engine_config: EngineConfig,
                   space: OptimizerConfig = DEFAULT_CONFIG) -> EngineFactory:
    """The default factory: ``generate_variants`` around the main parameters (row 0)."""

    def build(main: VariantParams | None) -> Engine:
        variants = _generate(variant_count(config), config.generation, config.seed, space,
                             baseline=main)
        return Engine(engine_config, variants)

    return build


def controller_config_from(service: ServiceConfig) -> ControllerConfig:
    """The controller's part of the daemon's ``liveopt.toml`` configuration."""
    return ControllerConfig(
        mode=service.service.mode,
        symbol=service.service.symbol,
        optimizer_enabled=service.optimizer.enabled,
        variants=service.optimizer.variants,
        generation=service.optimizer.generation,
        seed=service.optimizer.seed,
        cadence_s=service.telemetry.cadence_s,
        evaluate_every_s=service.optimizer.evaluate_every_s,
        auto_promote=service.optimizer.auto_promote,
        equity_points=service.telemetry.equity_points,
        gate=service.optimizer.gate,
        alerts=AlertConfig(crash_rate_pct=100.0 * service.alerts.crash_rate,
                           memory_pct=service.alerts.memory_pct),
    )
