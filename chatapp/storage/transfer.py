"""Export and import at the storage level: a session's fields as stored, its messages as stored
JSON a page at a time, the ids of everything a caller may export, and one imported conversation
written in one step.

A session's exported fields are the API's (``session_from_hash``) plus any other field its hash
holds that is not bookkeeping, so a field added to sessions later flows through an export
without a change here; ``hash_value`` writes such a field back the way the hash holds flags.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from chatapp.storage.keys import compose_session_id, session_key, shard_of_user
from chatapp.storage.listing import ListingStore
from chatapp.storage.records import Session, pairs, session_from_hash

# What a session's hash holds for the store's own use, never exported nor imported.
BOOKKEEPING = frozenset({"write_token", "created_ms", "last_ms", "expires_ms", "importing"})
# Exported, but decided by the import itself (the owner, the new id, the counts, the state).
DECIDED_ON_IMPORT = frozenset({"session_id", "user_id", "message_count", "archived", "expires_at", "messages"})
PAGE = 500  # messages per read while exporting
MAX_ID_SECONDS = 10**12 - 1  # a session id holds at most 12 digits of seconds
ID_PAGE = 200  # sessions per listing page while collecting what to export


def exported_session(fields: dict[str, str]) -> Session:
    """The session as an export shows it: the API's fields, then any other non-bookkeeping field."""
    session = session_from_hash(fields)
    for name, value in fields.items():
        if name not in session and name not in BOOKKEEPING:
            session[name] = value
    return session


def hash_value(value: Any) -> str:
    """A field value as a session hash holds it: flags as '1'/'0', text as is, the rest as JSON."""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, str):
        return value
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


@dataclass(frozen=True)
class ImportedSession:
    """What one import step writes: the session hash's fields and its messages as JSON."""

    user_id: str
    fields: dict[str, str]
    messages: list[str]
    archived: bool


class TransferStore(ListingStore):
    def export_page(
        self, session_id: str, owner: str | None, start: int, count: int = PAGE
    ) -> tuple[Session, list[str]] | None:
        """The session's exported fields and its messages ``start`` .. ``start + count - 1`` as
        stored JSON (oldest first); None when not found (or not the owner's)."""
        located = self._locate(session_id)
        if located is None:
            return None
        sid, shard = located
        result = self._run("read", shard, session_key(sid, shard), [sid, owner or "", count, start + count])
        if not result:
            return None
        fields, first, docs = result
        if int(first) != start:  # fewer messages than start: nothing more to read
            docs = []
        return exported_session(pairs(fields)), list(docs)

    def message_pages(self, session_id: str, owner: str | None, page: int = PAGE) -> Iterator[list[str]]:
        """A session's stored messages, oldest first, ``page`` at a time (each page one round trip)."""
        start = 0
        while True:
            found = self.export_page(session_id, owner, start, page)
            if found is None or not found[1]:
                return
            yield found[1]
            if len(found[1]) < page:
                return
            start += page

    def exportable_ids(self, user_id: str | None) -> list[str]:
        """Every session of ``user_id`` (everyone's when None), live then archived, most recent
        first: ids only, so an export of thousands of sessions holds a few hundred KB at most."""
        ids: list[str] = []
        for archived in (False, True):
            offset = 0
            while True:
                page = self.list_page(user_id=user_id, archived=archived, offset=offset, limit=ID_PAGE)
                ids += [json.loads(summary)["session_id"] for summary in page.summaries]
                offset += ID_PAGE
                if offset >= page.total or not page.summaries:
                    break
        return list(dict.fromkeys(ids))

    def import_session(self, imported: ImportedSession, owner: str | None) -> str:
        """Write one imported conversation in one step; its new id. ``owner`` (a visitor importing
        for itself) applies the visitor's quotas: QuotaExceeded, and nothing written, when over."""
        user_id = imported.user_id
        shard = shard_of_user(user_id)
        for _ in range(3):  # a taken id means 40 random bits repeated within one second: never in practice
            seconds = min(max(int(imported.fields.get("created_ms") or 0) // 1000, 0), MAX_ID_SECONDS)
            sid = compose_session_id(user_id, seconds, secrets.token_hex(5))
            fields = {**imported.fields, "session_id": sid, "user_id": user_id}
            flat = [item for pair in fields.items() for item in pair]
            args = [sid, *self._stamp(), self._quotas(owner), user_id, "1" if imported.archived else "0"]
            args += [len(fields), *flat, *imported.messages]
            if self._run("import_session", shard, session_key(sid, shard), args):
                return sid
        raise RuntimeError("could not find a free session id")
