"""Answers shared by every area: health and the error envelope."""

from __future__ import annotations

from marshmallow import Schema, fields


class HealthSchema(Schema):
    status = fields.String(required=True, metadata={"description": "ok or unavailable"})
    redis = fields.String(required=True, metadata={"description": "ok, or what went wrong"})
    store = fields.String(required=True, metadata={"description": "redis, cluster or memory"})
    assistant = fields.String(
        required=True,
        metadata={"description": "offline, or `configured: <model>` (the model is not called)"},
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
