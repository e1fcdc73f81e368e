"""The quick comparison of card and item patterns of the common shape (kiosk/config.py,
`_plainly_distinct`) gives the verdict the patterns' automata give, so reading the
configuration without the automata at start refuses and warns about exactly what it did."""

from __future__ import annotations

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from kiosk import config

_LITERALS = list("ALVZaz09-_")
_CLASSES = [
    "[0-9]",
    "[A-Z]",
    "[0-9A-Z-]",
    "[A-F]",
    "[0-5]",
    "[5-9]",
    "[a-z_]",
    "[-A-C]",
    "[A-Za-z]",
    "[LV]",
    "[0-9_]",
    "[V-Z0]",
]


@st.composite
def _counts(draw: st.DrawFn) -> str:
    kind = draw(st.sampled_from(["", "?", "{n}", "{m,n}"]))
    most = draw(st.integers(0, 6))
    least = draw(st.integers(0, most))
    return {"": "", "?": "?", "{n}": f"{{{most}}}", "{m,n}": f"{{{least},{most}}}"}[kind]


@st.composite
def _plain_patterns(draw: st.DrawFn) -> str:
    atoms = draw(
        st.lists(
            st.tuples(st.sampled_from(_LITERALS + _CLASSES), _counts()).map("".join),
            max_size=4,
        )
    )
    start = draw(st.sampled_from(["^", "", "\\A"]))
    end = draw(st.sampled_from(["$", "\\Z"]))
    return start + "".join(atoms) + end


def _whole_verdict(card: str, item: str) -> config._PatternVerdict:
    return config._compare_patterns.__wrapped__(card, item)  # past the cache


@settings(max_examples=400, deadline=None)
@given(card=_plain_patterns(), item=_plain_patterns())
@example(card="^LV[0-9]{4,12}$", item="^[0-9]{3,32}$")  # the benchmarks' site
@example(card="^[0-9A-Z]{4,20}$", item="^[0-9A-Z-]{3,32}$")  # the defaults: they overlap
@example(card="^A?B$", item="^B$")  # met only by leaving a position out
@example(card="^[0-9]{2,3}$", item="^[0-9]{4}$")  # the same characters, other lengths
@example(card="^[-A-C]$", item="^-$")  # a class's own "-"
def test_quick_comparison_agrees_with_the_automata(card: str, item: str) -> None:
    slow = config._automata_verdict(card, item)
    assert config._plainly_distinct(card, item) == (slow == config._PatternVerdict())
    assert _whole_verdict(card, item) == slow


@pytest.mark.parametrize(
    "card,item",
    [
        ("^LV[0-9]{4}", "^[0-9]{3}$"),  # no end: anything may follow
        ("^L.[0-9]{4}$", "^[0-9]{3}$"),
        ("^LV[0-9]+$", "^[0-9]{3}$"),
        ("^LV[0-9]{4,}$", "^[0-9]{3}$"),
        ("^(LV|LT)[0-9]{4}$", "^[0-9]{3}$"),
        ("^LV[^0-9]{4}$", "^[0-9]{3}$"),
        (r"^LV\d{4}$", "^[0-9]{3}$"),
        ("^LV[0-9]{4}?$", "^[0-9]{3}$"),  # a lazy count
        ("^LV{x}$", "^[0-9]{3}$"),  # a brace that is a letter to re
        ("^[A-B-C]$", "^[0-9]{3}$"),  # a "-" between ranges
        ("^[0-9]{200}[A-Z]{100}$", "^[0-9]{3}$"),  # longer than a SIP2 field
    ],
)
def test_other_shapes_are_left_to_the_automata(card: str, item: str) -> None:
    assert not config._plainly_distinct(card, item)
    assert _whole_verdict(card, item) == config._automata_verdict(card, item)


def test_a_site_with_distinct_patterns_starts_without_the_automata() -> None:
    # The point of the quick comparison: the automata library stays unloaded at start.
    assert config._plainly_distinct("^LV[0-9]{4,12}$", "^[0-9]{3,32}$")
    assert config._plainly_distinct("^[A-Z][0-9A-Z]{5,13}$", "^[0-9]{6,14}$")
