"""Every marshmallow schema: request parsing, response shapes, and the personas file.

The same classes generate the OpenAPI document, so what is validated is what is documented.
"""

from __future__ import annotations

import json
from typing import Any

from flask import current_app
from marshmallow import EXCLUDE, RAISE, Schema, ValidationError, fields, validate, validates

USER_ID_LENGTH = validate.Length(min=1, max=128)
METADATA_MAX_BYTES = 8 * 1024


def _text(max_length: int, **kwargs: Any) -> fields.String:
    return fields.String(validate=validate.Length(max=max_length), **kwargs)


def _timestamp(description: str, **kwargs: Any) -> fields.String:
    return fields.String(metadata={"format": "date-time", "description": description}, **kwargs)


class BaseSchema(Schema):
    """Request bodies reject unknown keys so a typo is an error, not silently ignored."""

    class Meta:
        unknown = RAISE


class QuerySchema(Schema):
    """Query strings tolerate unknown parameters (cache busters, tracking)."""

    class Meta:
        unknown = EXCLUDE


# --- requests ---------------------------------------------------------------------------


class SessionCreateSchema(BaseSchema):
    user_id = fields.String(
        validate=USER_ID_LENGTH,
        metadata={
            "description": "Owner of the session; any text, spaces and emoji included. "
            "Generated (`user_…`) when omitted."
        },
    )
    persona = fields.String(
        load_default="default",
        validate=validate.Length(min=1, max=64),
        metadata={"description": "A persona id from GET /api/personas."},
    )
    metadata = fields.Dict(
        keys=fields.String(),
        load_default=dict,
        metadata={"description": "Free-form JSON object, at most 8 KB serialized."},
    )
    display_name = _text(100, allow_none=True, metadata={"description": "Optional name."})
    description = _text(1000, allow_none=True, metadata={"description": "Optional notes."})

    @validates("metadata")
    def _metadata_size(self, value: dict[str, Any], **_: Any) -> None:
        if len(json.dumps(value, separators=(",", ":")).encode()) > METADATA_MAX_BYTES:
            raise ValidationError("Must be at most 8 KB once serialized as JSON.")


class SessionPatchSchema(BaseSchema):
    display_name = _text(100, allow_none=True, metadata={"description": "null removes it."})
    description = _text(1000, allow_none=True, metadata={"description": "null removes it."})
    archived = fields.Boolean(
        metadata={
            "description": "true keeps the session forever and hides it from the "
            "default list; false restores the sliding expiry."
        }
    )


def _content_length(value: str) -> None:
    limit = current_app.config["MAX_MESSAGE_LENGTH"]
    if not value.strip():
        raise ValidationError("Must not be empty.")
    if len(value) > limit:
        raise ValidationError(f"Must be at most {limit} characters.")


class MessageCreateSchema(BaseSchema):
    content = fields.String(
        required=True,
        validate=_content_length,
        metadata={"description": "The user's message, 1 to 32,000 characters by default."},
    )


class SessionListQuerySchema(QuerySchema):
    limit = fields.Integer(load_default=50, validate=validate.Range(min=1, max=200))
    offset = fields.Integer(load_default=0, validate=validate.Range(min=0, max=1_000_000))
    user_id = fields.String(validate=USER_ID_LENGTH, metadata={"description": "Only this user's."})
    persona = fields.String(validate=validate.Length(min=1, max=64), metadata={"description": "Only this persona's."})
    archived = fields.Boolean(load_default=False, metadata={"description": "true lists archived sessions instead."})


class MessagesQuerySchema(QuerySchema):
    limit = fields.Integer(
        load_default=50,
        validate=validate.Range(min=1, max=500),
        metadata={"description": "How many of the newest messages to return."},
    )
    before = fields.Integer(
        validate=validate.Range(min=0, max=10_000_000),
        metadata={"description": "Cursor from `next_before`: return messages older than it."},
    )


# --- responses --------------------------------------------------------------------------


class MessageSchema(Schema):
    role = fields.String(required=True, validate=validate.OneOf(["user", "assistant"]))
    content = fields.String(required=True)
    timestamp = _timestamp("When it was stored (UTC).", required=True)
    metadata = fields.Dict(required=True)


class SessionSchema(Schema):
    session_id = fields.String(required=True)
    user_id = fields.String(required=True)
    persona = fields.String(required=True)
    display_name = fields.String(required=True, allow_none=True)
    description = fields.String(required=True, allow_none=True)
    metadata = fields.Dict(required=True)
    created_at = _timestamp("Creation time (UTC).", required=True)
    last_activity = _timestamp("Last write (UTC).", required=True)
    message_count = fields.Integer(required=True)
    archived = fields.Boolean(required=True)
    expires_at = _timestamp("When it expires unless used again; null when archived.", required=True, allow_none=True)


class SessionListSchema(Schema):
    sessions = fields.List(fields.Nested(SessionSchema), required=True)
    count = fields.Integer(required=True, metadata={"description": "Total that match."})
    limit = fields.Integer(required=True)
    offset = fields.Integer(required=True)
    next_offset = fields.Integer(required=True, allow_none=True, metadata={"description": "null on the last page."})


class HistorySchema(Schema):
    user_id = fields.String(required=True)
    session_id = fields.String(required=True)
    message_count = fields.Integer(required=True)
    messages = fields.List(fields.Nested(MessageSchema), required=True)


class MessagePageSchema(Schema):
    session_id = fields.String(required=True)
    message_count = fields.Integer(required=True)
    messages = fields.List(fields.Nested(MessageSchema), required=True)
    next_before = fields.Integer(
        required=True,
        allow_none=True,
        metadata={"description": "Pass as `before` for older messages; null at the start."},
    )


class MessageExchangeSchema(Schema):
    session_id = fields.String(required=True)
    user_message = fields.Nested(MessageSchema, required=True)
    assistant_message = fields.Nested(MessageSchema, required=True)
    messages = fields.List(fields.Nested(MessageSchema), required=True)


class ReplySchema(Schema):
    session_id = fields.String(required=True)
    assistant_message = fields.Nested(MessageSchema, required=True)
    messages = fields.List(fields.Nested(MessageSchema), required=True)


class StatusSchema(Schema):
    status = fields.String(required=True)
    message = fields.String(required=True)


class ClearStatusSchema(StatusSchema):
    session_id = fields.String(required=True, metadata={"description": "The session that was cleared."})


class PersonaSchema(Schema):
    id = fields.String(required=True)
    name = fields.String(required=True)
    description = fields.String(required=True)
    greeting = fields.String(required=True)


class PersonaListSchema(Schema):
    personas = fields.List(fields.Nested(PersonaSchema), required=True)
    count = fields.Integer(required=True)


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


# --- configuration files -----------------------------------------------------------------


class StrictFloat(fields.Float):
    """A YAML number only: ``temperature: "0.5"`` (a string) is a mistake worth naming."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> float | None:
        if isinstance(value, str):
            raise self.make_error("invalid")
        return super()._deserialize(value, attr, data, **kwargs)


class PersonaFileEntrySchema(BaseSchema):
    name = fields.String(required=True, validate=validate.Length(min=1, max=100))
    description = fields.String(required=True, validate=validate.Length(min=1, max=500))
    system_prompt = fields.String(required=True, validate=validate.Length(min=1))
    greeting = fields.String(required=True, validate=validate.Length(min=1, max=1000))
    model = fields.String(
        validate=validate.Length(min=1, max=200),
        metadata={"description": "Overrides CHATAPP_LLM_MODEL for this persona."},
    )
    temperature = StrictFloat(validate=validate.Range(min=0, max=2))
    max_tokens = fields.Integer(strict=True, validate=validate.Range(min=1, max=1_000_000))


session_create_schema = SessionCreateSchema()
session_patch_schema = SessionPatchSchema()
message_create_schema = MessageCreateSchema()
session_list_query_schema = SessionListQuerySchema()
messages_query_schema = MessagesQuerySchema()
session_schema = SessionSchema()
session_list_schema = SessionListSchema()
history_schema = HistorySchema()
message_page_schema = MessagePageSchema()
message_exchange_schema = MessageExchangeSchema()
message_schema = MessageSchema()
reply_schema = ReplySchema()
status_schema = StatusSchema()
clear_status_schema = ClearStatusSchema()
persona_list_schema = PersonaListSchema()
health_schema = HealthSchema()
error_schema = ErrorSchema()
persona_file_entry_schema = PersonaFileEntrySchema()
