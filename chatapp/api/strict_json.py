"""Strict JSON for request bodies: what Python's json module lets through, refused with a 400.

Python's ``json`` accepts ``NaN`` and ``Infinity`` (then writes them back out as invalid JSON),
turns ``1e400`` into infinity, recurses once per nesting level (so a deep body raises
``RecursionError``), and decodes ``"\\udc00"`` into a lone surrogate that no UTF-8 encoder (and
so no Redis client) can encode. Bodies are UTF-8 (RFC 8259), a key appears once per object,
and nesting is bounded before the parser ever recurses.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

from werkzeug.exceptions import BadRequest

MAX_DEPTH = 32  # objects and arrays inside each other, the body itself counting as 1
_STRING = re.compile(r'"(?:[^"\\]++|\\.)*+"', re.DOTALL)
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")
SURROGATE = re.compile("[\ud800-\udfff]")


class InvalidJSON(BadRequest):
    """A body that is not strict JSON; the description says why, without echoing it."""


def nesting_depth(text: str) -> int:
    """How deep objects and arrays nest in ``text`` (brackets inside strings do not count)."""
    brackets = _NOT_BRACKET.sub("", _STRING.sub("", text))
    depth = deepest = 0
    for char in brackets:
        if char in "[{":
            depth += 1
            deepest = max(deepest, depth)
        else:
            depth -= 1
    return deepest


def _no_constants(name: str) -> Any:
    raise InvalidJSON(f"{name} is not a JSON number; send a finite number or a string.")


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise InvalidJSON("A number in the body is too large to represent.")
    return value


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise InvalidJSON("An object in the body has the same key twice.")
        result[key] = value
    return result


def _check_strings(value: Any) -> None:
    """No lone surrogates (``\\ud800``-``\\udfff`` escapes without their pair) anywhere."""
    if isinstance(value, str):
        if SURROGATE.search(value):
            raise InvalidJSON("The body holds a lone surrogate escape (\\ud800-\\udfff): not valid Unicode text.")
    elif isinstance(value, dict):
        for key, item in value.items():
            _check_strings(key)
            _check_strings(item)
    elif isinstance(value, list):
        for item in value:
            _check_strings(item)


def loads(data: bytes, max_depth: int = MAX_DEPTH) -> Any:
    """Parse a request body strictly; ``InvalidJSON`` (a 400) names what is wrong."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidJSON("The body is not valid UTF-8.") from None
    if nesting_depth(text) > max_depth:
        raise InvalidJSON(f"The body nests objects and arrays more than {max_depth} deep.")
    try:
        value = json.loads(
            text,
            parse_constant=_no_constants,
            parse_float=_finite,
            object_pairs_hook=_unique_keys,
        )
    except InvalidJSON:
        raise
    except (ValueError, RecursionError) as exc:  # JSONDecodeError, or an int over 4,300 digits
        raise InvalidJSON(f"The body is not valid JSON: {_reason(exc)}") from None
    _check_strings(value)
    return value


def _reason(exc: Exception) -> str:
    if isinstance(exc, json.JSONDecodeError):
        return f"{exc.msg} at line {exc.lineno} column {exc.colno}."
    if isinstance(exc, RecursionError):
        return "nested too deeply."
    return "a number is too long."
