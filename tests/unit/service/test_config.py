"""ServiceConfig: typed TOML, errors naming the field, environment rules, docs coverage."""

from __future__ import annotations

import re
from pathlib import Path

import msgspec
import pytest

from liveopt.optimizer import Range
from liveopt.service.config import (
    ConfigError,
    ServiceConfig,
    config_from_toml,
    credentials_from_env,
    load_config,
)

DOCS = Path(__file__).resolve().parents[3] / "docs" / "configuration.md"
KEYS = {"KUCOIN_API_KEY": "key-1", "KUCOIN_API_SECRET": "s3cr3t-value",
        "KUCOIN_API_PASSPHRASE": "phrase-value"}


def _leaf_fields(struct_type: type, prefix: str = "") -> dict[str, object]:
    # Dotted path -> default of every setting; a Range is one setting (a TOML table).
    out: dict[str, object] = {}
    for field in msgspec.structs.fields(struct_type):
        path = prefix + field.name
        kind = field.type
        if isinstance(kind, type) and issubclass(kind, msgspec.Struct) and kind is not Range:
            out.update(_leaf_fields(kind, path + "."))
        else:
            out[path] = field.default
    return out


def _documented_rows() -> dict[str, tuple[str, str]]:
    # Field tables of docs/configuration.md: | `path` | type | `default` | meaning |
    rows = {}
    for line in DOCS.read_text(encoding="utf-8").splitlines():
        cells = [c.strip() for c in re.split(r"(?<!\\)\|", line)[1:-1]]
        if len(cells) == 4 and re.fullmatch(r"`[a-z_.]+`", cells[0]) and "." in cells[0]:
            rows[cells[0].strip("`")] = (cells[1], cells[2].strip("`"))
    return rows


def _toml_literal(value: object) -> str | None:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, int | float):
        return repr(value)
    return None  # ranges, lists and None are not compared literally


# --- defaults -------------------------------------------------------------------------


def test_no_file_gives_paper_mode_on_loopback_with_optimizer_off() -> None:
    config = load_config(None, {})

    assert config == ServiceConfig()
    assert config.service.mode == "paper"
    assert config.service.confirm_live is False
    assert config.api.host == "127.0.0.1"
    assert config.optimizer.enabled is False
    assert config.optimizer.variants == 200


def test_file_values_override_defaults_and_leave_the_rest(tmp_path: Path) -> None:
    path = tmp_path / "liveopt.toml"
    path.write_text(
        '[service]\ndata_dir = "/srv/lo"\n[optimizer]\nvariants = 12\n'
        '[optimizer.gate]\ncorrection = "bh"\n[optimizer.space]\ntimeframes = ["1m"]\n'
        'default_timeframe = "1m"\nleverage = { low = 2, high = 4, step = 1, default = 3 }\n'
        "[engine]\ncapital = 5000\n[api]\nport = 0\n",
        encoding="utf-8",
    )

    config = load_config(path, {})

    assert config.data_dir == Path("/srv/lo")
    assert config.optimizer.variants == 12
    assert config.optimizer.gate.correction == "bh"
    assert config.optimizer.gate.min_trades == ServiceConfig().optimizer.gate.min_trades
    assert config.optimizer.space.leverage == Range(2.0, 4.0, 1.0, 3.0)
    assert config.engine.capital == 5000.0
    assert config.api.port == 0
    assert config.telemetry == ServiceConfig().telemetry


# --- errors name the field ------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "field"),
    [
        ("[optimizer]\nvariants = 0", "optimizer.variants"),
        ('[optimizer]\nvariants = "many"', "optimizer.variants"),
        ('[service]\nmode = "demo"', "service.mode"),
        ("[engine]\ncapital = -1.0", "engine.capital"),
        ('[engine]\nsides = "up"', "engine.sides"),
        ("[optimizer.gate]\nmin_trades = 1", "optimizer.gate.min_trades"),
        ('[optimizer]\ngeneration = "magic"', "optimizer.generation"),
        ("[optimizer.space.stop_loss_roi]\nlow = 0.3\nhigh = 1.0\nstep = 0.3\ndefault = 0.6",
         "optimizer.space.stop_loss_roi"),
        ("[api]\nport = 70000", "api.port"),
        ("[telemetry]\ncadence_s = 0", "telemetry.cadence_s"),
        ("[journal]\nfsync_every = 0", "journal.fsync_every"),
        ("[alerts]\ncrash_rate = 1.5", "alerts.crash_rate"),
        ('[exchange]\nrest_url = "ftp://x"', "exchange.rest_url"),
    ],
)
def test_invalid_value_error_starts_with_the_field_path(text: str, field: str) -> None:
    with pytest.raises(ConfigError) as caught:
        config_from_toml(text, {})

    assert str(caught.value).startswith(f"{field}: ")


@pytest.mark.parametrize(
    ("text", "field"),
    [("[engine]\ncaptial = 1.0", "engine.captial"), ("colour = 1", "colour"),
     ("[optimizer.gate]\nalpha = 0.1", "optimizer.gate.alpha"), ("[nope]\nx = 1", "nope")],
)
def test_unknown_field_is_rejected_by_its_path(text: str, field: str) -> None:
    with pytest.raises(ConfigError, match=rf"^{re.escape(field)}: unknown field"):
        config_from_toml(text, {})


def test_invalid_toml_is_a_config_error_naming_the_file(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text("[service\nmode = ", encoding="utf-8")

    with pytest.raises(ConfigError, match=rf"{re.escape(str(path))}: invalid TOML"):
        load_config(path, {})


def test_missing_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot be read"):
        load_config(tmp_path / "absent.toml", {})


# --- environment ----------------------------------------------------------------------


@pytest.mark.parametrize(("value", "expected"),
                         [("1", True), ("true", True), ("TRUE", True), ("0", False),
                          ("false", False)])
def test_optimizer_enabled_env_overrides_the_file(value: str, expected: bool) -> None:
    text = f"[optimizer]\nenabled = {'false' if expected else 'true'}"

    config = config_from_toml(text, {"OPTIMIZER_ENABLED": value})

    assert config.optimizer.enabled is expected


@pytest.mark.parametrize("value", ["yes", "", "2", "on"])
def test_optimizer_enabled_env_with_other_words_is_an_error_naming_it(value: str) -> None:
    with pytest.raises(ConfigError, match=r"^OPTIMIZER_ENABLED: "):
        config_from_toml("", {"OPTIMIZER_ENABLED": value})


@pytest.mark.parametrize(
    "text",
    ['[exchange]\napi_key = "k"', '[exchange]\nsecret = "s"', 'passphrase = "p"',
     '[api]\ntoken = "t"', '[exchange.credentials]\nkey = "k"', '[service]\nPassword = "x"'],
)
def test_secret_looking_key_in_file_is_refused_pointing_to_the_environment(text: str) -> None:
    with pytest.raises(ConfigError, match="come from the environment only") as caught:
        config_from_toml(text, KEYS)

    # The refusal names where, never what: a value must not be echoed.
    assert '"k"' not in str(caught.value) and '"s"' not in str(caught.value)


def test_production_like_environment_never_leaves_paper_mode() -> None:
    environ = {"NODE_ENV": "production", "LIVEOPT_ENV": "production", "ENV": "live",
               "MODE": "live", "PAPER_TRADING": "false", **KEYS}

    config = config_from_toml("", environ)

    assert config.service.mode == "paper"


def test_live_mode_without_keys_is_refused_naming_the_variables() -> None:
    with pytest.raises(ConfigError, match="KUCOIN_API_KEY"):
        config_from_toml('[service]\nmode = "live"\nconfirm_live = true', {})


def test_live_mode_without_confirmation_is_refused_naming_the_flag() -> None:
    with pytest.raises(ConfigError, match=r"^service\.confirm_live: "):
        config_from_toml('[service]\nmode = "live"', KEYS)


def test_live_mode_with_simulator_is_refused() -> None:
    text = '[service]\nmode = "live"\nconfirm_live = true\n[exchange]\nuse_simulator = true'

    with pytest.raises(ConfigError, match=r"^exchange\.use_simulator: "):
        config_from_toml(text, KEYS)


def test_live_mode_with_keys_and_confirmation_loads() -> None:
    config = config_from_toml('[service]\nmode = "live"\nconfirm_live = true', KEYS)

    assert config.service.mode == "live"
    credentials = credentials_from_env(KEYS)
    assert credentials is not None and credentials.key == "key-1"


def test_config_holds_no_secret_even_in_live_mode() -> None:
    config = config_from_toml('[service]\nmode = "live"\nconfirm_live = true', KEYS)

    encoded = msgspec.json.encode(config).decode() + repr(config)

    for secret in KEYS.values():
        assert secret not in encoded


def test_partial_keys_are_an_error_naming_the_missing_ones_without_values() -> None:
    with pytest.raises(ConfigError, match="KUCOIN_API_PASSPHRASE") as caught:
        credentials_from_env({"KUCOIN_API_KEY": "key-1", "KUCOIN_API_SECRET": "s3cr3t-value"})

    assert "s3cr3t-value" not in str(caught.value)


# --- documentation --------------------------------------------------------------------


def test_every_config_field_is_documented_with_its_default() -> None:
    fields = _leaf_fields(ServiceConfig)
    documented = _documented_rows()

    missing = sorted(set(fields) - set(documented))
    stale = sorted(set(documented) - set(fields))
    assert not missing, f"fields missing from docs/configuration.md: {missing}"
    assert not stale, f"docs/configuration.md documents fields that do not exist: {stale}"
    for path, default in fields.items():
        literal = _toml_literal(default)
        if literal is not None:
            assert documented[path][1] == literal, f"{path}: documented default differs"


def test_documented_example_is_a_valid_config() -> None:
    text = DOCS.read_text(encoding="utf-8")
    example = re.search(r"```toml\n(.*?)```", text, re.S)
    assert example is not None

    config = config_from_toml(example.group(1), {})

    assert config.optimizer.variants == 500
