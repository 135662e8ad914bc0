"""The base schemas and field helpers every area builds on."""

from __future__ import annotations

from typing import Any

from marshmallow import EXCLUDE, RAISE, Schema, fields, validate


def text_field(max_length: int, **kwargs: Any) -> fields.String:
    return fields.String(validate=validate.Length(max=max_length), **kwargs)


def timestamp_field(description: str, **kwargs: Any) -> fields.String:
    return fields.String(metadata={"format": "date-time", "description": description}, **kwargs)


class BaseSchema(Schema):
    """Request bodies reject unknown keys so a typo is an error, not silently ignored."""

    class Meta:
        unknown = RAISE


class QuerySchema(Schema):
    """Query strings tolerate unknown parameters (cache busters, tracking)."""

    class Meta:
        unknown = EXCLUDE
