"""Turning a raw override string or a YAML value into the type a schema field declares."""
from __future__ import annotations

import math
import re
from typing import Any

import yaml

from ..errors import ConfigError
from .schema import Field

_NULLS = {"null", "none", "~"}
_TRUE = {"true", "yes", "on", "1"}
_FALSE = {"false", "no", "off", "0"}
_INT = re.compile(r"^[+-]?\d[\d_]*$")


class Raw(str):
    """An override's text, not yet typed (a YAML value from a file is already typed)."""


MAX_NESTING = 20  # a config value never nests deeper; thousands of brackets would exhaust the parser's recursion


def _nesting(text: str) -> int:
    depth = deepest = 0
    for ch in text:
        if ch in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif ch in "]}":
            depth -= 1
    return deepest


def yaml_value(text: str, key: str = "") -> Any:
    """Type a free-form value as a YAML scalar or flow collection (``[1,2]``, ``{a: 1}``, ``1e-3``)."""
    if _nesting(text) > MAX_NESTING:
        raise ConfigError(f"the value of {key or 'an override'} nests lists/mappings more than {MAX_NESTING} deep",
                          "give a flat value, e.g. -o Predict.input=[a.jpg,b.jpg]")
    try:
        value = yaml.safe_load(text) if text.strip() else ""
    except yaml.YAMLError:
        return text  # not YAML: keep the text, e.g. "a: b: c"
    if isinstance(value, str) and re.fullmatch(r"[+-]?(\d+\.?\d*|\.\d+)[eE][+-]?\d+", value):
        return float(value)  # YAML 1.1 reads 1e-3 as a string; users mean a number
    return value


def _unquote(text: str) -> str:
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        return text[1:-1]
    return text


def _bad(key: str, field: Field, value: Any, expected: str) -> ConfigError:
    return ConfigError(f"config key {key} expects {expected}, got {value!r}",
                       f"set it like -o {key}=<{expected}> ({field.doc})")


def coerce(key: str, field: Field, value: Any) -> Any:
    """Return ``value`` as the field's type, or raise ConfigError naming the key, the type and the value."""
    is_raw = isinstance(value, Raw)
    if is_raw and value.strip().lower() in _NULLS or value is None:
        if field.nullable:
            return None
        raise _bad(key, field, None if value is None else str(value), f"a {field.type} (null is not allowed)")
    value = coerce_raw(key, field, str(value)) if is_raw else coerce_typed(key, field, value)
    if field.choices and value not in field.choices:
        raise ConfigError(f"config key {key} must be one of {', '.join(field.choices)}; got {value!r}",
                          f"e.g. -o {key}={field.choices[0]}")
    check_range(key, field, value)
    return value


def check_range(key: str, field: Field, value: Any) -> None:
    """Refuse a number outside the field's bounds, and any float that is not finite (nan, inf, 1e400)."""
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return
    if isinstance(value, float) and not math.isfinite(value):
        bounds = f" {field.range_text()}" if field.range_text() else ""
        raise ConfigError(f"config key {key} must be a finite number, got {value!r}",
                          f"set -o {key}=<a number{bounds}> ({field.doc})")
    bad = ((field.ge is not None and value < field.ge) or (field.gt is not None and value <= field.gt)
           or (field.le is not None and value > field.le) or (field.lt is not None and value >= field.lt))
    if bad:
        raise ConfigError(f"config key {key} must be {field.range_text()}, got {value!r}",
                          f"set -o {key}=<{field.type} {field.range_text()}> ({field.doc})")


def coerce_raw(key: str, field: Field, text: str) -> Any:
    """Type an override's text by the field."""
    t = field.type
    if t == "str":
        return _unquote(text)
    if t == "bool":
        low = _unquote(text).lower()
        if low in _TRUE | _FALSE:
            return low in _TRUE
        raise _bad(key, field, text, "a bool (true/false)")
    if t == "int":
        if _INT.match(_unquote(text)):
            return int(_unquote(text).replace("_", ""))
        raise _bad(key, field, text, "an int")
    if t == "float":
        try:
            return float(_unquote(text))
        except ValueError:
            raise _bad(key, field, text, "a float") from None
    parsed = yaml_value(text, key)
    if t == "str_or_list":
        return [str(v) for v in parsed] if isinstance(parsed, list) else _unquote(text)
    if t == "list":
        return coerce_typed(key, field, parsed)
    return parsed


def coerce_typed(key: str, field: Field, value: Any) -> Any:
    """Check a value that YAML already typed (from a config file or a flow collection)."""
    t = field.type
    if t == "str":
        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            raise _bad(key, field, value, "a string")
        return str(value)
    if t == "bool":
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in _TRUE | _FALSE:
            return value.lower() in _TRUE
        raise _bad(key, field, value, "a bool (true/false)")
    if t == "int":
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        raise _bad(key, field, value, "an int")
    if t == "float":
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):
            return coerce_raw(key, field, value)
        raise _bad(key, field, value, "a float")
    if t == "list":
        return list(value) if isinstance(value, (list, tuple)) else [value]
    if t == "str_or_list":
        if isinstance(value, (list, tuple)):
            return [str(v) for v in value]
        return coerce_typed(key, Field("str", None, field.doc), value)
    return value
