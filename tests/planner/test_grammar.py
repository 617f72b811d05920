"""The override grammar: each form a Hydra user types, read into typed values, and written back unchanged."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tkplan.errors import ConfigError
from tkplan.planner._grammar import (
    NO_VALUE,
    ChoiceSweep,
    ParsedOverride,
    RangeSweep,
    format_override,
    format_value,
    parse_override,
)
from tkplan.planner._yaml import parse_value


def value_of(text: str):
    return parse_override(f"k={text}", "cli:arg 1").value


class TestForms:
    @pytest.mark.parametrize(("word", "parsed"), [
        ("a.b=1", ParsedOverride("=", ("a", "b"), 1)),
        ("+a.b=x", ParsedOverride("+", ("a", "b"), "x")),
        ("++a.b=null", ParsedOverride("++", ("a", "b"), None)),
        ("~a.b", ParsedOverride("~", ("a", "b"))),
        ("~a.b=3", ParsedOverride("~", ("a", "b"), 3)),
        ("a=", ParsedOverride("=", ("a",), "")),
    ])
    def test_each_operation(self, word, parsed):
        assert parse_override(word, "cli:arg 1") == parsed

    @pytest.mark.parametrize(("text", "value"), [
        ("'a,b'", "a,b"), ('"x = y"', "x = y"), ("'it\\'s'", "it's"), ("'64'", "64"),
        ("  two words  ", "two words"), ("builtin:diabetes", "builtin:diabetes"), ("a=b", "a=b"),
        ("[1, 2.5, true, null, 'q,x']", [1, 2.5, True, None, "q,x"]), ("[]", []), ("{}", {}),
        ("{a: 1, 'b c': [x, {d: ~}]}", {"a": 1, "b c": ["x", {"d": None}]}),
        ("${env:USER,nobody}", "${env:USER,nobody}"), ("${a.b}-${c}", "${a.b}-${c}"),
    ])
    def test_values(self, text, value):
        assert value_of(text) == value

    @pytest.mark.parametrize(("text", "sweep"), [
        ("a,b,c", ChoiceSweep(("a", "b", "c"))),
        ("1, 2", ChoiceSweep((1, 2))),
        ("choice([1, 2], 'x,y')", ChoiceSweep(([1, 2], "x,y"))),
        ("range(1, 10, 3)", RangeSweep(1, 10, 3)),
        ("range(0.5, 2, 0.5)", RangeSweep(0.5, 2, 0.5)),
        ("${env:A,1},${env:B,2}", ChoiceSweep(("${env:A,1}", "${env:B,2}"))),
    ])
    def test_sweeps(self, text, sweep):
        assert value_of(text) == sweep

    def test_a_range_holds_what_python_range_holds(self):
        assert value_of("range(1, 10, 3)").values() == (1, 4, 7)
        assert value_of("range(5, 0, -2)").values() == (5, 3, 1)


class TestErrors:
    @pytest.mark.parametrize(("word", "message"), [
        ("k=[1, 2", "cannot read value '[1, 2': expected ',' or ']', found the end at column 6"),
        ("k='open", "cannot read value \"'open\": unclosed quote ' at column 1"),
        ("k=[1,,2]", "cannot read value '[1,,2]': expected a value, found ',' at column 4"),
        ("k={a: 1, a: 2}", "cannot read value '{a: 1, a: 2}': duplicate key 'a' at column 8"),
        ("k=f(1)", "cannot read value 'f(1)': unknown function f() at column 1"),
        ("k=range(1, x)", "cannot read value 'range(1, x)': range() takes 2 or 3 numbers at column 1"),
        ("k=range(3, 1)", "cannot read value 'range(3, 1)': range(3, 1, 1) holds no value at column 1"),
        ("k=${a", "cannot read value '${a': unclosed ${ at column 1"),
        ("k=[1] x", "cannot read value '[1] x': unexpected 'x' at column 5"),
        ("+k", "bad override '+k': +key needs =value"),
        ("a..b=1", "bad override 'a..b=1': expected key.path=value"),
    ])
    def test_a_bad_word_says_what_and_where(self, word, message):
        with pytest.raises(ConfigError) as info:
            parse_override(word, "cli:arg 3")
        (problem,) = info.value.problems
        assert (problem.origin, problem.message) == ("cli:arg 3", message)

    def test_deep_nesting_is_refused_not_a_crash(self):
        with pytest.raises(ConfigError, match="more than 100 nested brackets"):
            value_of("[" * 5000 + "]" * 5000)


class TestScalars:
    @pytest.mark.parametrize("text", [
        "64", "-7", "+7", "0o17", "0x1F", "1_000", "010", "0.03", "1e3", "1.0e-6", ".inf", "-.Inf", "true", "TRUE",
        "False", "~", "null", "Null", "yes", "no", "on", "2024-01-01", "12:30", "auto", "1.", ".5", "x1",
    ])
    def test_a_primitive_means_what_it_means_in_a_profile(self, text):
        """An unquoted value is typed as YAML 1.2 core reads it, so ``64`` on the command line is ``64`` in a file."""
        ours, yaml = value_of(text), parse_value(text, "cli:arg 1")
        assert (ours, type(ours)) == (yaml, type(yaml))

    @given(st.text(alphabet="0123456789+-._eExoInfaNtrulsF", min_size=1, max_size=8))
    def test_number_like_primitives_agree_with_yaml(self, text):
        try:
            yaml = parse_value(text, "cli:arg 1")
        except ConfigError:
            return
        if isinstance(yaml, (dict, list)) or text != text.strip():
            return
        ours = value_of(text)
        if isinstance(yaml, float) and math.isnan(yaml):
            assert math.isnan(ours)
        else:
            assert (ours, type(ours)) == (yaml, type(yaml))


keys = st.text(alphabet=st.characters(categories=("L", "N")), min_size=1, max_size=6)
scalars = (st.none() | st.booleans() | st.integers(-10**12, 10**12)
           | st.floats(allow_nan=False, allow_infinity=True) | st.text(max_size=12))
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(keys, inner, max_size=4),
                      max_leaves=12)
sweeps = (st.lists(values, min_size=2, max_size=4).map(lambda v: ChoiceSweep(tuple(v)))
          | st.tuples(st.integers(-50, 50), st.integers(-50, 50), st.integers(1, 7)).filter(
              lambda t: t[0] < t[1]).map(lambda t: RangeSweep(*t)))
paths = st.lists(st.text(alphabet="abcxyz_0123456789", min_size=1, max_size=5), min_size=1, max_size=4).map(tuple)


class TestRoundTrip:
    @given(values)
    def test_a_written_value_reads_back_equal(self, value):
        assert value_of(format_value(value)) == value

    @given(sweeps)
    def test_a_written_sweep_reads_back_equal(self, sweep):
        assert value_of(format_value(sweep)) == sweep

    @given(st.sampled_from(["=", "+", "++", "~"]), paths, values | sweeps)
    def test_a_written_override_reads_back_equal(self, op, path, value):
        override = ParsedOverride(op, path, value)
        assert parse_override(format_override(override), "cli:arg 1") == override

    @given(paths)
    def test_a_bare_removal_reads_back(self, path):
        assert parse_override(format_override(ParsedOverride("~", path)), "cli:arg 1").value is NO_VALUE
