"""Versions of a message: a regenerated reply or an edited message keeps the earlier ones.

A message shows one version: its ``content``, ``timestamp`` and ``metadata`` are the shown
version's, as always, so the history (and what the model reads) is the shown versions in
order. The others are kept on the message itself, in ``versions`` (in order), and
``version`` says where the shown one stands among them::

    every version = versions[:version] + [the shown one] + versions[version:]

A version is ``{content, timestamp, metadata}``. A user message's versions also carry
``replies``: the messages that followed that version while it was shown (its reply, with
that reply's own versions), so showing an earlier question brings back the answers to it.
A message with a single version has neither field. These are plain functions on message
dicts; the store compares and writes the JSON (chatapp.storage).
"""

from __future__ import annotations

import copy
from typing import Any

from chatapp.storage import Message

FIELDS = ("content", "timestamp", "metadata")


def _entry(message: Message) -> dict[str, Any]:
    return {name: copy.deepcopy(message[name]) for name in FIELDS if name in message}


def shown_at(message: Message) -> int:
    """Where the shown version stands among all of them (0-based)."""
    others = message.get("versions") or []
    at = message.get("version", len(others))
    return at if isinstance(at, int) and 0 <= at <= len(others) else len(others)


def count(message: Message) -> int:
    return len(message.get("versions") or []) + 1


def all_versions(message: Message) -> list[dict[str, Any]]:
    """Every version in order, the shown one as a plain entry (no ``replies``)."""
    others = copy.deepcopy(list(message.get("versions") or []))
    at = shown_at(message)
    return [*others[:at], _entry(message), *others[at:]]


def _showing(role: str, versions: list[dict[str, Any]], at: int) -> Message:
    chosen = versions[at]
    message: Message = {"role": role, **{name: chosen[name] for name in FIELDS if name in chosen}}
    message.setdefault("metadata", {})
    others = versions[:at] + versions[at + 1 :]
    if others:
        message["versions"] = others
        message["version"] = at
    return message


def with_new_version(previous: Message, new: Message) -> Message:
    """A regenerated reply: ``new`` shown, as the last version, after every one of ``previous``."""
    versions = [*all_versions(previous), _entry(new)]
    return _showing(new["role"], versions, len(versions) - 1)


def edited(previous: Message, new: Message, replies: list[Message]) -> Message:
    """An edited user message: ``new`` shown, as the last version; the version it replaces
    keeps ``replies`` (the messages that followed it)."""
    versions = all_versions(previous)
    versions[shown_at(previous)]["replies"] = copy.deepcopy(replies)
    versions.append(_entry(new))
    return _showing(previous["role"], versions, len(versions) - 1)


def showing(message: Message, at: int, following: list[Message]) -> tuple[Message, list[Message]]:
    """Version ``at`` of the message shown instead: the message, and what follows it now.

    For a user message, ``following`` (what followed the version shown so far) is kept with
    that version, and the replies kept with version ``at`` follow instead. A reply's versions
    change nothing after it.
    """
    versions = all_versions(message)
    if message["role"] != "user":
        return _showing(message["role"], versions, at), following
    versions[shown_at(message)]["replies"] = copy.deepcopy(following)
    replies = versions[at].pop("replies", None) or []
    return _showing(message["role"], versions, at), replies
