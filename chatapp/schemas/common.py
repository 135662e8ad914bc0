"""Answers shared by every area: health and the error envelope."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from chatapp.storage.search_engine import ENGINES


class HealthSchema(Schema):
    status = fields.String(
        required=True,
        validate=validate.OneOf(["ok", "degraded", "unavailable"]),
        metadata={"description": "ok; degraded (Redis answers but refuses writes); unavailable"},
    )
    search = fields.String(
        validate=validate.OneOf(ENGINES),
        metadata={
            "description": "Operators only: the search engine, the app's own index or the Redis Query Engine (FT.*)"
        },
    )
    redis = fields.String(metadata={"description": "Operators only: ok, or what Redis said"})
    store = fields.String(metadata={"description": "Operators only: redis, cluster or memory"})
    assistant = fields.String(
        metadata={"description": "Operators only: offline, or `configured: <model>` (the model is not called)"},
    )
    assistant_hint = fields.String(
        metadata={"description": "Operators only, while offline: how to connect a language model."},
    )


class ErrorDetailSchema(Schema):
    code = fields.Integer(required=True, metadata={"description": "The HTTP status."})
    name = fields.String(required=True, metadata={"description": "The HTTP status phrase."})
    message = fields.String(required=True, metadata={"description": "What went wrong."})
    fields_ = fields.Dict(
        data_key="fields",
        metadata={"description": "Validation errors per field, when there are any."},
    )


class ErrorSchema(Schema):
    error = fields.Nested(ErrorDetailSchema, required=True)


health_schema = HealthSchema()
error_schema = ErrorSchema()
