"""Import a file of conversations: read and check all of it, then write each conversation whole.

The file is read twice over, never held whole: first every conversation is parsed, checked and
staged, as the session it will become, in a temporary file (one JSON line each); only when the
whole file has been read without a fault is anything written. So a bad file (not JSON,
truncated, the wrong shape, a cycle, too deep) leaves Redis exactly as it was: there is nothing
to roll back. Then each staged conversation is one script (``import_session.lua``): all of it or,
when a quota refuses it, none of it, named in ``skipped`` with the reason.
"""

from __future__ import annotations

import json
import re
import tempfile
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import IO, Any

from chatapp.errors import QUOTA_TEXT
from chatapp.services.conversations import BadFile, Conversation, json_number
from chatapp.services.import_formats import read_conversations
from chatapp.storage import ImportedSession, QuotaExceeded, SessionStore
from chatapp.storage.keys import iso_from_ms, now_ms
from chatapp.storage.records import message_json
from chatapp.storage.transfer import hash_value

CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")  # what names may not hold (schemas/base.py)
TITLE_LENGTH, DESCRIPTION_LENGTH = 100, 1000  # as a session created through the API
METADATA_MAX_BYTES = 8 * 1024
STAGE_IN_MEMORY = 1024 * 1024  # staged conversations past this go to a temporary file on disk

__all__ = ["BadFile", "ImportOptions", "ImportReport", "import_file"]


@dataclass(frozen=True)
class ImportOptions:
    """Whose sessions they become, and how: ``owner`` is the visitor importing for itself (its
    quotas apply) or None for an operator; ``persona`` for conversations that name none this app
    knows; ``archived``: kept for ever (the default) or ordinary sessions with the usual expiry."""

    user_id: str
    owner: str | None
    persona: str
    personas: Collection[str]
    archived: bool = True


@dataclass
class ImportReport:
    user_id: str
    sessions: list[dict[str, Any]] = field(default_factory=list)
    skipped: list[dict[str, Any]] = field(default_factory=list)

    def answer(self) -> dict[str, Any]:
        return {
            "imported": len(self.sessions),
            "user_id": self.user_id,
            "sessions": self.sessions,
            "skipped": self.skipped,
        }


def import_file(store: SessionStore, stream: IO[bytes], options: ImportOptions) -> ImportReport:
    """Import every conversation of ``stream`` (seekable); BadFile, with nothing written, when
    the file cannot be imported."""
    report = ImportReport(options.user_id)
    with stage(stream) as staged:
        for line in staged:
            conversation = Conversation(**json.loads(line))
            if conversation.skip is None:
                conversation.skip = _skip_reason(conversation)
            if conversation.skip is not None:
                report.skipped.append(_skipped(conversation, conversation.skip))
                continue
            try:
                session_id = store.import_session(stored(conversation, options), owner=options.owner)
            except QuotaExceeded as exc:
                reason = "Quota reached: " + QUOTA_TEXT.get(exc.name, "{limit}").format(limit=f"{exc.limit:,}")
                report.skipped.append(_skipped(conversation, reason))
                continue
            report.sessions.append(
                {"session_id": session_id, "title": conversation.title, "messages": len(conversation.messages)}
            )
    return report


def stage(stream: IO[bytes]) -> IO[bytes]:
    """Every conversation of the file, checked, one JSON line each, in a temporary file positioned
    at its start; BadFile when any part of the file is bad."""
    staged = tempfile.SpooledTemporaryFile(max_size=STAGE_IN_MEMORY)  # noqa: SIM115 - the caller closes it
    try:
        for conversation in read_conversations(stream):
            try:
                text = json.dumps(conversation.__dict__, ensure_ascii=False, separators=(",", ":"), default=json_number)
                line = text.encode()
            except UnicodeEncodeError:
                where = f"Conversation {conversation.index}"
                raise BadFile(400, f"{where} holds a lone surrogate escape (\\ud800-\\udfff).") from None
            staged.write(line + b"\n")
        staged.seek(0)
    except BaseException:
        staged.close()
        raise
    return staged


def _skip_reason(conversation: Conversation) -> str | None:
    metadata = conversation.fields.get("metadata") or {}
    if len(json.dumps(metadata, separators=(",", ":"), ensure_ascii=False).encode()) > METADATA_MAX_BYTES:
        return "Its metadata is over 8 KB once serialized as JSON."
    return None


def _skipped(conversation: Conversation, reason: str) -> dict[str, Any]:
    return {"index": conversation.index, "title": conversation.title, "reason": reason}


def _name(value: Any, length: int) -> str | None:
    """A name or description as the API would accept it: no control characters, bounded."""
    if not isinstance(value, str):
        return None
    return CONTROL.sub("", value)[:length] or None


def stored(conversation: Conversation, options: ImportOptions) -> ImportedSession:
    """The session hash and message JSON a conversation becomes."""
    given = dict(conversation.fields)
    now = now_ms()
    persona = given.pop("persona", None)
    created_ms, last_ms = given.pop("created_ms", None), given.pop("last_ms", None)
    created_ms = now if created_ms is None else created_ms
    last_ms = created_ms if last_ms is None else last_ms
    fields = {
        "persona": persona if persona in options.personas else options.persona,
        "metadata": hash_value(given.pop("metadata", None) or {}),
        "created_at": given.pop("created_at", None) or iso_from_ms(created_ms),
        "created_ms": str(created_ms),
        "last_activity": given.pop("last_activity", None) or iso_from_ms(last_ms),
        "last_ms": str(last_ms),
    }
    for name, length in (("display_name", TITLE_LENGTH), ("description", DESCRIPTION_LENGTH)):
        value = _name(given.pop(name, None), length)
        if value:
            fields[name] = value
    fields.update((name, hash_value(value)) for name, value in given.items() if value is not None)
    messages = [message_json(message) for message in conversation.messages]
    return ImportedSession(options.user_id, fields, messages, options.archived)
