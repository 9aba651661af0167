"""One way to read configuration: a YAML file into a validated, frozen dataclass.

Every configuration of sote (feature spec, targets, unit costs, county
presets, adapter maps, segmentation grid, training, the demo) is read the same
way: :func:`read_yaml` parses a file (or a packaged default by name) and
:func:`build` turns the mapping into a dataclass, checking

- unknown keys (with the allowed ones listed) and missing required keys;
- types from the annotations: ``int``, ``float``, ``str``, ``bool``,
  ``tuple[X, ...]``, ``tuple[X, Y]``, ``list[X]``, ``X | None``, ``Literal``,
  ``Mapping[K, V]`` (built as a read-only :class:`FrozenDict`) / ``dict[K, V]``,
  nested dataclasses and ``Any``;
- ranges and choices declared in field metadata: ``ge``, ``gt``, ``le``,
  ``lt``, ``choices`` (applied to a scalar, or to each item of a tuple or list),
  and ``non_empty``;
- whatever the dataclass's own ``__post_init__`` checks (a ``ValueError``
  there is reported with the file and key path).

Anything wrong raises one :class:`ConfigError` naming the file, the key path
and the bad value; a YAML syntax error names the line. Strict on purpose: a
``bool`` is not an ``int``, ``"3"`` is not a number, and the only conversions
are ``int`` to ``float`` and a YAML date (``2024-01-01`` unquoted) to its ISO
string where a ``str`` is declared.

Example
-------
>>> from dataclasses import dataclass, field
>>> @dataclass(frozen=True)
... class Job:
...     as_of: str
...     top: int = field(default=50, metadata={"ge": 1})
>>> build(Job, {"as_of": "2024-01-01", "top": 20}, "job.yaml")
Job(as_of='2024-01-01', top=20)
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import types
import typing
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Any, Literal, TypeVar, Union

import yaml

C = TypeVar("C")
_MISSING = object()
#: Field-metadata keys understood by :func:`build`.
RANGE_KEYS = ("ge", "gt", "le", "lt")


class FrozenDict(dict):
    """A read-only, hashable, picklable ``dict``: what a ``Mapping[K, V]`` field is built as."""

    def _refuse(self, *args, **kwargs):
        raise TypeError("a configuration mapping is read-only")

    __setitem__ = __delitem__ = clear = pop = popitem = setdefault = update = _refuse
    __ior__ = _refuse

    def __hash__(self):
        return hash(frozenset(self.items()))

    def __reduce__(self):
        return (FrozenDict, (dict(self),))


class ConfigError(ValueError):
    """A configuration that cannot be used: names the file, the key path and the bad value.

    Attributes
    ----------
    source : str or None
        The file (or ``"<name> (default)"`` for a packaged file).
    where : str or None
        Dotted key path, list items as ``[i]`` (``targets.high_use.outcome.quantile``).
    """

    def __init__(self, message: str, *, source: str | None = None, where: str | None = None):
        super().__init__(message)
        self.source = source
        self.where = where


class ConfigFileNotFound(ConfigError, FileNotFoundError):
    """A configuration file that does not exist (also a ``FileNotFoundError``)."""


def config_error(source: str, where: str, problem: str) -> ConfigError:
    """A :class:`ConfigError` with the message ``"<source>: <where>: <problem>"``."""
    message = f"{source}: {where}: {problem}" if where else f"{source}: {problem}"
    return ConfigError(message, source=source, where=where)


def read_yaml(path: str | Path | None = None, packaged: str | None = None, *,
              package: str = "features.config") -> tuple[Any, str]:
    """Parse a YAML file, or a packaged default by name when ``path`` is None.

    Parameters
    ----------
    path
        A YAML file; takes precedence over ``packaged``.
    packaged
        File name inside ``package`` (``"features.yaml"``), read when ``path`` is None.
    package
        The package holding packaged files (``features.config``, ``segmentation.config``).

    Returns
    -------
    tuple
        The parsed content (an empty file gives ``{}``) and the source name used in
        messages: the path, or ``"<packaged> (default)"``.

    Raises
    ------
    ConfigFileNotFound
        If ``path`` (or the packaged file) does not exist.
    ConfigError
        If the text is not valid YAML (the message names the line and column).
    """
    if path is None and packaged is None:
        raise ValueError("read_yaml needs a path or a packaged file name")
    if path is not None:
        file = Path(path)
        source = str(file)
        if not file.is_file():
            raise ConfigFileNotFound(f"configuration file not found: {file}", source=source)
        text = file.read_text(encoding="utf-8")
    else:
        source = f"{packaged} (default)"
        entry = resources.files(package).joinpath(packaged)
        if not entry.is_file():
            raise ConfigFileNotFound(f"no packaged configuration {packaged!r} in {package}", source=source)
        text = entry.read_text(encoding="utf-8")
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        at = f"line {mark.line + 1}, column {mark.column + 1}" if mark is not None else "unknown position"
        problem = getattr(err, "problem", None) or str(err)
        context, context_mark = getattr(err, "context", None), getattr(err, "context_mark", None)
        if context and context_mark is not None:  # where the unclosed list or mapping began
            problem += f" ({context} at line {context_mark.line + 1}, column {context_mark.column + 1})"
        raise ConfigError(f"{source}: not valid YAML at {at}: {problem}", source=source) from err
    return ({} if raw is None else raw), source


def _join(where: str, key: Any) -> str:
    if isinstance(key, int) and not isinstance(key, bool):
        return f"{where}[{key}]"
    return f"{where}.{key}" if where else str(key)


def _type_name(tp: Any) -> str:
    if isinstance(tp, type):
        return tp.__name__
    return str(tp).replace("typing.", "")


def _check_meta(value: Any, meta: Mapping, source: str, where: str) -> None:
    """Apply ``ge``/``gt``/``le``/``lt``/``choices`` of a field to one scalar."""
    if "choices" in meta and value not in meta["choices"]:
        raise config_error(source, where, f"{value!r} is not one of {list(meta['choices'])}")
    tests = {"ge": (lambda v, b: v >= b, ">="), "gt": (lambda v, b: v > b, ">"),
             "le": (lambda v, b: v <= b, "<="), "lt": (lambda v, b: v < b, "<")}
    for key in RANGE_KEYS:
        if key in meta and value is not None:
            ok, sign = tests[key]
            if not ok(value, meta[key]):
                raise config_error(source, where, f"expected a value {sign} {meta[key]}, got {value!r}")


def _convert(value: Any, tp: Any, source: str, where: str, meta: Mapping) -> Any:
    """Check ``value`` against annotation ``tp`` and return it in the declared form."""
    if tp is Any:
        return value
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in (Union, types.UnionType):
        if value is None:
            if type(None) in args:
                return None
            raise config_error(source, where, "a value is required, got null")
        errors = []
        for arm in (a for a in args if a is not type(None)):
            try:
                return _convert(value, arm, source, where, meta)
            except ConfigError as err:
                errors.append(err)
        if len(errors) == 1:
            raise errors[0]
        wanted = " or ".join(_type_name(a) for a in args if a is not type(None))
        raise config_error(source, where, f"expected {wanted}, got {value!r}")
    if origin is Literal:
        if value not in args:
            raise config_error(source, where, f"{value!r} is not one of {list(args)}")
        return value
    if dataclasses.is_dataclass(tp):
        return build(tp, value, source, where)
    if tp is bool:
        if not isinstance(value, bool):
            raise config_error(source, where, f"expected true or false, got {value!r}")
        return value
    if tp is int:
        if not isinstance(value, int) or isinstance(value, bool):
            raise config_error(source, where, f"expected a whole number, got {value!r}")
        _check_meta(value, meta, source, where)
        return value
    if tp is float:
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            raise config_error(source, where, f"expected a number, got {value!r}")
        value = float(value)
        _check_meta(value, meta, source, where)
        return value
    if tp is str:
        if isinstance(value, dt.date):  # YAML reads an unquoted 2024-01-01 as a date
            value = value.isoformat()
        if not isinstance(value, str):
            raise config_error(source, where, f"expected a text, got {value!r}")
        _check_meta(value, meta, source, where)
        return value
    if tp is Path:
        if not isinstance(value, (str, Path)):
            raise config_error(source, where, f"expected a path, got {value!r}")
        return Path(value)
    if origin in (tuple, list):
        if not isinstance(value, (list, tuple)):
            raise config_error(source, where, f"expected a list, got {value!r}")
        if origin is tuple and args and not (len(args) == 2 and args[1] is Ellipsis):
            if len(value) != len(args):
                raise config_error(source, where, f"expected a list of {len(args)} items, got {value!r}")
            items = [_convert(v, a, source, _join(where, i), meta) for i, (v, a) in enumerate(zip(value, args))]
        else:
            item_tp = args[0] if args else Any
            items = [_convert(v, item_tp, source, _join(where, i), meta) for i, v in enumerate(value)]
        if meta.get("non_empty") and not items:
            raise config_error(source, where, "expected a non-empty list, got []")
        return tuple(items) if origin is tuple else items
    if origin in (dict, Mapping) or tp in (dict, Mapping):
        if not isinstance(value, Mapping):
            raise config_error(source, where, f"expected a mapping, got {value!r}")
        key_tp, val_tp = args if args else (Any, Any)
        out = {}
        for k, v in value.items():
            if key_tp is str and isinstance(k, (int, float, dt.date)) and not isinstance(k, bool):
                k = k.isoformat() if isinstance(k, dt.date) else str(k)  # YAML reads 9201: as a number
            key = _convert(k, key_tp, source, _join(where, k), {})
            out[key] = _convert(v, val_tp, source, _join(where, k), meta)
        if meta.get("non_empty") and not out:
            raise config_error(source, where, "expected a non-empty mapping, got {}")
        return FrozenDict(out) if origin is Mapping or tp is Mapping else out
    if isinstance(tp, type):
        if not isinstance(value, tp):
            raise config_error(source, where, f"expected {tp.__name__}, got {value!r}")
        return value
    raise TypeError(f"build: unsupported annotation {tp!r} at {where or 'top level'}")


def build(cls: type[C], raw: Any, source: str, where: str = "") -> C:
    """Validate a mapping against dataclass ``cls`` and construct it.

    Parameters
    ----------
    cls
        A dataclass (frozen by convention); annotations give the types, field
        metadata the ranges (``ge``, ``gt``, ``le``, ``lt``), ``choices`` and ``non_empty``.
    raw
        The parsed YAML (a mapping; ``None`` counts as empty).
    source
        Name of the file, used in messages.
    where
        Key path of ``raw`` inside the file, used in messages.

    Returns
    -------
    cls
        The constructed instance; fields missing from ``raw`` take their defaults.

    Raises
    ------
    ConfigError
        Naming ``source``, the key path and the bad value: an unknown or missing
        key, a wrong type, a value out of range, or a ``ValueError`` raised by
        the class's ``__post_init__``.
    """
    if not (isinstance(cls, type) and dataclasses.is_dataclass(cls)):
        raise TypeError(f"build needs a dataclass, got {cls!r}")
    raw = {} if raw is None else raw
    if not isinstance(raw, Mapping):
        raise config_error(source, where or "top level", f"expected a mapping, got {raw!r}")
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    unknown = sorted((str(k) for k in raw if k not in fields), key=str)
    if unknown:
        raise config_error(source, where or "top level", f"unknown key(s) {unknown}; allowed: {sorted(fields)}")
    hints = typing.get_type_hints(cls)
    values = {}
    for name, f in fields.items():
        path = _join(where, name)
        if name not in raw:
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise config_error(source, path, "required key is missing")
            continue
        values[name] = _convert(raw[name], hints[name], source, path, f.metadata)
    try:
        return cls(**values)
    except ConfigError:
        raise
    except (ValueError, TypeError) as err:
        raise config_error(source, where or "top level", str(err)) from err


def load_config(cls: type[C], path: str | Path | None = None, *, packaged: str | None = None,
                section: str | None = None, package: str = "features.config") -> C:
    """Read a YAML file (or the packaged default ``packaged``) into dataclass ``cls``.

    Parameters
    ----------
    cls
        The dataclass to build.
    path
        A YAML file; None reads ``packaged`` from ``package``, or, with no
        ``packaged`` either, gives ``cls`` with its defaults.
    packaged
        File name of the packaged default.
    section
        Top-level key holding the configuration (for files with several parts);
        a file without it gives ``cls`` with its defaults.
    package
        The package holding packaged files.

    Raises
    ------
    ConfigError
        See :func:`read_yaml` and :func:`build`.
    """
    if path is None and packaged is None:
        return build(cls, {}, f"{cls.__name__} defaults")
    raw, source = read_yaml(path, packaged, package=package)
    if section is not None:
        if not isinstance(raw, Mapping):
            raise config_error(source, "top level", f"expected a mapping, got {raw!r}")
        return build(cls, raw.get(section), source, section)
    return build(cls, raw, source)
