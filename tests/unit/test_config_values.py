"""Configuration values that cannot work are refused at load with one line naming the key:
every number by its range, texts without control characters, SIP2 identifiers that would change
on the wire, patterns that cannot compile or that make items look like cards. A generated-TOML
fuzz shows that nothing but ConfigError ever escapes the loader."""

from __future__ import annotations

import dataclasses
import logging
import math
from pathlib import Path
from typing import Any, get_args, get_origin, get_type_hints

import pytest
import tomli_w
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kiosk import config
from kiosk.errors import ConfigError

ROOT = Path(config.__file__).resolve().parent.parent
SHIPPED = [
    ROOT / "config" / "kiosk.toml",
    ROOT / "kiosk" / "default.toml",
    *sorted((ROOT / "config" / "examples").glob("*.toml")),
]


def _load_error(text: str) -> str:
    with pytest.raises(ConfigError) as info:
        config.parse(text, "site.toml")
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith("site.toml: ")
    return message


def _fields() -> list[tuple[str, Any]]:
    """(key, type) of every value a site can set, routing rules included."""
    out = []
    for section in dataclasses.fields(config.Config):
        tp = get_type_hints(config.Config)[section.name]
        if dataclasses.is_dataclass(tp):
            out += [(f"{section.name}.{k}", t) for k, t in get_type_hints(tp).items()]
    out += [(f"routing.{k}", t) for k, t in get_type_hints(config.RoutingRule).items()]
    return out


NUMBERS = [(key, tp) for key, tp in _fields() if tp in (int, float)]


def _toml_for(key: str, value: Any) -> str:
    section, name = key.split(".")
    if section == "routing":
        rule = {"bin": 1, name: value}
        return tomli_w.dumps({"routing": [rule]})
    return tomli_w.dumps({section: {name: value}})


# --- numbers ----------------------------------------------------------------------------------


def test_every_number_has_a_range() -> None:
    assert {key for key, _ in NUMBERS} <= set(config.NUMBER_RANGES)


@pytest.mark.parametrize("key,tp", NUMBERS, ids=[k for k, _ in NUMBERS])
def test_numbers_out_of_range_name_their_key(key: str, tp: type) -> None:
    low, high = config.NUMBER_RANGES[key]
    bad: list[Any] = [int(low) - 1, int(high) + 1 if high == int(high) else high * 2]
    if tp is float:
        bad += [math.nan, math.inf, -math.inf, low - 0.0005 if low else -0.5]
    else:
        bad += [-(10**30), 10**18]
    for value in bad:
        message = _load_error(_toml_for(key, value))
        assert f"{key}:" in message, (value, message)
    # The limits themselves are accepted unless another rule ties them to a second key.
    tied = ("ui.idle_timeout_s", "ui.idle_warning_s", "security.afi_unsecured", "printer.width")
    if key not in tied:  # (printer.width is also checked against the printer profile)
        for value in (low, high):
            config.parse(_toml_for(key, tp(value)), "site.toml")


# --- texts ------------------------------------------------------------------------------------


@pytest.mark.parametrize("delimiter", ["\r", "\n", "A", "z", "7", " ", "\t", "||", "", "\x00"])
def test_field_delimiter_that_cannot_work(delimiter: str) -> None:
    message = _load_error(_toml_for("sip2.field_delimiter", delimiter))
    assert "sip2.field_delimiter" in message


@pytest.mark.parametrize("delimiter", ["|", "^", "~"])
def test_field_delimiters_that_work(delimiter: str) -> None:
    assert (
        config.parse(_toml_for("sip2.field_delimiter", delimiter)).sip2.field_delimiter == delimiter
    )


@pytest.mark.parametrize("key", config.SIP2_FIELD_KEYS)
def test_sip2_identifier_with_the_delimiter_is_refused_not_stripped(key: str) -> None:
    message = _load_error(_toml_for(key, "DEMO|BRANCH"))
    assert key in message
    assert "delimiter" in message
    if "password" in key:
        assert "DEMO" not in message  # a secret is never echoed
    # With another delimiter, | is an ordinary character and is kept as written.
    section, name = key.split(".")
    text = f'[sip2]\nfield_delimiter = "^"\n{name} = "DEMO|BRANCH"\n'
    assert getattr(config.parse(text).sip2, name) == "DEMO|BRANCH"


@pytest.mark.parametrize("key", config.SIP2_FIELD_KEYS)
def test_sip2_identifier_over_255_bytes_is_refused_not_truncated(key: str) -> None:
    assert key in _load_error(_toml_for(key, "ā" * 128))  # 256 bytes in UTF-8
    assert key in _load_error(_toml_for(key, "x" * 256))
    assert len(getattr(config.parse(_toml_for(key, "x" * 255)).sip2, key.split(".")[1])) == 255


def test_identifier_not_writable_in_the_sip2_encoding() -> None:
    message = _load_error('[sip2]\nencoding = "cp850"\nlocation_code = "Rīga"\n')
    assert "sip2.location_code" in message
    assert "cp850" in message


TEXTS = [(key, tp) for key, tp in _fields() if tp is str or get_args(tp) == (str, ...)]


@pytest.mark.parametrize("key,tp", TEXTS, ids=[k for k, _ in TEXTS])
def test_control_characters_in_any_text_are_refused(key: str, tp: Any) -> None:
    value: Any = "A\x00B"
    if get_origin(tp) is tuple:
        value = ["ok", "A\rB"]
    message = _load_error(_toml_for(key, value))
    assert key in message


@pytest.mark.parametrize("key", config.NON_EMPTY_KEYS)
def test_empty_value_where_one_is_needed(key: str) -> None:
    assert key in _load_error(_toml_for(key, "  "))


@pytest.mark.parametrize("currency", ["eur", "EURO", "E1", ""])
def test_currency_is_an_iso_4217_code(currency: str) -> None:
    assert "kiosk.currency" in _load_error(_toml_for("kiosk.currency", currency))


@pytest.mark.parametrize(
    "key,value",
    [
        ("printer.email_url", "mailto:desk@example.lv"),
        ("printer.email_from", "kiosk"),
        ("printer.email_from", "a b@c"),
    ],
)
def test_e_mail_receipts_need_a_way_out_and_a_sender(key: str, value: str) -> None:
    name = key.split(".")[1]
    text = f'[printer]\nemail_receipts = true\n{name} = "{value}"\n'
    assert key in _load_error(text)
    config.parse(text.replace("email_receipts = true", "email_receipts = false"))


# --- the cases named in the issue -------------------------------------------------------------


def test_repetition_too_large_for_the_regex_engine() -> None:
    message = _load_error('[patron]\ncard_pattern = "^[0-9]{4444444444}$"\n')
    assert "patron.card_pattern" in message
    assert "regular expression" in message


def test_pattern_nested_too_deeply_for_the_regex_engine() -> None:
    message = _load_error(f'[patron]\nitem_pattern = "{"(" * 1000}a{")" * 1000}"\n')
    assert "patron.item_pattern" in message


def test_arrays_nested_500_deep() -> None:
    text = "[patron]\ncard_sources = " + "[" * 500 + "]" * 500 + "\n"
    message = _load_error(text)
    assert "patron.card_sources" in message
    assert "nested too deeply" in message


def test_unknown_key_with_a_line_break_keeps_the_message_on_one_line() -> None:
    assert "'\\n': unknown key" in _load_error('"\\n" = 1\n')  # found by the fuzz below
    assert "sip2.'a\\rb': unknown key" in _load_error('[sip2]\n"a\\rb" = 1\n')


# --- card and item patterns -------------------------------------------------------------------


def _patterns(card: str, item: str) -> str:
    return tomli_w.dumps({"patron": {"card_pattern": card, "item_pattern": item}})


def test_item_pattern_inside_the_card_pattern_is_refused() -> None:
    message = _load_error(_patterns("^[0-9]{6,14}$", "^[0-9]{8,10}$"))
    assert "patron.item_pattern" in message
    assert "patron.card_pattern" in message


def test_overlapping_patterns_warn_with_a_string_both_match(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # The old Koha example: 10-14 digit item barcodes were taken for cards.
    with caplog.at_level(logging.WARNING, logger="kiosk.config"):
        config.parse(_patterns("^[0-9]{10,14}$", "^[0-9]{8,14}$"))
    (record,) = [r for r in caplog.records if r.name == "kiosk.config"]
    example = record.getMessage().split("(e.g. '")[1].split("'")[0]
    assert "patron.item_pattern" in record.getMessage()
    assert example.isdigit()
    assert 10 <= len(example) <= 14


@pytest.mark.parametrize(
    "card,item",
    [
        ("^LV[0-9]{4,12}$", "^[0-9][0-9A-Z-]{2,31}$"),
        ("^2[0-9]{13}$", "^3[0-9]{13}$"),
        ("^[A-Z][0-9A-Z]{5,13}$", "^[0-9]{6,14}$"),
        ("^CARD[0-9]{4}$", "^[0-9]{4,20}$"),
    ],
)
def test_distinct_patterns_load_without_warning(
    card: str, item: str, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="kiosk.config"):
        config.parse(_patterns(card, item))
    assert not [r for r in caplog.records if r.name == "kiosk.config"]


@pytest.mark.parametrize(
    "card",
    ["^[0-9]{6}(?<!0)$", r"^([0-9])\1{5}$"],
)
def test_patterns_beyond_comparison_warn_with_the_precedence(
    card: str, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="kiosk.config"):
        config.parse(_patterns(card, "^[0-9]{8}$"))
    (record,) = [r for r in caplog.records if r.name == "kiosk.config"]
    assert "taken for a card" in record.getMessage()


@pytest.mark.parametrize("key", ["patron.card_pattern", "patron.item_pattern"])
@pytest.mark.parametrize(
    "pattern", ["^[0-9]+$", "^LV[0-9]{4}", "^[0-9]{1,300}$", "^[0-9]{100000}$"]
)
def test_patterns_allowing_more_than_a_sip2_field_are_refused(key: str, pattern: str) -> None:
    other = "^[A-Z]{3}$"
    card, item = (pattern, other) if key.endswith("card_pattern") else (other, pattern)
    message = _load_error(_patterns(card, item))
    assert key in message
    assert "255" in message


@pytest.mark.parametrize("path", SHIPPED, ids=[p.name for p in SHIPPED])
def test_every_shipped_configuration_loads_cleanly(
    path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="kiosk.config"):
        cfg = config.load(path)
    assert not [r.getMessage() for r in caplog.records if r.name == "kiosk.config"]
    assert cfg.source == str(path.resolve())


# --- fuzz -------------------------------------------------------------------------------------

_ANY_VALUE = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(min_value=-(2**63), max_value=2**63 - 1),
        st.floats(),
        st.text(max_size=30),
        st.sampled_from(["^[0-9]{4444444444}$", "(", "|", "\r", "utf-8", "CR", "auto", "sim:"]),
    ),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=8,
)


def _plausible(tp: Any) -> st.SearchStrategy[Any]:
    """Values of roughly the right type, so the fuzz reaches the value checks."""
    if tp is bool:
        return st.booleans()
    if tp is int:
        return st.integers(min_value=-(2**63), max_value=2**63 - 1)
    if tp is float:
        return st.floats() | st.integers(min_value=-(10**6), max_value=10**6)
    if get_origin(tp) is tuple:
        return st.lists(st.text(max_size=10), max_size=3)
    args = [a for a in get_args(tp) if isinstance(a, str)]
    if args:
        return st.sampled_from(args) | st.text(max_size=5)
    return st.text(max_size=40) | st.sampled_from(["|", "^", "\r", "a" * 300, "^[0-9]+$"])


@st.composite
def _site_tables(draw: st.DrawFn) -> dict[str, Any]:
    fields = _fields()
    chosen = draw(st.lists(st.sampled_from(fields), max_size=8))
    data: dict[str, Any] = {}
    for key, tp in chosen:
        section, name = key.split(".")
        value = draw(_plausible(tp) | _ANY_VALUE.filter(lambda v: v is not None))
        if section == "routing":
            data.setdefault("routing", []).append({name: value})
        else:
            data.setdefault(section, {})[name] = value
    if draw(st.booleans()):
        data[draw(st.text(min_size=1, max_size=6))] = draw(
            _ANY_VALUE.filter(lambda v: v is not None)
        )
    return data


def _only_config_errors(text: str) -> None:
    try:
        cfg = config.parse(text, "fuzz.toml")
    except ConfigError as exc:
        assert str(exc).startswith("fuzz.toml: ")
        assert "\n" not in str(exc)
    else:
        assert isinstance(cfg, config.Config)


def _dump(data: dict[str, Any]) -> str | None:
    try:
        return tomli_w.dumps(_drop_none(data))
    except (TypeError, ValueError):
        return None


def _drop_none(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _drop_none(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_drop_none(v) for v in value if v is not None]
    return value


FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FUZZ
@given(_site_tables())
def test_generated_site_configurations_raise_only_config_errors(data: dict[str, Any]) -> None:
    text = _dump(data)
    if text is not None:
        _only_config_errors(text)


@FUZZ
@given(st.text(max_size=200))
def test_any_text_raises_only_config_errors(text: str) -> None:
    _only_config_errors(text)


@pytest.mark.slow
@pytest.mark.timeout(3600)
@settings(max_examples=20_000, deadline=None, suppress_health_check=list(HealthCheck))
@given(_site_tables())
def test_generated_site_configurations_raise_only_config_errors_long(data: dict[str, Any]) -> None:
    text = _dump(data)
    if text is not None:
        _only_config_errors(text)
