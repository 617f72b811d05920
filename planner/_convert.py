"""The one cattrs converter that turns plan and hardware objects into JSON-ready data and back."""

from __future__ import annotations

import marshal
import types
from collections.abc import Callable, Mapping
from typing import Any

import attrs
import cattrs
import cattrs.gen

__all__ = ["OMIT_IF_DEFAULT", "JsonMap", "converter", "exact_key", "first_error", "freeze", "freeze_shared",
           "make_converter", "thaw"]

JsonMap = Mapping[str, Any]
"""A read-only mapping of JSON-ready data (config, params, env): frozen in objects, plain in files."""


def freeze(value: Any) -> Any:
    """Return ``value`` with every dict made a read-only mapping and every list a tuple.

    A read-only mapping (``types.MappingProxyType``) is returned as it is: tkplan makes them only here, of
    frozen parts, so a value frozen once (by the converter's structure hook, say) is not copied again by a
    field's ``converter=freeze``. A tuple whose items are all frozen is returned as it is, too.
    """
    kind = type(value)
    if kind is types.MappingProxyType:
        return value
    if kind is dict:
        return types.MappingProxyType({k: freeze(v) for k, v in value.items()})
    if kind is list:
        return tuple(freeze(v) for v in value)
    if kind is tuple:
        items = tuple(freeze(v) for v in value)
        return value if all(a is b for a, b in zip(items, value, strict=True)) else items
    if isinstance(value, Mapping):
        return types.MappingProxyType({k: freeze(v) for k, v in value.items()})
    return value


def freeze_shared(value: Any, seen: dict[bytes, Any]) -> Any:
    """`freeze` ``value``, taking from ``seen`` every part already frozen from the same data, and adding its own.

    Many plans read together (a sweep file's) hold mostly the same configuration, provenance and steps: each
    such part is frozen once and shared. "The same" is exact (`exact_key`), so ``1``, ``1.0`` and ``true``
    are never taken for each other, as ``==`` would.
    """
    kind = type(value)
    if kind is not dict and kind is not list:
        return freeze(value)
    key = exact_key(value)
    frozen = seen.get(key)
    if frozen is None:
        if kind is dict:
            frozen = types.MappingProxyType({k: freeze_shared(v, seen) for k, v in value.items()})
        else:
            frozen = tuple(freeze_shared(v, seen) for v in value)
        seen[key] = frozen
    return frozen


def exact_key(value: Any) -> bytes:
    """A key of JSON-ready data that two values share only when they are equal and of the same types throughout.

    ``marshal`` writes each value's type with it (``True``, ``1`` and ``1.0`` differ) and keeps mapping order,
    so mappings in another order only get another key. Version 2 writes no back-references, so equal data
    gets one key however its objects are shared in memory.
    """
    return marshal.dumps(value, 2)


def thaw(value: Any, leaf: Callable[[Any], Any] | None = None) -> Any:
    """Return ``value`` as plain JSON-ready data: mappings become dicts, sequences lists, and every other value
    ``leaf(value)`` when ``leaf`` is given (a numpy scalar's ``item()``, a non-finite float's text)."""
    kind = type(value)
    if kind is dict or kind is types.MappingProxyType:
        return {k: thaw(v, leaf) for k, v in value.items()}
    if kind is list or kind is tuple:
        return [thaw(v, leaf) for v in value]
    if isinstance(value, Mapping):
        return {k: thaw(v, leaf) for k, v in value.items()}
    return value if leaf is None else leaf(value)


def make_converter(shared: dict[bytes, Any] | None = None) -> cattrs.Converter:
    """Build the converter: unknown keys are errors, frozen JSON payloads round-trip as plain data.

    Args:
        shared: when given, the payloads it structures are frozen with `freeze_shared` into this memo, so
            the parts that many structured objects have in common are frozen once and shared.
    """
    conv = cattrs.Converter(forbid_extra_keys=True)

    def is_json_map(t: Any) -> bool:
        return t == JsonMap or t is types.MappingProxyType

    conv.register_unstructure_hook_func(is_json_map, thaw)
    if shared is None:
        conv.register_structure_hook_func(is_json_map, lambda value, _: freeze(value))
    else:
        conv.register_structure_hook_func(is_json_map, lambda value, _: freeze_shared(value, shared))
    conv.register_unstructure_hook_factory(_omits_defaults, lambda cls: _omitting(cls, conv))
    from cattrs.gen import make_dict_unstructure_fn, override

    from tkplan.planner._merge import Setting

    # a setting without references stays five keys in plan.json: `written` and `via` only where used
    omit = override(omit_if_default=True)
    conv.register_unstructure_hook(Setting, make_dict_unstructure_fn(Setting, conv, written=omit, via=omit))
    return conv


def _omitting(cls: Any, conv: cattrs.Converter) -> Any:
    """The unstructure function of ``cls`` that leaves out its `OMIT_IF_DEFAULT` fields when at their default."""
    overrides: dict[str, Any] = {f.name: cattrs.gen.override(omit_if_default=True) for f in attrs.fields(cls)
                                 if f.metadata.get(OMIT_IF_DEFAULT)}
    return cattrs.gen.make_dict_unstructure_fn(cls, conv, **overrides)


OMIT_IF_DEFAULT = "omit_if_default"  # tkplan: ignore[constant]  the field metadata key
"""Field metadata: a field at its default is left out of files, so that adding it changes no existing plan."""


def _omits_defaults(cls: Any) -> bool:
    return attrs.has(cls) and any(f.metadata.get(OMIT_IF_DEFAULT) for f in attrs.fields(cls))


converter = make_converter()


def first_error(exc: BaseException) -> str:
    """The message of the innermost first error of a cattrs exception group: what a user should read."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    return str(exc)
