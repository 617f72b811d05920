"""Profiles and override values load as YAML 1.2 core data: what a value means does not depend on the parser's mood."""

from __future__ import annotations

import math

import pytest

from tkplan.errors import ConfigError
from tkplan.planner._yaml import load_document, parse_value


class TestScalars:
    @pytest.mark.parametrize(("text", "value"), [
        ("64", 64), ("-7", -7), ("+7", 7), ("0o17", 15), ("0x1F", 31), ("1_000", 1000), ("010", 10),
        ("0.03", 0.03), ("1e3", 1000.0), ("1.0e-6", 1e-6), (".inf", math.inf), ("-.Inf", -math.inf),
        ("true", True), ("TRUE", True), ("False", False),
        ("~", None), ("null", None), ("Null", None),
    ])
    def test_core_schema_values(self, text, value):
        assert parse_value(text, "cli:arg 1") == value
        assert type(parse_value(text, "cli:arg 1")) is type(value)

    @pytest.mark.parametrize("text", ["yes", "no", "on", "off", "y", "2024-01-01", "12:30", "auto"])
    def test_yaml_1_1_spellings_and_timestamps_stay_text(self, text):
        """``yes`` is not a boolean in YAML 1.2, a date is not converted: the profile means what it says."""
        assert parse_value(text, "cli:arg 1") == text

    def test_nan_is_a_float(self):
        assert math.isnan(parse_value(".nan", "cli:arg 1"))

    def test_explicit_core_tags(self):
        assert parse_value("[!!str 3, !!int '4', !!float 5, !<tag:yaml.org,2002:str> x]",
                           "cli:arg 1") == ["3", 4, 5.0, "x"]

    def test_a_yaml_1_1_directive_does_not_change_the_rules(self):
        document = load_document("%YAML 1.1\n---\nvalue: yes\noctal: 010\n", "old.yaml")
        assert document.data == {"value": "yes", "octal": 10}


class TestPositions:
    def test_every_key_and_item_is_located(self):
        document = load_document("run:\n  name: x\nseeds: [1,\n  2]\n", "p.yaml")
        assert dict(document.positions) == {("run",): (1, 1), ("run", "name"): (2, 3), ("seeds",): (3, 1),
                                            ("seeds", 0): (3, 9), ("seeds", 1): (4, 3)}
        assert document.where(("seeds", 1)) == "p.yaml:4:3"
        assert document.where(("run", "name", "deeper")) == "p.yaml:2:3"

    def test_a_bad_int_tag_is_a_clear_error(self):
        with pytest.raises(ConfigError, match=r"^p\.yaml:1:4: tag 'tag:yaml\.org,2002:python/int' is not allowed"):
            load_document("a: !!python/int 3\n", "p.yaml")
