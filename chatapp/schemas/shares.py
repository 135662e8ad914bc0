"""Share links: the create body, the owner's view of a link, and what a link shows anyone."""

from __future__ import annotations

from typing import Any

from marshmallow import Schema, fields, validate

from chatapp.schemas.base import BaseSchema, QuerySchema, timestamp_field

MIN_EXPIRES_IN = 60
MAX_EXPIRES_IN = 365 * 24 * 3600


class StrictInteger(fields.Integer):
    """A JSON number that is a whole number: not ``"60"``, not ``true``, not ``60.5``."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(strict=True, **kwargs)

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.make_error("invalid")
        return super()._deserialize(value, attr, data, **kwargs)


class ShareCreateSchema(BaseSchema):
    expires_in = StrictInteger(
        required=True,
        allow_none=True,
        validate=validate.Range(min=MIN_EXPIRES_IN, max=MAX_EXPIRES_IN),
        metadata={
            "description": "Seconds until the link stops working, 60 (a minute) to 31536000 (a year); "
            "null: it works until revoked."
        },
    )
    mode = fields.String(
        load_default="snapshot",
        validate=validate.OneOf(["snapshot", "live"]),
        metadata={
            "description": "snapshot: the conversation as it is now, kept even if the session goes; "
            "live: the session as it is when the link is opened, ending with the session."
        },
    )


class ShareSchema(Schema):
    """A link as its owner sees it."""

    share_id = fields.String(required=True, metadata={"description": "Revoke with DELETE /api/shares/{share_id}."})
    url = fields.String(required=True, metadata={"description": "The page anyone with the link can read."})
    mode = fields.String(required=True, validate=validate.OneOf(["snapshot", "live"]))
    created_at = timestamp_field("When the link was made (UTC).", required=True)
    expires_at = timestamp_field("When it stops working (UTC); null: never.", required=True, allow_none=True)
    views = fields.Integer(required=True, metadata={"description": "How many times the link was opened."})


class ShareListSchema(Schema):
    shares = fields.List(fields.Nested(ShareSchema), required=True, metadata={"description": "Newest first."})
    count = fields.Integer(required=True)


class SharedMessageSchema(Schema):
    role = fields.String(required=True, validate=validate.OneOf(["user", "assistant"]))
    content = fields.String(required=True, metadata={"description": "As written (Markdown)."})
    html = fields.String(required=True, metadata={"description": "The content rendered as the page shows it."})
    timestamp = timestamp_field("When it was written (UTC).", required=True)


class SharedConversationSchema(Schema):
    """What a link shows: never whose it is, the session's id, or anyone's metadata."""

    title = fields.String(required=True)
    persona = fields.String(required=True, metadata={"description": "The persona's name."})
    mode = fields.String(required=True, validate=validate.OneOf(["snapshot", "live"]))
    created_at = timestamp_field("When the conversation began (UTC).", required=True, allow_none=True)
    last_activity = timestamp_field("Its last message (UTC), as shared.", required=True, allow_none=True)
    shared_at = timestamp_field("When the link was made (UTC).", required=True)
    expires_at = timestamp_field("When the link stops working (UTC); null: never.", required=True, allow_none=True)
    message_count = fields.Integer(required=True)
    messages = fields.List(fields.Nested(SharedMessageSchema), required=True, metadata={"description": "Oldest first."})
    next_before = fields.Integer(
        required=True,
        allow_none=True,
        metadata={"description": "Pass as `before` for the older messages; null when this page reaches the first."},
    )


class SharedQuerySchema(QuerySchema):
    before = fields.Integer(
        validate=validate.Range(min=0, max=10_000_000),
        metadata={"description": "Cursor from `next_before`: return messages older than it."},
    )


class ShareCopySchema(Schema):
    session_id = fields.String(required=True, metadata={"description": "The new session, yours."})
    url = fields.String(required=True, metadata={"description": "The app's page with that session open."})
    message_count = fields.Integer(required=True)


share_create_schema = ShareCreateSchema()
share_schema = ShareSchema()
share_list_schema = ShareListSchema()
shared_conversation_schema = SharedConversationSchema()
shared_query_schema = SharedQuerySchema()
share_copy_schema = ShareCopySchema()
