"""References between keys and to the environment, resolved on the merged layers."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tkplan.planner._merge import Hop, merge_layers
from tkplan.planner._refs import MAX_DEPTH, resolve_references
from tkplan.planner._sources import Layer
from tkplan.planner._yaml import Document, load_document


def layer(name: str, text: str) -> Layer:
    """A layer from YAML text, positions included, as a profile file would give it."""
    return Layer(name, "file", f"{name}.yaml", "0" * 64, load_document(text, f"{name}.yaml"))


def resolve(*texts: str, env: dict[str, str] | None = None, hermetic: bool = False, typed=lambda path, text: text):
    config, provenance = merge_layers(layer(f"l{i}", t) for i, t in enumerate(texts, 1))
    return resolve_references(config, provenance, env or {}, hermetic=hermetic, typed=typed)


def problems(resolution):
    return [(p.path, p.origin, p.message, p.hint) for p in resolution.problems]


class TestValues:
    def test_a_whole_value_reference_keeps_the_type_of_what_it_refers_to(self):
        r = resolve("a: {n: 3, l: [1, 2], m: {x: true}, f: 0.5}\n"
                    "b: {n: '${a.n}', l: '${a.l}', m: '${a.m}', f: '${a.f}'}")
        assert r.config["b"] == {"n": 3, "l": [1, 2], "m": {"x": True}, "f": 0.5}
        assert r.problems == ()

    def test_a_reference_inside_a_string_is_replaced_by_the_text_of_the_value(self):
        r = resolve("model: {name: lgbm, leaves: 64, fast: true, cap: null}\n"
                    "run: {name: '${model.name}-${model.leaves}-${model.fast}-${model.cap}'}")
        assert r.config["run"]["name"] == "lgbm-64-true-null"

    def test_the_highest_layer_is_the_one_referred_to(self):
        r = resolve("a: 1\nb: '${a}'", "a: 2", "c: {d: '${a}'}")
        assert (r.config["b"], r.config["c"]["d"]) == (2, 2)

    def test_a_leading_dot_refers_to_a_sibling_and_two_dots_to_the_parent_mapping(self):
        r = resolve("f: {size: 8, batch: '${.size}', inner: {twice: '${..size}'}}")
        assert r.config["f"]["batch"] == 8 and r.config["f"]["inner"]["twice"] == 8

    def test_a_reference_to_an_item_of_a_list(self):
        assert resolve("seeds: [7, 8]\nfirst: '${seeds.1}'").config["first"] == 8

    def test_an_escaped_reference_is_text(self):
        assert resolve(r"a: 'cost \${5}'").config["a"] == "cost ${5}"

    def test_references_inside_lists(self):
        r = resolve("a: 5\nb: ['${a}', 'x-${a}']")
        assert r.config["b"] == [5, "x-5"]
        assert r.provenance["b"][-1].written == ["${a}", "x-${a}"]

    def test_a_mapping_referred_to_has_its_own_references_resolved(self):
        r = resolve("n: 4\nsrc: {a: '${n}'}\ndst: '${src}'")
        assert r.config["dst"] == {"a": 4}

    def test_the_input_is_not_changed(self):
        config, provenance = merge_layers([layer("l", "a: 1\nb: '${a}'")])
        resolve_references(config, provenance, {})
        assert config["b"] == "${a}" and provenance["b"][-1].value == "${a}"


class TestProvenance:
    def test_a_two_step_chain_is_recorded_with_where_each_key_was_set(self):
        r = resolve("vars: {b: z}", "vars: {a: '${vars.b}'}\nrun: {name: '${vars.a}-x'}")
        setting = r.provenance["run.name"][-1]
        assert (setting.value, setting.written, setting.where) == ("z-x", "${vars.a}-x", "l2.yaml:2:7")
        assert setting.via == (Hop("vars.a", "${vars.b}", "l2", "l2.yaml:1:8"), Hop("vars.b", "z", "l1", "l1.yaml:1:8"))

    def test_an_environment_variable_is_a_step_of_the_chain(self):
        r = resolve("who: ${env:TEAM}", env={"TEAM": "quant"})
        assert r.provenance["who"][-1].via == (Hop("env:TEAM", "quant", "env:TEAM", "env:TEAM"),)


class TestEnvironment:
    def test_a_variable_is_read_and_recorded(self):
        r = resolve("a: ${env:TEAM}\nb: ${oc.env:TEAM}-x", env={"TEAM": "quant", "OTHER": "1"})
        assert (r.config, r.env_used) == ({"a": "quant", "b": "quant-x"}, {"TEAM": "quant"})

    def test_a_default_stands_in_for_an_unset_variable_and_nothing_is_recorded(self):
        r = resolve("a: '${env:TEAM,research}'\nb: '${env:EMPTY,}'")
        assert (r.config, r.env_used) == ({"a": "research", "b": ""}, {})

    def test_a_whole_value_variable_is_typed_for_where_it_lands(self):
        r = resolve("threads: ${env:N}\nname: ${env:N}-x", env={"N": "4"},
                    typed=lambda path, text: int(text) if path == ("threads",) else text)
        assert r.config == {"threads": 4, "name": "4-x"}

    def test_an_unset_variable_without_default(self):
        assert problems(resolve("a: ${env:TEAM}")) == [
            ("a", "l1.yaml:1:1", "environment variable TEAM is not set",
             "set it, or give a default: ${env:TEAM,value}")]

    def test_hermetic_ignores_the_environment(self):
        r = resolve("a: ${env:TEAM}\nb: '${env:TEAM,solo}'", env={"TEAM": "quant"}, hermetic=True)
        assert problems(r) == [("a", "l1.yaml:1:1", "${env:TEAM} reads the environment, which --hermetic ignores",
                                "give it a default: ${env:TEAM,value}")]
        assert r.config["b"] == "solo" and r.env_used == {}


class TestErrors:
    def test_a_missing_key_with_did_you_mean(self):
        assert problems(resolve("run: {name: x}\nb: '${run.nmae}'")) == [
            ("b", "l1.yaml:2:1", "${run.nmae} refers to a missing key: run.nmae does not exist",
             "did you mean 'name'?")]

    def test_a_cycle_lists_its_keys_once(self):
        r = resolve("a: '${b}'\nb: '${c}'\nc: '${a}'\nd: '${a}'")
        assert problems(r) == [("a", "l1.yaml:1:1", "reference cycle: a → b → c → a",
                                "break the cycle: give one of these keys a value")]

    def test_a_key_referring_to_itself(self):
        assert problems(resolve("a: {b: '${a}'}"))[0][2] == "reference cycle: a.b → a → a.b"

    def test_references_nested_too_deep(self):
        chain = "\n".join(f"k{i}: '${{k{i + 1}}}'" for i in range(MAX_DEPTH + 2)) + f"\nk{MAX_DEPTH + 2}: 1"
        (problem,) = resolve(chain).problems
        assert problem.path == "k0"
        assert problem.message.startswith(f"references nested too deep (more than {MAX_DEPTH}): k0 → k1")

    @pytest.mark.parametrize(("text", "message"), [
        ("a: '${x.y'", "unclosed reference in '${x.y'"),
        ("a: '${x.${y}}'", "nested reference in '${x.${y}}'"),
        ("a: '${oc.select:x}'", "unknown resolver 'oc.select' in ${oc.select:x}"),
        ("a: '${}'", "bad reference ${}"),
        ("m: {x: 1}\na: 'v-${m}'", "${m} is a mapping, which cannot be placed inside a string"),
        ("a: '${...x}'", "${...x} climbs above the top level"),
        ("a: '${env:1X}'", "bad variable name '1X' in ${env:1X}"),
    ])
    def test_a_malformed_reference(self, text, message):
        assert [p.message for p in resolve(text).problems] == [message]

    def test_every_problem_is_reported_at_once(self):
        r = resolve("a: '${nope}'\nb: '${c}'\nc: '${b}'\nd: '${env:UNSET_X}'\ne: '${a}'")
        assert [p.path for p in r.problems] == ["a", "b", "d"]


KEYS = [f"x{i}" for i in range(5)]
leaf = st.one_of(st.integers(0, 9), st.sampled_from(KEYS).map(lambda k: f"${{s.{k}}}"),
                 st.sampled_from(KEYS).map(lambda k: f"v-${{s.{k}}}"))
layer_data = st.dictionaries(st.sampled_from(KEYS), leaf, min_size=1, max_size=4)


def model(flat: dict[str, object]) -> dict[str, object]:
    """What each key should resolve to, by plain recursion on the last-writer-wins values; None = unresolvable."""
    def value(key: str, seen: tuple[str, ...]) -> object:
        if key not in flat or key in seen:
            return None
        raw = flat[key]
        if not isinstance(raw, str):
            return raw
        target = raw.split("${s.", 1)[1].rstrip("}")
        inner = value(target, (*seen, key))
        if inner is None:
            return None
        return inner if raw.startswith("${") else f"v-{inner}"
    return {key: value(key, ()) for key in flat}


def resolve_layers(datas):
    layers = [Layer(f"l{i}", "file", f"l{i}.yaml", "0" * 64, Document({"s": d}, {}, f"l{i}.yaml"))
              for i, d in enumerate(datas)]
    config, provenance = merge_layers(layers)
    return resolve_references(config, provenance, {})


class TestLayerOrder:
    @given(st.lists(layer_data, min_size=1, max_size=4))
    def test_resolution_follows_the_last_writer_of_every_key(self, datas):
        """Whatever the layers, each key resolves as its highest layer's value does: references see the merge."""
        flat: dict[str, object] = {}
        for d in datas:
            flat.update(d)
        expected = model(flat)
        r = resolve_layers(datas)
        for key, value in expected.items():
            if value is None:
                assert "${" in str(r.config["s"][key])
            else:
                assert r.config["s"][key] == value
        assert bool(r.problems) == (None in expected.values())

    @given(st.lists(layer_data, min_size=1, max_size=4))
    def test_layers_that_set_different_keys_resolve_the_same_in_any_order(self, datas):
        seen: set[str] = set()
        disjoint = []
        for d in datas:
            d = {k: v for k, v in d.items() if k not in seen}
            seen |= set(d)
            if d:
                disjoint.append(d)
        first = resolve_layers(disjoint)
        for order in itertools.islice(itertools.permutations(disjoint), 6):
            other = resolve_layers(list(order))
            assert other.config == first.config
            assert len(other.problems) == len(first.problems)  # one per broken chain, wherever resolving starts
