"""What the readers of import files share: the conversation they produce, the error that refuses
a file, times, and the nesting bound."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from chatapp.storage.keys import iso_from_ms

MAX_DEPTH = 64  # objects and arrays inside one conversation; real exports nest about 8 deep
ROLES = ("user", "assistant")
DATE_TIME = re.compile(r"^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(\.\d+)?([Zz]|([+-])(\d{2}):(\d{2}))$")


class BadFile(Exception):
    """The file cannot be imported; ``status`` 400 (not JSON) or 422 (the wrong shape)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass
class Conversation:
    """One conversation read from a file: ``fields`` are the session's (times as ISO text and
    ``created_ms``/``last_ms``), ``messages`` the stored message dicts; ``skip`` says why it is
    not imported."""

    index: int
    title: str | None
    source: str
    fields: dict[str, Any] = field(default_factory=dict)
    messages: list[dict[str, Any]] = field(default_factory=list)
    skip: str | None = None


def epoch_ms(text: str) -> int | None:
    """Milliseconds since 1970 of an RFC 3339 date-time, or None when it is not one."""
    found = DATE_TIME.match(text)
    if found is None:
        return None
    year, month, day, hour, minute, second = (int(found[i]) for i in range(1, 7))
    if not (1 <= month <= 12 and 1 <= day <= 31 and hour < 24 and minute < 60 and second <= 60):
        return None
    # Days from 1970-01-01 to the date (proleptic Gregorian; year 0 and leap seconds allowed).
    y = year - (month <= 2)
    era = y // 400
    yoe = y - era * 400
    doy = (153 * (month + (-3 if month > 2 else 9)) + 2) // 5 + day - 1
    days = era * 146097 + yoe * 365 + yoe // 4 - yoe // 100 + doy - 719468
    ms = ((days * 24 + hour) * 60 + minute) * 60_000 + second * 1000 + int(float(found[7] or "0") * 1000)
    if found[9]:
        offset = (int(found[10]) * 60 + int(found[11])) * 60_000
        ms -= offset if found[9] == "+" else -offset
    return ms


def json_number(value: Any) -> float:
    """A number the parser read exactly (ijson gives Decimal for anything but an integer, which
    it keeps whole however long) as the float JSON means; BadFile when no float can hold it."""
    if not isinstance(value, Decimal):
        raise TypeError(f"not JSON: {type(value).__name__}")
    number = float(value)
    if not math.isfinite(number):
        raise BadFile(400, "The file holds a number too large to represent.")
    return number


def seconds_ms(value: Any) -> int | None:
    """Epoch seconds (ChatGPT, Open WebUI; milliseconds or nanoseconds when that large) as ms."""
    if isinstance(value, Decimal) and value.is_finite():
        value = float(value)
    if isinstance(value, bool) or not isinstance(value, int | float) or value != value or value < 0:
        return None
    if value > 1e17:
        value /= 1e9
    elif value > 1e11:
        value /= 1e3
    return int(value * 1000) if value < 1e11 else None


def check_depth(value: Any, where: str) -> None:
    """Refuse a conversation nested deeper than MAX_DEPTH, without recursing."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        children = item.values() if isinstance(item, dict) else item
        if depth > MAX_DEPTH:
            raise BadFile(400, f"{where} nests objects and arrays more than {MAX_DEPTH} deep.")
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))


def conversation_times(
    created: str | None, created_ms: int | None, last: str | None, last_ms: int | None, messages: list[dict[str, Any]]
) -> dict[str, Any]:
    """created_at/last_activity as given (their ms beside them); missing ones from the messages."""
    stamps = [ms for ms in (epoch_ms(m["timestamp"]) for m in messages) if ms is not None]
    if created is None or created_ms is None:
        created_ms = min(stamps) if stamps else last_ms
        created = iso_from_ms(created_ms) if created_ms is not None else None
    if last is None or last_ms is None:
        last_ms = max(stamps) if stamps else created_ms
        last = iso_from_ms(last_ms) if last_ms is not None else None
    return {"created_at": created, "created_ms": created_ms, "last_activity": last, "last_ms": last_ms}
