"""Records as Redis holds them (flat hashes, JSON strings) turned into the dicts the app uses."""

from __future__ import annotations

import json
from typing import Any

from chatapp.storage.keys import iso_from_ms, now_ms

Session = dict[str, Any]
Message = dict[str, Any]


def make_message(role: str, content: str, metadata: dict[str, Any] | None = None) -> Message:
    return {
        "role": role,
        "content": content,
        "timestamp": iso_from_ms(now_ms()),
        "metadata": metadata or {},
    }


def message_json(message: Message) -> str:
    return json.dumps(message, separators=(",", ":"), ensure_ascii=False)


def pairs(flat: list[str]) -> dict[str, str]:
    return dict(zip(flat[::2], flat[1::2], strict=True))


def session_from_hash(fields: dict[str, str]) -> Session:
    archived = fields.get("archived") == "1"
    pinned = fields.get("pinned") == "1"
    expires = fields.get("expires_ms")
    return {
        "session_id": fields["session_id"],
        "user_id": fields["user_id"],
        "persona": fields["persona"],
        "display_name": fields.get("display_name"),
        "title": fields.get("title"),
        "description": fields.get("description"),
        "metadata": json.loads(fields.get("metadata") or "{}"),
        "created_at": fields["created_at"],
        "last_activity": fields["last_activity"],
        "message_count": int(fields.get("message_count", 0)),
        "archived": archived,
        "pinned": pinned,
        "expires_at": iso_from_ms(int(expires)) if expires and not (archived or pinned) else None,
    }


def session_result(result: Any) -> Session | None:
    """A script's HGETALL answer, or None when it answered 'not found'."""
    return session_from_hash(pairs(result)) if result else None


def read_result(result: Any) -> tuple[Session, list[Message], int] | None:
    """read.lua's answer: the session, its messages and the list index of the first one."""
    if not result:
        return None
    fields, start, docs = result
    return session_from_hash(pairs(fields)), [json.loads(d) for d in docs], int(start)
