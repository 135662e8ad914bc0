"""Export and import: the export document (answered by export, read by import), the requests,
and the import's answer.

The document's objects admit fields they do not name: a session or message field added later
(a title, a message's ``versions``) is exported and imported without a new format version.
The import request's schemas require only what an import needs; the answer's name everything.
"""

from __future__ import annotations

from typing import Any

from marshmallow import INCLUDE, Schema, fields, validate

from chatapp.schemas.base import BaseSchema, QueryBoolean, QuerySchema, StrictBoolean, timestamp_field
from chatapp.schemas.sessions import USER_ID_LENGTH

FORMATS = ("json", "markdown")
ROLE = validate.OneOf(["user", "assistant"])


class _Open(Schema):
    class Meta:
        unknown = INCLUDE


def _message_fields(required: bool) -> dict[str, Any]:
    return {
        "role": fields.String(required=True, validate=ROLE),
        "content": fields.String(required=True),
        "timestamp": timestamp_field("When it was stored (UTC).", required=True),
        "metadata": fields.Dict(required=required, metadata={"description": "As the message carries it."}),
    }


def _session_fields(message: type[Schema], required: bool) -> dict[str, Any]:
    ignored = "Exported for reference; an import decides it (the new session's own)."
    return {
        "session_id": fields.String(required=required, metadata={"description": ignored}),
        "user_id": fields.String(required=required, metadata={"description": ignored}),
        "persona": fields.String(
            required=required,
            metadata={"description": "A persona id; on import, one this app does not know becomes `persona`."},
        ),
        "display_name": fields.String(required=required, allow_none=True),
        "description": fields.String(required=required, allow_none=True),
        "metadata": fields.Dict(required=required),
        "created_at": timestamp_field("Creation time.", required=required, allow_none=not required),
        "last_activity": timestamp_field("Last write.", required=required, allow_none=not required),
        "message_count": fields.Integer(required=required, metadata={"description": ignored}),
        "archived": fields.Boolean(required=required, metadata={"description": ignored}),
        "expires_at": timestamp_field(ignored, required=required, allow_none=True),
        "messages": fields.List(fields.Nested(message), required=required, metadata={"description": "Oldest first."}),
    }


def _document_fields(session: type[Schema], required: bool) -> dict[str, Any]:
    return {
        "format": fields.String(required=True, validate=validate.OneOf(["chatapp.export"])),
        "version": fields.Integer(
            required=True,
            validate=validate.OneOf([1]),
            metadata={"description": "The format's version; an import reads every version written so far."},
        ),
        "exported_at": timestamp_field("When the export was made.", required=required, allow_none=not required),
        "sessions": fields.List(fields.Nested(session), required=True),
    }


ExportMessageSchema = _Open.from_dict(_message_fields(True), name="ExportMessageSchema")
ExportSessionSchema = _Open.from_dict(_session_fields(ExportMessageSchema, True), name="ExportSessionSchema")
ExportDocumentSchema = _Open.from_dict(_document_fields(ExportSessionSchema, True), name="ExportDocumentSchema")
ImportMessageSchema = _Open.from_dict(_message_fields(False), name="ImportMessageSchema")
ImportSessionSchema = _Open.from_dict(_session_fields(ImportMessageSchema, False), name="ImportSessionSchema")
ImportDocumentSchema = _Open.from_dict(_document_fields(ImportSessionSchema, False), name="ImportDocumentSchema")


class ExportQuerySchema(QuerySchema):
    format = fields.String(
        load_default="json",
        validate=validate.OneOf(FORMATS),
        metadata={"description": "json (chatapp's export document) or markdown (for people)."},
    )


class ExportRequestSchema(BaseSchema):
    session_ids = fields.List(
        fields.String(validate=validate.Length(min=1, max=200)),
        validate=validate.Length(max=10_000),
        metadata={"description": "The sessions to export, in this order; omitted: all of the caller's."},
    )
    format = fields.String(
        load_default="json",
        validate=validate.OneOf(FORMATS),
        metadata={"description": "json: one document; markdown: a zip of one .md file per session."},
    )
    user_id = fields.String(
        validate=USER_ID_LENGTH,
        metadata={"description": "Operators: all of this user's sessions (when `session_ids` is omitted)."},
    )


class ImportOptionsSchema(QuerySchema):
    """The import's options, as query parameters or (with a multipart upload) form fields."""

    persona = fields.String(
        load_default="default",
        validate=validate.Length(min=1, max=64),
        metadata={"description": "For conversations that name no persona this app knows (ChatGPT, Open WebUI)."},
    )
    user_id = fields.String(
        validate=USER_ID_LENGTH,
        metadata={"description": "Operators: whose sessions they become (a new `user_…` id when omitted)."},
    )
    archived = QueryBoolean(
        load_default=True,
        metadata={"description": "true (the default): kept for ever; false: ordinary sessions that expire."},
    )


class ImportFormSchema(Schema):
    """A multipart upload: the file and the same options as the query."""

    file = fields.Nested(
        ImportDocumentSchema,
        required=True,
        metadata={"description": "The file: chatapp's export, ChatGPT's conversations.json or Open WebUI's export."},
    )
    persona = fields.String(validate=validate.Length(min=1, max=64))
    user_id = fields.String(validate=USER_ID_LENGTH)
    archived = StrictBoolean()


class ImportedSchema(Schema):
    session_id = fields.String(required=True)
    title = fields.String(required=True, allow_none=True)
    messages = fields.Integer(required=True, metadata={"description": "Messages imported."})


class SkippedSchema(Schema):
    index = fields.Integer(required=True, metadata={"description": "Its place in the file, from 0."})
    title = fields.String(required=True, allow_none=True)
    reason = fields.String(required=True)


class ImportResultSchema(Schema):
    imported = fields.Integer(required=True, metadata={"description": "Sessions created."})
    user_id = fields.String(required=True, metadata={"description": "Whose they are."})
    sessions = fields.List(fields.Nested(ImportedSchema), required=True)
    skipped = fields.List(fields.Nested(SkippedSchema), required=True)


export_document_schema = ExportDocumentSchema()
import_document_schema = ImportDocumentSchema()
export_query_schema = ExportQuerySchema()
export_request_schema = ExportRequestSchema()
import_options_schema = ImportOptionsSchema()
import_form_schema = ImportFormSchema()
import_result_schema = ImportResultSchema()
