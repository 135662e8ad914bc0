"""The files an import reads, recognised by their content and turned into conversations.

- chatapp's own export (``{"format": "chatapp.export", "version": 1, "sessions": [...]}``),
  read back field for field: every version chatapp has written (``VERSIONS``);
- ChatGPT's ``conversations.json``: a list of conversations, each a ``mapping`` of nodes whose
  branch that ends at ``current_node`` is what the user last saw;
- Open WebUI's chat export: a list of chats, each a tree of messages whose branch that ends at
  ``currentId`` is the one shown.

The file is parsed as a stream (ijson), one conversation at a time, so memory holds one
conversation whatever the file's size. A file that is not one of these, not JSON, truncated,
nested deeper than ``MAX_DEPTH`` or holding a cycle raises ``BadFile`` (a 4xx) naming why and
where; a conversation that is well formed but has nothing to import comes back with ``skip``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import IO, Any

import ijson

from chatapp.services.conversations import (
    MAX_DEPTH,
    ROLES,
    BadFile,
    Conversation,
    check_depth,
    conversation_times,
    epoch_ms,
    json_number,
)
from chatapp.services.foreign_formats import chatgpt_conversation, openwebui_chat
from chatapp.storage.transfer import BOOKKEEPING, DECIDED_ON_IMPORT

FORMAT = "chatapp.export"
VERSIONS = (1,)  # every version of the export format chatapp has written; it reads them all
EXTRA_FIELD = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
MAX_EXTRA_FIELDS = 16
MAX_EXTRA_BYTES = 1000
CONTAINER = object()  # the header's value of a top-level key holding an object or a list


def read_conversations(stream: IO[bytes]) -> Iterator[Conversation]:
    """Every conversation of the file, in order; BadFile for a file that cannot be imported."""
    first = _first_byte(stream)
    try:
        if first == b"{":
            yield from _chatapp(stream)
        elif first == b"[":
            yield from _conversation_list(stream)
        elif first == b"":
            raise BadFile(400, "The file is empty.")
        else:
            _ = list(ijson.parse(stream))  # a valid JSON scalar, or the parser's own complaint
            raise BadFile(422, _NOT_RECOGNISED)
    except ijson.JSONError as exc:
        raise BadFile(400, f"The file is not valid JSON ({_reason(exc)}).") from None
    except UnicodeDecodeError:  # yajl decodes a lone low surrogate escape (\udc00) into bytes that are not UTF-8
        raise BadFile(400, "The file holds text that is not valid Unicode (a lone surrogate escape?).") from None


_NOT_RECOGNISED = (
    "The file is not an export this app can read: chatapp's own export (an object with "
    '"format": "chatapp.export"), ChatGPT\'s conversations.json or Open WebUI\'s chat export (lists of conversations).'
)


def _reason(exc: Exception) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    if "premature EOF" in text or isinstance(exc, ijson.IncompleteJSONError) and "EOF" in text:
        return "it ends too soon: truncated?"
    return text[:200]


def _first_byte(stream: IO[bytes]) -> bytes:
    """The first byte that is not white space (a UTF-8 BOM is skipped too); the stream is left
    positioned at it."""
    while True:
        start = stream.tell()
        chunk = stream.read(4096)
        if not chunk:
            return b""
        stripped = chunk.lstrip(b" \t\r\n\xef\xbb\xbf") if start == 0 else chunk.lstrip(b" \t\r\n")
        if stripped:
            stream.seek(start + len(chunk) - len(stripped))
            return stripped[:1]


def _chatapp(stream: IO[bytes]) -> Iterator[Conversation]:
    start = stream.tell()
    header = _chatapp_header(stream)
    if header.get("format") != FORMAT:
        if "mapping" in header or "chat" in header:
            raise BadFile(422, "A single conversation: export it as a list of conversations (ChatGPT, Open WebUI).")
        raise BadFile(422, _NOT_RECOGNISED)
    version = header.get("version")
    if isinstance(version, bool) or not isinstance(version, int) or version not in VERSIONS:
        raise BadFile(422, f"chatapp export version {version!r} is not one this app reads (it reads {VERSIONS}).")
    exported_at = header.get("exported_at")
    if exported_at is not None and (not isinstance(exported_at, str) or epoch_ms(exported_at) is None):
        raise BadFile(422, '"exported_at" must be an RFC 3339 date-time.')
    stream.seek(start)
    for index, item in enumerate(ijson.items(stream, "sessions.item")):
        yield chatapp_session(item, index)


def _chatapp_header(stream: IO[bytes]) -> dict[str, Any]:
    """The top level's keys with its scalar values (format, version), from a pass over the
    whole file (ijson's C parser reads 20 MB in a tenth of a second) that also bounds the nesting
    depth everywhere and checks that ``sessions`` is a list."""
    header: dict[str, Any] = {}
    depth = 0
    for prefix, event, value in ijson.parse(stream):
        if event in ("start_map", "start_array"):
            depth += 1
            if depth > MAX_DEPTH + 2:
                raise BadFile(400, f"The file nests objects and arrays more than {MAX_DEPTH + 2} deep.")
            if depth == 2 and prefix == "sessions" and event != "start_array":
                raise BadFile(422, '"sessions" must be a list of sessions.')
            if depth == 2:
                header[prefix] = CONTAINER
        elif event in ("end_map", "end_array"):
            depth -= 1
        elif event == "map_key" and depth == 1:
            header.setdefault(value, None)
        elif depth == 1:
            header[prefix] = value
            if prefix == "sessions":
                raise BadFile(422, '"sessions" must be a list of sessions.')
    if header.get("format") == FORMAT and "sessions" not in header:
        raise BadFile(422, 'A chatapp export needs "sessions", a list of sessions.')
    return header


def _text(value: Any, where: str, name: str) -> str | None:
    if value is None or isinstance(value, str):
        return value
    raise BadFile(422, f"{where}.{name} must be text or null.")


def _date_time(value: Any, where: str, name: str, required: bool = False) -> int | None:
    if value is None and not required:
        return None
    ms = epoch_ms(value) if isinstance(value, str) else None
    if ms is None:
        raise BadFile(422, f"{where}.{name} must be an RFC 3339 date-time, like 2025-01-31T12:00:00.000+00:00.")
    return ms


def chatapp_message(message: Any, where: str) -> dict[str, Any]:
    """A message of a chatapp export, checked; kept as it is (``versions`` and any other field)."""
    if not isinstance(message, dict):
        raise BadFile(422, f"{where} must be an object.")
    if message.get("role") not in ROLES:
        raise BadFile(422, f"{where}.role must be one of {', '.join(ROLES)}.")
    if not isinstance(message.get("content"), str):
        raise BadFile(422, f"{where}.content must be text.")
    _date_time(message.get("timestamp"), where, "timestamp", required=True)
    if not isinstance(message.setdefault("metadata", {}), dict):
        raise BadFile(422, f"{where}.metadata must be an object.")
    return message


def chatapp_session(item: Any, index: int) -> Conversation:
    """A session of a chatapp export, checked field by field (a wrong one refuses the file)."""
    where = f"sessions[{index}]"
    if not isinstance(item, dict):
        raise BadFile(422, f"{where} must be an object.")
    check_depth(item, where)
    for name in ("persona", "session_id", "user_id"):
        if name in item and not isinstance(item[name], str):
            raise BadFile(422, f"{where}.{name} must be text.")
    title, description = (
        _text(item.get("display_name"), where, "display_name"),
        _text(item.get("description"), where, "description"),
    )
    metadata = item.get("metadata", {})
    if not isinstance(metadata, dict):
        raise BadFile(422, f"{where}.metadata must be an object.")
    for name in ("archived",):
        if name in item and not isinstance(item[name], bool):
            raise BadFile(422, f"{where}.{name} must be true or false.")
    if "message_count" in item and (
        isinstance(item["message_count"], bool) or not isinstance(item["message_count"], int)
    ):
        raise BadFile(422, f"{where}.message_count must be a whole number.")
    created_ms = _date_time(item.get("created_at"), where, "created_at")
    last_ms = _date_time(item.get("last_activity"), where, "last_activity")
    _date_time(item.get("expires_at"), where, "expires_at")
    messages = item.get("messages", [])
    if not isinstance(messages, list):
        raise BadFile(422, f"{where}.messages must be a list.")
    messages = [chatapp_message(m, f"{where}.messages[{i}]") for i, m in enumerate(messages)]
    fields: dict[str, Any] = {"persona": item.get("persona"), "display_name": title, "description": description}
    fields["metadata"] = metadata
    fields.update(conversation_times(item.get("created_at"), created_ms, item.get("last_activity"), last_ms, messages))
    fields.update(_extra_fields(item))
    return Conversation(index, title, "chatapp", fields, messages)


def _extra_fields(item: dict[str, Any]) -> dict[str, Any]:
    """Session fields chatapp does not know (added by a later version): kept when named like a
    field and small, dropped otherwise."""
    known = {"persona", "display_name", "description", "metadata", "created_at", "last_activity"}
    extras: dict[str, Any] = {}
    for name, value in item.items():
        if name in known or name in DECIDED_ON_IMPORT or name in BOOKKEEPING or value is None:
            continue
        small = len(json.dumps(value, ensure_ascii=False, default=json_number).encode()) <= MAX_EXTRA_BYTES
        if EXTRA_FIELD.match(name) and len(extras) < MAX_EXTRA_FIELDS and small:
            extras[name] = value
    return extras


def _conversation_list(stream: IO[bytes]) -> Iterator[Conversation]:
    count = 0
    for index, item in enumerate(ijson.items(stream, "item")):
        count += 1
        where = f"Conversation {index}"
        if isinstance(item, dict | list):
            check_depth(item, where)
        if isinstance(item, dict) and isinstance(item.get("mapping"), dict):
            yield chatgpt_conversation(item, index)
        elif isinstance(item, dict) and isinstance(item.get("chat"), dict):
            yield openwebui_chat(item, index)
        elif index == 0:
            raise BadFile(422, _NOT_RECOGNISED)
        else:
            raise BadFile(422, f"{where} is neither a ChatGPT conversation (with a mapping) nor an Open WebUI chat.")
    if count == 0:
        raise BadFile(422, "The file holds no conversations.")


# Imported from elsewhere: the other app's ids stay in the session's metadata.
