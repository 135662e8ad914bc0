"""Sessions: the create and change bodies, the list query, and the answers."""

from __future__ import annotations

import json
from typing import Any

from marshmallow import Schema, ValidationError, fields, validate, validates

from chatapp.schemas.base import (
    NO_CONTROL_CHARACTERS,
    BaseSchema,
    QueryBoolean,
    QuerySchema,
    StrictBoolean,
    check_depth,
    text_field,
    timestamp_field,
)
from chatapp.schemas.messages import MessageSchema, MessagesQuerySchema
from chatapp.storage.sessions import BULK_ACTIONS

BULK_MAX = 100  # sessions one bulk request may name

USER_ID_LENGTH = validate.Length(min=1, max=128)
METADATA_MAX_BYTES = 8 * 1024
METADATA_MAX_DEPTH = 8  # the metadata object itself is level 1


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
        metadata={
            "description": "Free-form JSON object, at most 8 KB serialized and nested at most "
            f"{METADATA_MAX_DEPTH} deep (the object itself counts as 1)."
        },
    )
    display_name = text_field(100, allow_none=True, metadata={"description": "Optional name."})
    description = text_field(1000, allow_none=True, metadata={"description": "Optional notes."})

    @validates("metadata")
    def _metadata_size(self, value: dict[str, Any], **_: Any) -> None:
        check_depth(value, METADATA_MAX_DEPTH)
        if len(json.dumps(value, separators=(",", ":")).encode()) > METADATA_MAX_BYTES:
            raise ValidationError("Must be at most 8 KB once serialized as JSON.")


class SessionPatchSchema(BaseSchema):
    MIN_PROPERTIES = 1  # the OpenAPI document's minProperties: an empty change is refused (422)

    display_name = text_field(100, allow_none=True, metadata={"description": "null removes it."})
    description = text_field(1000, allow_none=True, metadata={"description": "null removes it."})
    archived = StrictBoolean(
        metadata={
            "description": "true keeps the session forever and hides it from the "
            "default list; false restores the sliding expiry (unless pinned)."
        }
    )
    pinned = StrictBoolean(
        metadata={
            "description": "true keeps the session forever and lists it first; false restores the "
            "sliding expiry (unless archived)."
        }
    )


class SessionListQuerySchema(QuerySchema):
    limit = fields.Integer(load_default=50, validate=validate.Range(min=1, max=200))
    offset = fields.Integer(load_default=0, validate=validate.Range(min=0, max=1_000_000))
    user_id = fields.String(validate=USER_ID_LENGTH, metadata={"description": "Only this user's."})
    persona = fields.String(validate=validate.Length(min=1, max=64), metadata={"description": "Only this persona's."})
    archived = QueryBoolean(load_default=False, metadata={"description": "true lists archived sessions instead."})
    q = fields.String(
        validate=[validate.Length(min=1, max=200), NO_CONTROL_CHARACTERS],
        metadata={
            "description": "Only sessions whose name, title or description contains this text (ASCII "
            "letters in any case). Reads at most 10,000 sessions of the user (of each shard for everyone's)."
        },
    )


class SessionSchema(Schema):
    session_id = fields.String(required=True)
    user_id = fields.String(required=True)
    persona = fields.String(required=True)
    display_name = fields.String(required=True, allow_none=True, metadata={"description": "The name given to it."})
    title = fields.String(
        required=True,
        allow_none=True,
        metadata={
            "description": "The first words of its first user message (at most 60 characters, then …); "
            "null until it has one. Show `display_name` when there is one, else this."
        },
    )
    description = fields.String(required=True, allow_none=True)
    metadata = fields.Dict(required=True)
    created_at = timestamp_field("Creation time (UTC).", required=True)
    last_activity = timestamp_field("Last write (UTC).", required=True)
    message_count = fields.Integer(required=True)
    archived = fields.Boolean(required=True)
    pinned = fields.Boolean(required=True, metadata={"description": "Kept for ever and listed first."})
    expires_at = timestamp_field(
        "When it expires unless used again; null when archived or pinned.", required=True, allow_none=True
    )


class SessionListSchema(Schema):
    sessions = fields.List(fields.Nested(SessionSchema), required=True)
    count = fields.Integer(required=True, metadata={"description": "Total that match."})
    limit = fields.Integer(required=True)
    offset = fields.Integer(required=True)
    next_offset = fields.Integer(required=True, allow_none=True, metadata={"description": "null on the last page."})


def _each_once(value: list[str]) -> None:
    if len(set(value)) != len(value):
        raise ValidationError("Name each session once.")


class BulkSchema(BaseSchema):
    action = fields.String(
        required=True,
        validate=validate.OneOf(list(BULK_ACTIONS)),
        metadata={"description": "What to do to each session."},
    )
    session_ids = fields.List(
        fields.String(validate=validate.Length(min=1, max=256)),
        required=True,
        validate=[validate.Length(min=1, max=BULK_MAX), _each_once],
        metadata={"description": f"The sessions, 1 to {BULK_MAX}, each once.", "uniqueItems": True},
    )


class BulkResultSchema(Schema):
    session_id = fields.String(required=True)
    status = fields.Integer(
        required=True,
        metadata={"description": "200 done; 404 not found (or not yours); 403 a quota refused it (see `error`)."},
    )
    session = fields.Nested(
        SessionSchema,
        required=True,
        allow_none=True,
        metadata={"description": "As it now is; null if deleted or not done."},
    )
    error = fields.String(required=True, allow_none=True, metadata={"description": "Why it was not done."})


class BulkAnswerSchema(Schema):
    action = fields.String(required=True)
    results = fields.List(fields.Nested(BulkResultSchema), required=True, metadata={"description": "In request order."})
    done = fields.Integer(required=True, metadata={"description": "How many were done."})


class HistoryQuerySchema(MessagesQuerySchema):
    """A message page with a larger default: the guide's history call names no limit."""

    limit = fields.Integer(
        load_default=200,
        validate=validate.Range(min=1, max=1000),
        metadata={"description": "How many of the newest messages to return (200 unless asked)."},
    )


class HistorySchema(Schema):
    user_id = fields.String(required=True)
    session_id = fields.String(required=True)
    message_count = fields.Integer(
        required=True, metadata={"description": "How many messages the session holds (all pages)."}
    )
    messages = fields.List(
        fields.Nested(MessageSchema),
        required=True,
        metadata={"description": "Oldest first: the newest `limit` (200 by default), or those before `before`."},
    )
    next_before = fields.Integer(
        required=True,
        allow_none=True,
        metadata={"description": "Pass as `before` for the older messages; null when this page reaches the first."},
    )


class StatusSchema(Schema):
    status = fields.String(required=True)
    message = fields.String(required=True)


class ClearStatusSchema(StatusSchema):
    session_id = fields.String(required=True, metadata={"description": "The session that was cleared."})


bulk_schema = BulkSchema()
bulk_answer_schema = BulkAnswerSchema()
session_create_schema = SessionCreateSchema()
session_patch_schema = SessionPatchSchema()
session_list_query_schema = SessionListQuerySchema()
session_schema = SessionSchema()
session_list_schema = SessionListSchema()
history_schema = HistorySchema()
history_query_schema = HistoryQuerySchema()
status_schema = StatusSchema()
clear_status_schema = ClearStatusSchema()
