"""Load a config file, apply overrides, validate every key against the schema, write the resolved config."""
from __future__ import annotations

import difflib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Iterable, Sequence, Tuple, Union

import yaml

from ..errors import ConfigError
from ..fileio import atomic_write_text
from . import schema as S
from .overrides import Override, parse_overrides
from .values import Raw, coerce, yaml_value


def _suggest(key: str) -> str:
    close = difflib.get_close_matches(key, S.all_keys(), n=3, cutoff=0.6)
    if close:
        return f"did you mean {' or '.join(close)}?"
    section = key.split(".")[0]
    near = [k for k in S.all_keys() if k.startswith(section + ".")]
    return f"valid keys of {section}: {', '.join(near)}" if near else f"sections are {', '.join(S.SCHEMA)}"


def read_yaml(path: Union[str, Path]) -> Dict[str, Any]:
    """Read a YAML mapping, with clear errors for a missing, unreadable or non-mapping file."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"config file {p} does not exist", "pass an existing file with -c, e.g. "
                          "-c configs/modules/image_classification/PP-LCNet_x1_0.yaml")
    try:
        with open(p, encoding="utf-8-sig") as f:
            data = yaml.safe_load(f)
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"config file {p} cannot be read: {e}", "check the path and that it is UTF-8 text") from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ConfigError(f"config file {p} is not valid YAML{where}: {getattr(e, 'problem', e)}",
                          "fix the YAML syntax (indentation, colons, quotes)") from None
    if not isinstance(data, dict):
        raise ConfigError(f"config file {p} must hold a YAML mapping (Global:, Train:, ...), "
                          f"got {type(data).__name__}", "see configs/modules/image_classification/ for examples")
    return data


def _merge_file(cfg: Dict[str, Any], data: Dict[str, Any], prefix: Tuple[str, ...], source: str) -> None:
    """Validate the file's keys against the schema and merge them into ``cfg``."""
    for k, v in data.items():
        path = prefix + (str(k),)
        key = ".".join(path)
        node = S.lookup(path)
        if node is None:
            raise ConfigError(f"unknown config key {key} in {source}", _suggest(key))
        if isinstance(node, dict):
            if v is None:
                continue
            if not isinstance(v, dict):
                raise ConfigError(f"config key {key} in {source} must be a mapping, got {v!r}",
                                  f"its keys are {', '.join(node)}")
            _merge_file(cfg[k], v, path, source)
        else:
            cfg[k] = coerce(key, node, v)


def _apply(cfg: Dict[str, Any], ov: Override) -> None:
    """Set one override, walking dicts by name and lists by index."""
    node: Any = cfg
    for i, part in enumerate(ov.path[:-1]):
        node = _child(node, part, ov, i)
    last = ov.path[-1]
    field = S.lookup(ov.path)
    if isinstance(field, dict):
        raise ConfigError(f"override {ov.key} names a section, not a key", f"its keys are {', '.join(field)}")
    if field is not None:
        node[last] = coerce(ov.key, field, Raw(ov.raw))
    elif isinstance(node, list):
        idx = _index(node, last, ov, len(ov.path) - 1, allow_append=True)
        value = yaml_value(ov.raw, ov.key)
        node.append(value) if idx == len(node) else node.__setitem__(idx, value)
    elif isinstance(node, dict) and _inside_free_value(ov.path):
        node[last] = yaml_value(ov.raw, ov.key)
    else:
        raise ConfigError(f"unknown config key {ov.key} (from -o {ov.key}={ov.raw})", _suggest(ov.key))


def _inside_free_value(path: Tuple[str, ...]) -> bool:
    """True when a prefix of ``path`` is a list/any field, whose items have no schema of their own."""
    return any(isinstance(S.lookup(path[:n]), S.Field) for n in range(1, len(path)))


def _child(node: Any, part: str, ov: Override, depth: int) -> Any:
    if isinstance(node, list):
        return node[_index(node, part, ov, depth)]
    if isinstance(node, dict) and part in node and isinstance(node[part], (dict, list)):
        return node[part]
    where = ".".join(ov.path[: depth + 1])
    if S.lookup(ov.path[: depth + 1]) is None:
        raise ConfigError(f"unknown config key {ov.key} (from -o {ov.key}={ov.raw})", _suggest(ov.key))
    raise ConfigError(f"override {ov.key}: {where} is {node.get(part)!r}, not a list or mapping",
                      f"set {where} to a list first, e.g. -o {where}=[a,b]")


def _index(node: list, part: str, ov: Override, depth: int, allow_append: bool = False) -> int:
    where = ".".join(ov.path[:depth])
    if not part.isdigit():
        raise ConfigError(f"override {ov.key}: {where} is a list; {part!r} is not an index",
                          f"use a number, e.g. -o {where}.0=...")
    idx = int(part)
    if idx > len(node) or (idx == len(node) and not allow_append):
        raise ConfigError(f"override {ov.key}: index {idx} is out of range for {where} (length {len(node)})",
                          f"use an index from 0 to {len(node) - (0 if allow_append else 1)}")
    return idx


@dataclass(frozen=True)
class ConfigSource:
    """A config as read: every key typed and checked against the schema, plus which keys ``-o`` set.

    Modes complete it (``paddlex_cls.modes``) before it is saved; ``overridden`` tells them which values the user
    chose on the command line, and so must win over values inherited from files (e.g. a training run's config).
    """

    values: Dict[str, Any]
    overridden: frozenset = frozenset()
    path: str = ""
    override_texts: Tuple[str, ...] = ()  # the ``-o`` arguments as given, to re-run the same command


def read_config(path: Union[str, Path], overrides: Sequence[str] = ()) -> ConfigSource:
    """Load a config file and apply ``KEY=VALUE`` overrides in order (later wins); every value is typed, range
    checked and validated against the schema."""
    cfg = S.defaults()
    _merge_file(cfg, read_yaml(path), (), str(path))
    parsed = parse_overrides(overrides)
    for ov in parsed:
        _apply(cfg, ov)
    if not cfg["Global"]["model"]:
        cfg["Global"]["model"] = Path(path).stem
    return ConfigSource(cfg, frozenset(ov.key for ov in parsed), str(path), tuple(overrides))


def load_config(path: Union[str, Path], overrides: Iterable[str] = ()) -> Dict[str, Any]:
    """The config of ``path`` with overrides applied, as a plain nested dict (see ``read_config``).

    Example:
        >>> cfg = load_config("configs/modules/image_classification/PP-LCNet_x1_0.yaml",
        ...                   overrides=["Global.mode=train", "Train.epochs_iters=2"])
        >>> cfg["Train"]["epochs_iters"]
        2
    """
    return read_config(path, overrides).values


def save_config(cfg: Dict[str, Any], path: Union[str, Path]) -> None:
    """Write the resolved config as YAML (atomically)."""
    atomic_write_text(path, yaml.safe_dump(cfg, sort_keys=False, allow_unicode=True))
