"""Live: the events query and the answer to a Stop."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from chatapp.schemas.base import QuerySchema
from chatapp.schemas.messages import MessageSchema

EVENT_ID = r"^[0-9]{1,20}-[0-9]{1,20}$"


class EventsQuerySchema(QuerySchema):
    last_event_id = fields.String(
        validate=validate.Regexp(EVENT_ID, error="Must be an event id such as 1732700000000-0."),
        metadata={
            "description": (
                "Resume after this event (as the `Last-Event-ID` header does, which wins when both are sent)."
            ),
            "pattern": EVENT_ID,
        },
    )


class StopSchema(Schema):
    session_id = fields.String(required=True)
    reply_id = fields.String(required=True, metadata={"description": "The reply asked to stop."})
    stopping = fields.Boolean(
        required=True,
        metadata={"description": "Always true: the reply stops within a second and is stored marked `stopped`."},
    )


class ReplyStartedSchema(Schema):
    session_id = fields.String(required=True)
    reply_id = fields.String(required=True, metadata={"description": "The reply being written; stop it by session."})
    user_message = fields.Nested(
        MessageSchema, allow_none=True, metadata={"description": "The stored message (null for a retry)."}
    )


events_query_schema = EventsQuerySchema()
reply_started_schema = ReplyStartedSchema()
stop_schema = StopSchema()
