"""The promotion audit log (``promotions.jsonl``) and the parameters as it records them.

Every applied promotion or rollback is one JSON line (a ``views.PromotionRecord``),
appended and fsynced before the controller reports success, so the audit trail survives
a crash. On start the log is read back: its last record says which parameters the main
strategy runs, and the promote/rollback sequence rebuilds the rollback history.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from pathlib import Path

import msgspec

from liveopt.engine import Engine
from liveopt.optimizer import FLOAT_PARAMS, WEIGHT_NAMES, VariantParams
from liveopt.service.errors import ConflictError, ServiceError
from liveopt.service.views import GateVerdict, PromotionRecord

log = logging.getLogger("liveopt.promotion")

PROMOTIONS_FILE = "promotions.jsonl"
MAIN = 0  # the main strategy's variant id
_WEIGHT_PREFIX = "weight."

Params = dict[str, float | int | str]


def params_to_dict(params: VariantParams) -> Params:
    """A variant's parameters as the flat mapping the API and the audit log show:
    ``weight.<name>`` (as given, points or fractions), the float parameters,
    ``leverage`` and ``timeframe``."""
    out: Params = {
        f"{_WEIGHT_PREFIX}{name}": float(w)
        for name, w in zip(WEIGHT_NAMES, params.weights, strict=True)
    }
    for name in FLOAT_PARAMS:
        out[name] = float(getattr(params, name))
    out["leverage"] = int(params.leverage)
    out["timeframe"] = params.timeframe
    return out


def params_from_dict(values: Params) -> VariantParams:
    """The inverse of :func:`params_to_dict`.

    Raises
    ------
    ValueError
        Naming the missing, unknown or invalid field.
    """
    expected = {f"{_WEIGHT_PREFIX}{n}" for n in WEIGHT_NAMES} | set(FLOAT_PARAMS)
    expected |= {"leverage", "timeframe"}
    missing, unknown = expected - set(values), set(values) - expected
    if missing or unknown:
        raise ValueError(f"params: missing {sorted(missing)}, unknown {sorted(unknown)}")
    weights = tuple(float(values[f"{_WEIGHT_PREFIX}{n}"]) for n in WEIGHT_NAMES)
    fields = {name: float(values[name]) for name in FLOAT_PARAMS}
    leverage = values["leverage"]
    if isinstance(leverage, str) or int(leverage) != leverage:
        raise ValueError(f"leverage: {leverage!r} must be an integer")
    timeframe = values["timeframe"]
    if not isinstance(timeframe, str):
        raise ValueError(f"timeframe: {timeframe!r} must be a string")
    return VariantParams(weights=weights, leverage=int(leverage), timeframe=timeframe,
                         **fields)


class PromotionLog:
    """``promotions.jsonl`` in ``data_dir``: append-only, fsynced per record."""

    def __init__(self, data_dir: str | os.PathLike[str]) -> None:
        self.path = Path(data_dir) / PROMOTIONS_FILE
        self._encoder = msgspec.json.Encoder()
        self._decoder = msgspec.json.Decoder(PromotionRecord)
        #: Lines of the existing file that could not be read (counted, logged once each).
        self.rejected = 0

    def append(self, record: PromotionRecord) -> None:
        """Write ``record`` as one line and fsync it (raises OSError on failure)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        line = self._encoder.encode(record) + b"\n"
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, line)
            os.fsync(fd)
        finally:
            os.close(fd)

    def load(self) -> list[PromotionRecord]:
        """The records in the file, oldest first; unreadable lines are skipped and
        counted in :attr:`rejected` (a torn last line after a crash is one)."""
        if not self.path.exists():
            return []
        records = []
        for number, line in enumerate(self.path.read_bytes().splitlines(), start=1):
            if not line.strip():
                continue
            try:
                records.append(self._decoder.decode(line))
            except (msgspec.DecodeError, msgspec.ValidationError) as error:
                self.rejected += 1
                log.error("%s line %d rejected: %s", self.path, number, error)
        return records


class PromotionHistory:
    """Which parameters a rollback restores: a stack of the main strategy's earlier
    parameters, one entry per promotion not yet rolled back."""

    def __init__(self) -> None:
        self._stack: list[PromotionRecord] = []

    def __len__(self) -> int:
        return len(self._stack)

    def applied(self, record: PromotionRecord) -> None:
        """Account for an applied promotion or rollback."""
        if record.action == "promote":
            self._stack.append(record)
        elif record.action == "rollback" and self._stack:
            self._stack.pop()

    def last(self) -> PromotionRecord | None:
        """The promotion a rollback would undo (None: nothing to undo)."""
        return self._stack[-1] if self._stack else None


class Promoter:
    """Applies promotions and rollbacks to an engine's variant 0, audited.

    Every change is written to the audit log (fsynced) before it is reported; if the
    write fails the engine is put back and nothing is reported.
    """

    def __init__(self, data_dir: str | os.PathLike[str], clock_ns: Callable[[], int]) -> None:
        self.log = PromotionLog(data_dir)
        self._clock_ns = clock_ns
        self.history = PromotionHistory()
        #: Every record of the audit log, oldest first.
        self.records: list[PromotionRecord] = self.log.load()
        for record in self.records:
            self.history.applied(record)

    def reapply(self, engine: Engine) -> bool:
        """Give a new engine's variant 0 the parameters the audit log ends with (after a
        restart); returns whether anything changed.

        Raises
        ------
        ValueError
            If the recorded parameters are invalid or their timeframe is not the engine's.
        """
        if not self.records:
            return False
        last = self.records[-1]
        if int(engine.variants.config_hash[MAIN]) == last.new_config_hash:
            return False
        engine.set_variant_params(MAIN, params_from_dict(last.new_params))
        return True

    def promote(self, engine: Engine, variant: int, source: str,
                evidence: GateVerdict | None) -> PromotionRecord:
        """Copy ``variant``'s parameters into variant 0 (ConflictError if it is variant 0
        or has variant 0's parameters already)."""
        if variant == MAIN:
            raise ConflictError("variant 0 is the main strategy already")
        hashes = engine.variants.config_hash
        if hashes[variant] == hashes[MAIN]:
            raise ConflictError(f"variant {variant} has the main strategy's parameters already")
        previous = engine.variants[MAIN]
        engine.copy_variant_params(variant, MAIN)
        return self._audit(engine, "promote", variant, previous, source, evidence)

    def rollback(self, engine: Engine, source: str = "api") -> PromotionRecord:
        """Restore variant 0's parameters from before the last promotion not yet rolled
        back (ConflictError if there is none, or they cannot run in this engine)."""
        last = self.history.last()
        if last is None:
            raise ConflictError("there is no promotion to roll back")
        previous = engine.variants[MAIN]
        try:
            engine.set_variant_params(MAIN, params_from_dict(last.previous_params))
        except ValueError as error:
            raise ConflictError(f"cannot restore the earlier parameters: {error}") from None
        return self._audit(engine, "rollback", last.variant_id, previous, source, None)

    def _audit(self, engine: Engine, action: str, variant: int, previous: VariantParams,
               source: str, evidence: GateVerdict | None) -> PromotionRecord:
        record = PromotionRecord(
            ts_ns=self._clock_ns(), action=action, variant_id=variant,
            previous_config_hash=previous.config_hash(),
            new_config_hash=int(engine.variants.config_hash[MAIN]),
            previous_params=params_to_dict(previous),
            new_params=params_to_dict(engine.variants[MAIN]), source=source,
            evidence=evidence,
        )
        try:
            self.log.append(record)
        except OSError as error:  # no audit record, no change
            engine.set_variant_params(MAIN, previous)
            raise ServiceError(f"the audit record could not be written: {error}") from None
        self.records.append(record)
        self.history.applied(record)
        log.warning("%s: variant %d -> main strategy (hash %d -> %d, %s)", action, variant,
                    record.previous_config_hash, record.new_config_hash, source)
        return record
