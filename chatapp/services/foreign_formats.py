"""ChatGPT's and Open WebUI's exports: the branch the user last saw of each conversation.

ChatGPT's ``conversations.json`` is a list of conversations, each a ``mapping`` of nodes
(``parent``, ``children``, ``message``) and a ``current_node``; Open WebUI's export a list of
chats, each a tree of messages (``parentId``, ``childrenIds``) and a ``currentId``. Both are
followed up from the leaf to the root (a cycle refuses the file), then read root first.
"""

from __future__ import annotations

from typing import Any

from chatapp.services.conversations import ROLES, BadFile, Conversation, conversation_times, seconds_ms
from chatapp.storage.keys import iso_from_ms, now_ms

# ChatGPT content that is not text: a short placeholder instead (by content_type of a part).
PLACEHOLDERS = {
    "image_asset_pointer": "[image]",
    "audio_asset_pointer": "[audio]",
    "real_time_user_audio_video_asset_pointer": "[audio]",
    "video_container_asset_pointer": "[video]",
}
# ChatGPT content types that are never shown as a message of the conversation.
UNSHOWN_CONTENT = frozenset(
    {"thoughts", "reasoning_recap", "user_editable_context", "model_editable_context", "system_error"}
)


def _foreign(item: dict[str, Any], index: int, source: str) -> tuple[str | None, dict[str, Any]]:
    title = item.get("title") if isinstance(item.get("title"), str) else None
    metadata: dict[str, Any] = {"imported_from": source}
    original = item.get("conversation_id") or item.get("id")
    if isinstance(original, str):
        metadata["original_id"] = original
    return title, metadata


def _branch(nodes: dict[str, Any], leaf: Any, parent_key: str, where: str) -> list[dict[str, Any]]:
    """The nodes from the root down to ``leaf``, following ``parent_key`` up; BadFile on a cycle."""
    chain: list[dict[str, Any]] = []
    seen: set[str] = set()
    node_id = leaf
    while isinstance(node_id, str) and node_id in nodes:
        if node_id in seen:
            raise BadFile(422, f"{where} has a cycle: node {node_id[:80]!r} is its own ancestor.")
        seen.add(node_id)
        node = nodes[node_id]
        if not isinstance(node, dict):
            raise BadFile(422, f"{where}: node {node_id[:80]!r} must be an object.")
        chain.append(node)
        node_id = node.get(parent_key)
    chain.reverse()
    return chain


def _part_text(part: Any) -> str:
    if isinstance(part, str):
        return part
    if isinstance(part, dict):
        kind = part.get("content_type")
        if kind == "audio_transcription" and isinstance(part.get("text"), str):
            return part["text"]
        return PLACEHOLDERS.get(kind, "[attachment]") if isinstance(kind, str) else "[attachment]"
    return ""


def _chatgpt_text(content: Any) -> str:
    if not isinstance(content, dict) or content.get("content_type") in UNSHOWN_CONTENT:
        return ""
    if isinstance(content.get("parts"), list):
        return "\n\n".join(text for text in (_part_text(p) for p in content["parts"]) if text.strip())
    if content.get("content_type") == "code" and isinstance(content.get("text"), str):
        return f"```\n{content['text']}\n```"
    return content["text"] if isinstance(content.get("text"), str) else ""


def chatgpt_conversation(item: dict[str, Any], index: int) -> Conversation:
    """The branch of a ChatGPT conversation that ends at ``current_node``: user and assistant
    text in order, with its times; system, tool and hidden messages and empty nodes left out."""
    title, metadata = _foreign(item, index, "chatgpt")
    conversation = Conversation(index, title, "chatgpt")
    where = f"Conversation {index}" + (f" ({title[:60]!r})" if title else "")
    if item.get("current_node") not in item["mapping"]:
        conversation.skip = "It names no current_node in its mapping: which branch to import is unknown."
        return conversation
    created_ms = seconds_ms(item.get("create_time"))
    last_ms = seconds_ms(item.get("update_time"))
    clock = created_ms
    for node in _branch(item["mapping"], item["current_node"], "parent", where):
        message = node.get("message")
        if not isinstance(message, dict):
            continue
        author = message.get("author")
        role = author.get("role") if isinstance(author, dict) else None
        meta: dict[str, Any] = message["metadata"] if isinstance(message.get("metadata"), dict) else {}
        if role not in ROLES or meta.get("is_visually_hidden_from_conversation"):
            continue
        if role == "assistant" and message.get("recipient") not in (None, "all"):
            continue  # a call to a tool (code, browsing), not text for the user
        text = _chatgpt_text(message.get("content"))
        if not text.strip():
            continue
        clock = seconds_ms(message.get("create_time")) or clock
        kept: dict[str, Any] = {}
        if role == "assistant" and isinstance(meta.get("model_slug"), str):
            kept["model"] = meta["model_slug"]
        conversation.messages.append(_message(role, text, clock, kept))
    return _finish(conversation, metadata, created_ms, last_ms)


def openwebui_chat(item: dict[str, Any], index: int) -> Conversation:
    """The branch of an Open WebUI chat that ends at ``currentId`` (or its flat list of messages,
    from versions without a history)."""
    title, metadata = _foreign(item, index, "open-webui")
    chat = item["chat"]
    if not title and isinstance(chat.get("title"), str):
        title = chat["title"]
    conversation = Conversation(index, title, "open-webui")
    where = f"Conversation {index}" + (f" ({title[:60]!r})" if title else "")
    history = chat.get("history")
    if isinstance(history, dict) and isinstance(history.get("messages"), dict):
        if history.get("currentId") not in history["messages"]:
            conversation.skip = "It names no currentId in its history: which branch to import is unknown."
            return conversation
        nodes = _branch(history["messages"], history["currentId"], "parentId", where)
    elif isinstance(chat.get("messages"), list):
        nodes = [m for m in chat["messages"] if isinstance(m, dict)]
    else:
        raise BadFile(422, f"{where} has neither chat.history.messages nor chat.messages.")
    created_ms = seconds_ms(item.get("created_at")) or seconds_ms(chat.get("timestamp"))
    last_ms = seconds_ms(item.get("updated_at"))
    clock = created_ms
    for node in nodes:
        role = node.get("role")
        text: str = node["content"] if isinstance(node.get("content"), str) else ""
        files: list[Any] = node["files"] if isinstance(node.get("files"), list) else []
        shown = [text] if text.strip() else []
        shown += ["[image]" if isinstance(f, dict) and f.get("type") == "image" else "[file]" for f in files]
        if role not in ROLES or not shown:
            continue
        clock = seconds_ms(node.get("timestamp")) or clock
        kept = {"model": node["model"]} if role == "assistant" and isinstance(node.get("model"), str) else {}
        conversation.messages.append(_message(role, "\n\n".join(shown), clock, kept))
    return _finish(conversation, metadata, created_ms, last_ms)


def _message(role: str, content: str, ms: int | None, metadata: dict[str, Any]) -> dict[str, Any]:
    return {
        "role": role,
        "content": content,
        "timestamp": iso_from_ms(now_ms() if ms is None else ms),
        "metadata": metadata,
    }


def _finish(
    conversation: Conversation, metadata: dict[str, Any], created_ms: int | None, last_ms: int | None
) -> Conversation:
    if not conversation.messages:
        conversation.skip = "It has no user or assistant text on its current branch."
        return conversation
    created = iso_from_ms(created_ms) if created_ms is not None else None
    last = iso_from_ms(last_ms) if last_ms is not None else None
    conversation.fields = {"display_name": conversation.title, "metadata": metadata}
    conversation.fields.update(conversation_times(created, created_ms, last, last_ms, conversation.messages))
    return conversation
