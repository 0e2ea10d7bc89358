"""One reader for every YAML file: standards, taxonomy, scenarios and batch.

:func:`read_yaml` loads safely (no object tags), refuses duplicate keys,
and reports errors with the file, line and key path. Scalars follow YAML 1.2
rather than PyYAML's YAML 1.1: ``1e9`` is a number, ``yes``/``no``/``on`` are
text, and a number written with a leading zero (``001``) keeps its text, since
it is an id and not a quantity.

>>> import tempfile, pathlib
>>> path = pathlib.Path(tempfile.mkdtemp()) / "x.yaml"
>>> _ = path.write_text("a: 1e9\\nid: 001\\nflag: yes\\nok: true\\n", encoding="utf-8")
>>> read_yaml(path)
{'a': 1000000000.0, 'id': '001', 'flag': 'yes', 'ok': True}
>>> _ = path.write_text("a: 1\\nb: {c: 2, c: 3}\\n", encoding="utf-8")
>>> read_yaml(path)
Traceback (most recent call last):
...
lifecircle.errors.InputError: ...x.yaml: line 2: duplicate key b.c
"""

from __future__ import annotations

import re
from collections.abc import Hashable
from pathlib import Path
from typing import Any

import yaml

from .errors import InputError

__all__ = ["key_path", "read_yaml", "read_yaml_text"]

# YAML 1.2 core schema numbers; leading zeros are text (ids), not octal or decimal
_INT = re.compile(r"^[-+]?(0|[1-9][0-9]*)$")
_FLOAT = re.compile(
    r"^[-+]?(\.[0-9]+|(0|[1-9][0-9]*)(\.[0-9]*)?)([eE][-+]?[0-9]+)?$"
    r"|^[-+]?\.(inf|Inf|INF)$|^\.(nan|NaN|NAN)$"
)
_BOOL = re.compile(r"^(true|True|TRUE|false|False|FALSE)$")
_NULL = re.compile(r"^(~|null|Null|NULL|)$")


# libyaml's parser where it is built in (ten times faster on the packaged tables)
_Base: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _Loader(_Base):  # type: ignore[valid-type,misc]
    """SafeLoader with YAML 1.2 scalars and duplicate keys refused."""


_Loader.yaml_implicit_resolvers = {}
_Loader.add_implicit_resolver("tag:yaml.org,2002:bool", _BOOL, list("tTfF"))
_Loader.add_implicit_resolver("tag:yaml.org,2002:int", _INT, list("-+0123456789"))
_Loader.add_implicit_resolver("tag:yaml.org,2002:float", _FLOAT, list("-+0123456789."))
_Loader.add_implicit_resolver("tag:yaml.org,2002:null", _NULL, ["~", "n", "N", ""])


def _construct_bool(loader: yaml.SafeLoader, node: yaml.Node) -> bool:
    return str(loader.construct_scalar(node)).lower() == "true"  # type: ignore[arg-type]


def _construct_float(loader: yaml.SafeLoader, node: yaml.Node) -> float:
    text = str(loader.construct_scalar(node)).lower()  # type: ignore[arg-type]
    if text.endswith("inf"):
        return float("-inf") if text.startswith("-") else float("inf")
    return float(text)


def _construct_mapping(loader: yaml.SafeLoader, node: yaml.Node) -> dict[Hashable, Any]:
    assert isinstance(node, yaml.MappingNode)
    loader.flatten_mapping(node)
    out: dict[Hashable, Any] = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        if not isinstance(key, Hashable):
            raise yaml.constructor.ConstructorError(
                None, None, "a mapping key must be a plain value", key_node.start_mark
            )
        if key in out:
            raise _DuplicateKey(str(key), key_node.start_mark)
        out[key] = loader.construct_object(value_node, deep=True)
    return out


class _DuplicateKey(yaml.YAMLError):
    def __init__(self, key: str, mark: yaml.Mark) -> None:
        super().__init__(key)
        self.key = key
        self.mark = mark


_Loader.add_constructor("tag:yaml.org,2002:bool", _construct_bool)
_Loader.add_constructor("tag:yaml.org,2002:float", _construct_float)
_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def read_yaml(path: str | Path) -> Any:
    """Read one YAML file (see the module notes); errors name file, line and key."""
    file = Path(path)
    if not file.is_file():
        raise InputError("no such file", file=file)
    try:
        text = file.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputError(f"not UTF-8 text ({exc.reason})", file=file) from None
    return read_yaml_text(text, source=str(file))


def read_yaml_text(text: str, *, source: str = "<text>") -> Any:
    """Parse YAML text as :func:`read_yaml` does; ``source`` names it in errors."""
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        _refuse_duplicates(node, [], source)
        return None if node is None else loader.construct_document(node)
    except _DuplicateKey as exc:
        raise InputError(f"{source}: line {exc.mark.line + 1}: duplicate key {exc.key}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise InputError(f"{source}: {where}not valid YAML ({problem})") from None
    finally:
        loader.dispose()


def _refuse_duplicates(node: yaml.Node | None, path: list[Any], source: str) -> None:
    """Walk the node tree; a key seen twice in one mapping is an error with its path."""
    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for key_node, value_node in node.value:
            key = str(key_node.value) if isinstance(key_node, yaml.ScalarNode) else "?"
            if key in seen and key != "<<":
                raise _DuplicateKey(key_path([*path, key]), key_node.start_mark)
            seen.add(key)
            _refuse_duplicates(value_node, [*path, key], source)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _refuse_duplicates(item, [*path, i], source)


def key_path(parts: list[Any] | tuple[Any, ...]) -> str:
    """``areas[2].network`` from ``["areas", 2, "network"]``, for error messages."""
    out = ""
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out or "(top level)"
