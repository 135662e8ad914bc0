"""The base schemas and field helpers every area builds on."""

from __future__ import annotations

import re
from typing import Any

from marshmallow import EXCLUDE, RAISE, Schema, ValidationError, fields, validate

# Control characters (C0, DEL and C1) other than tab and newline: they rewrite terminals and
# forge log lines, and no name needs them. The pattern is valid in Python and in JSON Schema
# (ECMA-262) alike, so the OpenAPI document states exactly what is refused.
NO_CONTROL_CHARACTERS = validate.Regexp(
    r"^[^\x00-\x08\x0b-\x1f\x7f-\x9f]*$",
    error="Must not contain control characters (only newline and tab are allowed).",
)
# Some character that is not white space (the set Python's str.isspace() knows, written out so
# that JSON Schema's pattern means the same).
VISIBLE = r"[^\t\n\x0b\x0c\r\x1c-\x20\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]"
HAS_VISIBLE_TEXT = re.compile(VISIBLE)


def text_field(max_length: int, **kwargs: Any) -> fields.String:
    """Free text a person types (names, descriptions): bounded, and without control characters."""
    return fields.String(validate=[validate.Length(max=max_length), NO_CONTROL_CHARACTERS], **kwargs)


def timestamp_field(description: str, **kwargs: Any) -> fields.String:
    return fields.String(metadata={"format": "date-time", "description": description}, **kwargs)


class StrictBoolean(fields.Boolean):
    """JSON's true or false only: ``0``, ``1`` or ``"yes"`` are not booleans in a JSON body."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> bool:
        if not isinstance(value, bool):
            raise self.make_error("invalid")
        return value


class QueryBoolean(fields.Boolean):
    """``true`` or ``false`` in a query string, as the OpenAPI document serializes a boolean."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(truthy={"true"}, falsy={"false"}, **kwargs)


def json_depth(value: Any) -> int:
    """How deep objects and arrays nest in a parsed JSON value (a scalar is 0)."""
    if isinstance(value, dict):
        return 1 + max((json_depth(v) for v in value.values()), default=0)
    if isinstance(value, list):
        return 1 + max((json_depth(v) for v in value), default=0)
    return 0


def check_depth(value: Any, limit: int) -> None:
    if json_depth(value) > limit:
        raise ValidationError(f"Must not nest objects and arrays more than {limit} deep.")


class BaseSchema(Schema):
    """Request bodies reject unknown keys so a typo is an error, not silently ignored."""

    class Meta:
        unknown = RAISE


class QuerySchema(Schema):
    """Query strings tolerate unknown parameters (cache busters, tracking)."""

    class Meta:
        unknown = EXCLUDE
