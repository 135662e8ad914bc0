"""Messages: the post body, the page query, and the answers."""

from __future__ import annotations

from typing import Any

from flask import current_app
from marshmallow import Schema, ValidationError, fields, pre_load, validate

from chatapp.rendering import render_markdown
from chatapp.schemas.base import HAS_VISIBLE_TEXT, VISIBLE, BaseSchema, QuerySchema, timestamp_field


def _content_length(value: str) -> None:
    limit = current_app.config["MAX_MESSAGE_LENGTH"]
    if not HAS_VISIBLE_TEXT.search(value):
        raise ValidationError("Must not be empty.")
    if len(value) > limit:
        raise ValidationError(f"Must be at most {limit} characters.")


class MessageCreateSchema(BaseSchema):
    content = fields.String(
        required=True,
        validate=_content_length,
        # maxLength is CHATAPP_MAX_MESSAGE_LENGTH: chatapp.api.openapi fills it in per app.
        metadata={
            "description": "The user's message, 1 to 32,000 characters by default, not all white space.",
            "minLength": 1,
            "pattern": VISIBLE,
        },
    )


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


class MessageSchema(Schema):
    role = fields.String(required=True, validate=validate.OneOf(["user", "assistant"]))
    content = fields.String(required=True)
    timestamp = timestamp_field("When it was stored (UTC).", required=True)
    metadata = fields.Dict(
        required=True,
        metadata={
            "description": (
                "Free-form. An assistant reply from a model carries `model`, `persona`, `latency_ms`, "
                "`usage` (token counts, when the model reports them) and `finish_reason`; `truncated: true` "
                "when the token limit cut it (`finish_reason` `length`); `reasoning`, a reasoning model's "
                "thinking, which is not part of `content`; `incomplete: true` with `incomplete_reason` "
                "(`no_finish_reason`, `upstream_error`, `connection_lost`, `timeout`, `deadline`) for text "
                "kept from a reply that failed; `stopped: true` for one stopped with the Stop button (older "
                "data may carry `interrupted: true`, for a reply its client left); `offline: true` "
                "for the offline notice."
            )
        },
    )
    index = fields.Integer(
        metadata={
            "description": (
                "Its place in the session, 0 for the first (what edit and versions address): on the live "
                "channel's `message` events. Pages of messages start at `next_before` (0 when null)."
            )
        }
    )
    html = fields.Function(
        lambda message: str(render_markdown(message.get("content"))),
        dump_only=True,
        metadata={
            "type": "string",
            "description": (
                "`content` rendered from Markdown (CommonMark, tables, strikethrough, autolinks) and "
                "sanitized: no raw HTML passes, links are http(s) or mailto with "
                '`rel="noopener noreferrer nofollow"`. What the chat page shows.'
            ),
        },
    )
    versions = fields.List(
        fields.Dict(),
        metadata={
            "description": (
                "The message's other versions, in order (present once it has more than one): "
                "`{content, timestamp, metadata}`, and for a user message `replies`, the messages "
                "that followed that version. Every version = `versions[:version]` + this one + "
                "`versions[version:]`."
            )
        },
    )
    version = fields.Integer(
        metadata={"description": "Where the shown version stands among all of them, 0-based (with `versions`)."}
    )

    @pre_load
    def _derived(self, data: Any, **kwargs: Any) -> Any:
        """`html` is made from `content`, never taken in: a message read back leaves it out."""
        if isinstance(data, dict) and "html" in data:
            data = {k: v for k, v in data.items() if k != "html"}
        return data


class MessageVersionSchema(BaseSchema):
    version = fields.Integer(
        required=True,
        strict=True,
        validate=validate.Range(min=0, max=10_000),
        metadata={"description": "Which version to show, 0-based: 0 is the first, `len(versions)` the last."},
    )


class VersionShownSchema(Schema):
    session_id = fields.String(required=True)
    index = fields.Integer(required=True, metadata={"description": "The message whose version changed."})
    messages = fields.List(
        fields.Nested(MessageSchema),
        required=True,
        metadata={
            "description": (
                "The messages from `index` on that changed: the message itself and, for a user "
                "message, the replies kept with that version, which now follow it."
            )
        },
    )


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


message_create_schema = MessageCreateSchema()
messages_query_schema = MessagesQuerySchema()
message_page_schema = MessagePageSchema()
message_exchange_schema = MessageExchangeSchema()
message_schema = MessageSchema()
message_version_schema = MessageVersionSchema()
version_shown_schema = VersionShownSchema()
reply_schema = ReplySchema()
