"""Export and import: a session or a selection out as JSON or Markdown (streamed downloads),
and files of conversations in (chatapp's own, ChatGPT's, Open WebUI's)."""

from __future__ import annotations

import io
import tempfile
from collections.abc import Iterator
from contextlib import ExitStack
from typing import IO, Any

from flask import Blueprint, Response, request
from marshmallow import ValidationError
from werkzeug.exceptions import BadRequest, Forbidden, HTTPException, UnprocessableEntity, UnsupportedMediaType

from chatapp.api.endpoint import endpoint
from chatapp.api.sessions import known_persona
from chatapp.personas import get_personas
from chatapp.schemas.transfer import (
    ExportDocumentSchema,
    ImportDocumentSchema,
    ImportFormSchema,
    export_query_schema,
    export_request_schema,
    import_options_schema,
    import_result_schema,
)
from chatapp.services import exports
from chatapp.services.chat import not_found
from chatapp.services.imports import BadFile, ImportOptions, import_file
from chatapp.storage import get_store
from chatapp.web.auth import Principal, access, current_principal, new_user_id
from chatapp.web.limits import large_body, rate_limited

bp = Blueprint("transfer", __name__)

JSON_TYPE = "application/json"
MARKDOWN_TYPE = "text/markdown"  # Flask adds "; charset=utf-8"
ZIP_TYPE = "application/zip"
FORM_FIELDS = frozenset({"file", "persona", "user_id", "archived", "csrf_token"})  # csrf_token: Flask-WTF's field
SPOOL_IN_MEMORY = 1024 * 1024  # an uploaded body past this is read from a temporary file
DISPOSITION = {
    "Content-Disposition": {
        "description": "attachment, with a file name made from the title.",
        "schema": {"type": "string"},
    }
}
IMPORT_ERRORS = {
    400: "The file is not JSON (or truncated, or nested too deep), or a cookie write without its CSRF token",
    403: "A visitor naming another user, or an operator-only call",
    413: "The file is over CHATAPP_MAX_IMPORT_BYTES (50 MB by default)",
    415: "Neither a multipart upload (`file`) nor a body sent as application/json",
    422: "The file is none of the formats this app reads, or is the wrong shape (the message says where); "
    "or a bad option",
}


def _for_user(principal: Principal, user_id: str | None) -> str | None:
    """The user an operator names; a visitor may name only itself (403 otherwise)."""
    if principal.is_operator:
        return user_id
    if user_id is not None and user_id != principal.user_id:
        raise Forbidden("A visitor can export and import only its own sessions: leave out user_id.")
    return principal.user_id


def _download(chunks: Iterator[bytes], mimetype: str, filename: str) -> Response:
    return Response(chunks, mimetype=mimetype, headers={"Content-Disposition": exports.attachment(filename)})


def _persona_names() -> dict[str, str]:
    return {persona.id: persona.name for persona in get_personas().values()}


@bp.get("/sessions/<session_id>/export")
@access("visitor")
@endpoint(
    query=export_query_schema,
    responses={200: None},
    errors=(404,),
    tags=("export and import",),
    downloads={
        "content": {
            JSON_TYPE: {"schema": ExportDocumentSchema},
            "text/markdown": {"schema": {"type": "string"}},
        },
        "headers": DISPOSITION,
    },
)
def export_session(session_id: str, query: dict[str, Any]):
    """Download a session as JSON or Markdown.

    `format=json` (the default) answers chatapp's export document (see the README: versioned,
    lossless, what `POST /api/import` reads back) holding this one session; `format=markdown` a
    Markdown file for people: a heading, the persona, dates, then each message with its author
    and time. Either is an attachment named after the session's title, streamed a page of
    messages at a time.
    """
    owner = current_principal().owner
    store = get_store()
    session = store.get_session(session_id, owner=owner)
    if session is None:
        raise not_found(session_id)
    session_id = session["session_id"]
    personas = _persona_names()
    stem = exports.file_stem(exports.title_of(session, personas))
    if query["format"] == "markdown":
        return _download(exports.markdown_export(store, session_id, owner, personas), MARKDOWN_TYPE, f"{stem}.md")
    return _download(exports.json_export(store, [session_id], owner), JSON_TYPE, f"{stem}.json")


@bp.post("/export")
@access("visitor")
@endpoint(
    body=export_request_schema,
    responses={200: None},
    errors=(403, 404),
    tags=("export and import",),
    error_text={403: "A visitor naming another user"},
    downloads={
        "content": {
            JSON_TYPE: {"schema": ExportDocumentSchema},
            ZIP_TYPE: {"schema": {"type": "string", "format": "binary"}},
        },
        "headers": DISPOSITION,
    },
)
def export_sessions(body: dict[str, Any]):
    """Download a selection of sessions, or all of them.

    `session_ids` chooses the sessions (in that order); without it, every session of the
    caller (a visitor), of `user_id` (an operator), or of everyone (an operator naming no one),
    live ones first. `format=json` answers one export document; `format=markdown` a zip of one
    `.md` file per session, named after its title. Streamed, a page of messages at a time. A
    session that is not found, or not the visitor's, answers 404 and nothing is exported.
    """
    principal = current_principal()
    user_id = _for_user(principal, body.get("user_id"))
    owner = principal.owner
    store = get_store()
    if "session_ids" in body:
        session_ids = list(dict.fromkeys(body["session_ids"]))
        for session_id in session_ids:
            if store.get_session(session_id, owner=owner) is None:
                raise not_found(session_id)
    else:
        session_ids = store.exportable_ids(user_id)
    if body["format"] == "markdown":
        return _download(exports.zip_export(store, session_ids, owner, _persona_names()), ZIP_TYPE, "chatapp.zip")
    return _download(exports.json_export(store, session_ids, owner), JSON_TYPE, "chatapp.json")


def _upload(closing: ExitStack) -> tuple[IO[bytes], dict[str, Any]]:
    """The uploaded file (seekable) and the form's options; 415 for any other kind of body.
    A body sent as JSON is copied into a temporary file (in memory up to 1 MB) as it arrives."""
    principal = current_principal()
    if request.mimetype == "multipart/form-data":
        if principal.is_operator and principal.key_id is None:
            # The open mode has no cookie and no key: a cross-site form could post here.
            raise UnsupportedMediaType("In the open mode send the file as the body, as application/json.")
        unknown = sorted((set(request.form) | set(request.files)) - FORM_FIELDS)
        if unknown:
            raise ValidationError(dict.fromkeys(unknown, ["Unknown field."]))
        options = {k: v for k, v in request.form.items() if k in ("persona", "user_id", "archived")}
        upload = request.files.get("file")
        if upload is not None:
            return upload.stream, options
        if "file" in request.form:  # a part without a file name is a form field (held in memory, 500 KB at most)
            return closing.enter_context(io.BytesIO(request.form["file"].encode())), options
        raise ValidationError({"file": ["Attach the file to import as the form field `file`."]})
    if request.mimetype != JSON_TYPE:
        raise UnsupportedMediaType(
            "Send the file as a multipart form field `file`, or as the body with Content-Type: application/json."
        )
    body = closing.enter_context(tempfile.SpooledTemporaryFile(max_size=SPOOL_IN_MEMORY))  # noqa: SIM115 - closing
    while chunk := request.stream.read(64 * 1024):
        body.write(chunk)
    body.seek(0)
    return body, {}


@bp.post("/import")
@access("visitor")
@rate_limited("sessions")
@large_body("MAX_IMPORT_BYTES")
@endpoint(
    query=import_options_schema,
    responses={200: import_result_schema},
    errors=(400, 403, 413, 415, 422),
    tags=("export and import",),
    error_text=IMPORT_ERRORS,
    upload={
        JSON_TYPE: {"schema": ImportDocumentSchema},
        "multipart/form-data": {"schema": ImportFormSchema, "encoding": {"file": {"contentType": JSON_TYPE}}},
    },
)
def import_sessions(query: dict[str, Any]):
    """Import conversations from a file.

    Reads chatapp's own export (the schema below), ChatGPT's `conversations.json` (its data
    export) and Open WebUI's chat export, recognised by their content: from ChatGPT and Open
    WebUI the branch the user last saw (`current_node`, `currentId`), user and assistant text in
    order with its times (system, tool and hidden messages left out; images and files as a
    placeholder such as `[image]`). Send the file as the multipart field `file` or as the body
    (`application/json`), up to CHATAPP_MAX_IMPORT_BYTES (50 MB); options as query parameters or
    form fields.

    The whole file is read and checked before anything is written: a file that is not JSON, is
    truncated, nests too deep, is none of these formats or the wrong shape (a cycle in a
    ChatGPT mapping too) answers 4xx naming why and where, and creates nothing. Then each
    conversation becomes one session, all of it or none: one a quota refuses, or with nothing
    to import, is listed in `skipped` with the reason. Sessions keep their titles and times and
    arrive archived (kept, no expiry) unless `archived=false`; a visitor's quotas apply.
    """
    principal = current_principal()
    with ExitStack() as closing:
        stream, form = _upload(closing)
        options = import_options_schema.load({**request.args.to_dict(), **form})
        settings = ImportOptions(
            user_id=_for_user(principal, options.get("user_id")) or new_user_id(),
            owner=principal.owner,
            persona=known_persona(options["persona"]).id,
            personas=set(get_personas()),
            archived=options["archived"],
        )
        try:
            report = import_file(get_store(), stream, settings)
        except BadFile as exc:
            raise _refusal(exc) from None
    return import_result_schema.dump(report.answer())


def _refusal(exc: BadFile) -> HTTPException:
    return BadRequest(exc.message) if exc.status == 400 else UnprocessableEntity(exc.message)
