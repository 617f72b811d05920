"""Load YAML safely into plain data, keeping the line and column of every key and value.

This is the one entry point for every YAML file tkplan reads (profiles, the project file, hardware
specs, the audit's profiles): only regular files are read, never blocking on a FIFO or device; only
the YAML 1.2 core types are accepted (mappings, sequences, strings, numbers, booleans, null); any other
tag (``!!python/object``, ``!custom``) is refused; documents are bounded in size, in nesting depth
(checked on the parser's event stream before the recursive composer builds anything, so no input can
exhaust the stack) and in nodes after alias expansion (no "billion laughs"); duplicate keys are errors.
Positions are 1-based.
"""

from __future__ import annotations

import errno
import functools
import os
import stat
from collections.abc import Iterator, Mapping
from typing import Any

import attrs

from tkplan.errors import ConfigError, Problem

__all__ = ["MAX_DEPTH", "Document", "dump_yaml", "load_bytes", "load_document", "load_path", "parse_value", "read_file",
           "unreadable_hint"]

MAX_BYTES = 4 * 2**20  # tkplan: ignore[constant]  a profile larger than this is not a profile
MAX_NODES = 200_000  # tkplan: ignore[constant]  bound on nodes after alias expansion
INT_BOUND = 2**63  # tkplan: ignore[constant]  integers are signed 64-bit, as in JSON readers and numpy
MAX_DEPTH = 32  # tkplan: ignore[constant]  bound on nesting (profiles nest 4-6 levels); keeps every recursion shallow

_CORE = "tag:yaml.org,2002:"
_SCALARS = {"null", "bool", "int", "float", "str", "timestamp"}

Path_ = tuple[str | int, ...]


@attrs.frozen
class Document:
    """A loaded YAML document: its data and where each key path sits in the source.

    Attributes:
        data: plain data (dict, list, str, int, float, bool, None).
        positions: key path → (line, column), 1-based, for every mapping key and sequence item.
        source: the name used in messages (a display path, ``env:NAME`` or ``cli:arg N``).
    """

    data: Any
    positions: Mapping[Path_, tuple[int, int]]
    source: str

    def where(self, path: Path_) -> str:
        """Return ``source:line:col`` for ``path`` (or its nearest located parent)."""
        while path and path not in self.positions:
            path = path[:-1]
        if path in self.positions:
            line, col = self.positions[path]
            return f"{self.source}:{line}:{col}"
        return self.source


def load_path(path: str | os.PathLike[str], source: str | None = None) -> Document:
    """Read and load the YAML file at ``path``; ``source`` names it in messages.

    Raises:
        ConfigError: the file is unreadable, not a regular file, too large, not UTF-8, malformed or unsafe.
    """
    source = source or os.fspath(path)
    try:
        raw = read_file(path)
    except OSError as exc:
        raise ConfigError([Problem(f"cannot read file: {exc.strerror or exc}", origin=source,
                                   hint=unreadable_hint(exc))]) from None
    return load_bytes(raw, source)


def dump_yaml(data: Any) -> str:
    """Plain data (dicts, lists, scalars) as block YAML, keys in their order: what ``tkplan probe`` and the audit's
    YAML report print."""
    import io

    from ruamel.yaml import YAML

    yaml = YAML(typ="safe", pure=True)
    yaml.default_flow_style = False
    yaml.sort_base_mapping_type_on_output = False  # type: ignore[assignment]  # typed None, takes a bool
    out = io.StringIO()
    yaml.dump(data, out)
    return out.getvalue()


def read_file(path: str | os.PathLike[str]) -> bytes:
    """Read the regular file at ``path``, at most ``MAX_BYTES + 1`` bytes, without ever blocking.

    The file is opened non-blocking and checked on the open descriptor, so a FIFO (which would wait for
    a writer forever), a device or a directory is refused before anything is read.

    Raises:
        OSError: missing, unreadable, a symlink loop, or not a regular file (``strerror`` says which).
    """
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    try:
        mode = os.fstat(fd).st_mode
        if stat.S_ISDIR(mode):
            raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR))
        if not stat.S_ISREG(mode):
            raise OSError(errno.EINVAL, f"not a regular file but {_file_kind(mode)}; only regular files are read")
        chunks, size = [], 0
        while size <= MAX_BYTES:
            chunk = os.read(fd, MAX_BYTES + 1 - size)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


def unreadable_hint(exc: OSError) -> str:
    """What to do about a file `read_file` refused, where there is more to say than its ``strerror``."""
    return "the link leads back to itself; point it at a YAML file" if exc.errno == errno.ELOOP else ""


def _file_kind(mode: int) -> str:
    kinds = ((stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
             (stat.S_ISSOCK, "a socket"))
    return next((name for test, name in kinds if test(mode)), "a special file")


def load_bytes(raw: bytes, source: str) -> Document:
    """Load a YAML mapping from the bytes of a file.

    Raises:
        ConfigError: too large, not UTF-8, malformed or unsafe.
    """
    if len(raw) > MAX_BYTES:
        raise ConfigError([Problem(f"file larger than {MAX_BYTES // 2**20} MiB; not a profile", origin=source)])
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError([Problem(f"not UTF-8 text (byte {exc.start})", origin=source)]) from None
    return load_document(text, source)


def load_document(text: str, source: str, *, mapping: bool = True) -> Document:
    """Load one YAML document from ``text``.

    Args:
        text: the YAML source.
        source: the name used in messages and positions.
        mapping: require the top level to be a non-empty mapping (profiles, spec files).

    Raises:
        ConfigError: malformed YAML, a refused tag, a duplicate key, too many nodes, or an empty
            or non-mapping document where a mapping is required.
    """
    constructor, node = _compose(text, source)
    if node is None:
        if mapping:
            raise ConfigError([Problem("empty document; a profile must be a YAML mapping", origin=source,
                                       hint="write at least one key, or remove the file")])
        return Document(None, {}, source)
    builder = _Builder(source, constructor)
    data = builder.build(node, ())
    if mapping and not isinstance(data, dict):
        line, col = node.start_mark.line + 1, node.start_mark.column + 1
        raise ConfigError([Problem(f"top level must be a mapping of keys, got {_kind(data)}",
                                   origin=f"{source}:{line}:{col}")])
    return Document(data, builder.positions, source)


def parse_value(text: str, source: str) -> Any:
    """Parse an override value as a YAML scalar or flow collection (``64``, ``[1, 2]``, ``{a: 1}``).

    Raises:
        ConfigError: the value is malformed or unsafe; the problem names ``source`` (``cli:arg 2``,
            ``env:NAME``) and the value, not a line and column inside the value.
    """
    if text.strip() == "":
        return ""
    try:
        return load_document(text, source, mapping=False).data
    except ConfigError as exc:
        raise ConfigError([attrs.evolve(p, message=f"cannot read value {_clip(text)}: {p.message}", origin=source)
                           for p in exc.problems]) from None


def _compose(text: str, source: str) -> tuple[Any, Any]:
    """Compose ``text`` into a node graph (libyaml's C parser when available) and a YAML 1.2 constructor."""
    from ruamel.yaml.error import MarkedYAMLError, YAMLError

    try:
        _check_depth(text, source)
        return _constructor(), _parse(text)
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{source}:{mark.line + 1}:{mark.column + 1}" if mark else source
        context = exc.context
        opened = exc.context_mark
        if context and opened and mark and (opened.line, opened.column) != (mark.line, mark.column):
            context += f" (opened at line {opened.line + 1}, column {opened.column + 1})"  # e.g. an unclosed [
        what = " ".join(filter(None, [context, exc.problem]))
        raise ConfigError([Problem(f"malformed YAML: {what}", origin=where)]) from None
    except YAMLError as exc:
        raise ConfigError([Problem(f"malformed YAML: {exc}", origin=source)]) from None


def _check_depth(text: str, source: str) -> None:
    """Refuse a document nested deeper than ``MAX_DEPTH`` before it is composed.

    The composer recurses once per level (C stack: a segfault near 50,000 levels; Python: a
    RecursionError near 1,000), while the parser that feeds it is a state machine: its event stream is a
    linear scan of the flow and block nesting that stops at the first collection too deep. A document
    with no more collection indicators (``[ { - : ?``) than the bound cannot be too deep, and skips it.
    """
    if sum(map(text.count, "[{-:?")) <= MAX_DEPTH:
        return
    from ruamel.yaml.events import CollectionEndEvent, CollectionStartEvent

    depth = 0
    for event in _events(text):
        if isinstance(event, CollectionStartEvent):
            depth += 1
            if depth > MAX_DEPTH:
                mark = event.start_mark
                raise ConfigError([Problem(f"nested deeper than {MAX_DEPTH} levels",
                                           origin=f"{source}:{mark.line + 1}:{mark.column + 1}",
                                           hint="a profile holds a few levels of mappings and lists; flatten it")])
        elif isinstance(event, CollectionEndEvent):
            depth -= 1


def _events(text: str) -> Iterator[Any]:
    """The parser's events for ``text``, one at a time (libyaml's C parser when available)."""
    try:
        from ruamel.yaml.cyaml import CParser
    except ImportError:
        from ruamel.yaml import YAML

        yield from YAML(typ="safe", pure=True).parse(text)
        return
    parser = CParser(text)
    try:
        while parser.check_event():
            yield parser.get_event()
    finally:
        parser.dispose()


def _parse(text: str) -> Any:
    try:
        from ruamel.yaml.cyaml import CParser
    except ImportError:  # no ruamel.yaml.clib: the pure-Python composer, same results, slower
        from ruamel.yaml import YAML

        return YAML(typ="safe", pure=True).compose(text)
    from ruamel.yaml.resolver import VersionedResolver

    class _Composer(CParser, VersionedResolver):  # type: ignore[misc]
        def __init__(self, stream: str) -> None:
            CParser.__init__(self, stream)
            VersionedResolver.__init__(self, version=(1, 2), loader=self)

    parser = _Composer(text)
    try:
        return parser.get_single_node()
    finally:
        parser.dispose()


@functools.cache
def _constructor() -> Any:
    from ruamel.yaml import YAML

    return YAML(typ="safe", pure=True).constructor


def _clip(text: str) -> str:
    return repr(text) if len(text) <= 40 else f"{text[:20]!r}…({len(text)} characters)"


def _kind(value: Any) -> str:
    return {dict: "a mapping", list: "a list", str: "a string", type(None): "null"}.get(type(value),
                                                                                       type(value).__name__)


class _Builder:
    """Turns a composed node graph into plain data, recording positions and refusing unsafe input."""

    def __init__(self, source: str, constructor: Any) -> None:
        self.source = source
        self.positions: dict[Path_, tuple[int, int]] = {}
        self.nodes = 0
        self.stack: set[int] = set()
        self.constructor = constructor

    def where(self, node: Any) -> str:
        return f"{self.source}:{node.start_mark.line + 1}:{node.start_mark.column + 1}"

    def build(self, node: Any, path: Path_) -> Any:
        from ruamel.yaml.nodes import MappingNode, ScalarNode, SequenceNode

        self.nodes += 1
        if self.nodes > MAX_NODES:
            raise ConfigError([Problem(f"document expands to more than {MAX_NODES} nodes (alias bomb?)",
                                       origin=self.where(node), hint="remove the repeated aliases")])
        if len(path) > MAX_DEPTH:  # reached through aliases: the text itself was checked before composing
            raise ConfigError([Problem(f"nested deeper than {MAX_DEPTH} levels through aliases",
                                       origin=self.where(node), hint="remove the nested aliases")])
        tag = node.tag or ""
        short = tag[len(_CORE):] if tag.startswith(_CORE) else None
        if isinstance(node, ScalarNode):
            if short not in _SCALARS:
                raise self.refuse(node)
            if short == "timestamp":
                return node.value
            try:
                value = self.constructor.construct_object(node, deep=True)
            except ValueError:  # an integer of more than 4,300 decimal digits
                value = INT_BOUND
            if type(value) is int and not -INT_BOUND <= value < INT_BOUND:
                raise ConfigError([Problem("integer out of range", origin=self.where(node),
                                           hint="integers are read up to 64 bits")])
            return value
        if id(node) in self.stack:
            raise ConfigError([Problem("recursive alias", origin=self.where(node))])
        self.stack.add(id(node))
        try:
            if isinstance(node, SequenceNode):
                if short != "seq":
                    raise self.refuse(node)
                items = []
                for i, child in enumerate(node.value):
                    self.positions[(*path, i)] = (child.start_mark.line + 1, child.start_mark.column + 1)
                    items.append(self.build(child, (*path, i)))
                return items
            if isinstance(node, MappingNode):
                if short != "map":
                    raise self.refuse(node)
                return self.build_mapping(node, path)
        finally:
            self.stack.discard(id(node))
        raise self.refuse(node)

    def build_mapping(self, node: Any, path: Path_) -> dict[str, Any]:
        result: dict[str, Any] = {}
        for key_node, value_node in node.value:
            if key_node.tag == _CORE + "merge":
                raise ConfigError([Problem("merge keys (<<) are not supported; use `extends`",
                                           origin=self.where(key_node))])
            key = self.build(key_node, path)
            if not isinstance(key, str):
                raise ConfigError([Problem(f"keys must be strings, got {_kind(key)} {key!r}",
                                           origin=self.where(key_node), hint="quote the key")])
            if key in result:
                raise ConfigError([Problem(f"duplicate key {key!r}", origin=self.where(key_node),
                                           hint="each key may appear once per mapping")])
            self.positions[(*path, key)] = (key_node.start_mark.line + 1, key_node.start_mark.column + 1)
            result[key] = self.build(value_node, (*path, key))
        return result

    def refuse(self, node: Any) -> ConfigError:
        return ConfigError([Problem(f"tag {node.tag!r} is not allowed; profiles hold plain data only",
                                    origin=self.where(node), hint="remove the tag")])
