"""Export sessions as chatapp's JSON document, as Markdown, or as a zip of Markdown files.

Each is a generator of bytes over pages of messages (``SessionStore.message_pages``), so an
export of 100,000 messages holds one page at a time. The JSON carries each message exactly as
stored (a later field such as ``versions`` included) and every session field
(``storage.transfer.exported_session``): ``import`` reads it back unchanged.

    {"format": "chatapp.export", "version": 1, "exported_at": "...",
     "sessions": [{<session fields>, "messages": [{<message>}, ...]}, ...]}
"""

from __future__ import annotations

import json
import re
import unicodedata
import zipfile
from collections.abc import Iterable, Iterator, Mapping
from datetime import UTC, datetime
from typing import IO, Any, cast
from urllib.parse import quote

from chatapp.services.conversations import epoch_ms
from chatapp.storage import Session, SessionStore
from chatapp.storage.keys import iso_from_ms, now_ms

FORMAT, VERSION = "chatapp.export", 1
NOT_IN_A_NAME = re.compile(r"[^\w\- .,()'&+]+")
FENCE = re.compile(r"^\s{0,3}(`{3,}|~{3,})", re.MULTILINE)


def _compact(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def json_export(store: SessionStore, session_ids: Iterable[str], owner: str | None) -> Iterator[bytes]:
    """The export document, a session at a time and a page of messages at a time; a session
    deleted since it was chosen is left out."""
    yield f'{{"format":"{FORMAT}","version":{VERSION},"exported_at":"{iso_from_ms(now_ms())}","sessions":['.encode()
    first = True
    for session_id in session_ids:
        pages = store.message_pages(session_id, owner)
        head = store.export_page(session_id, owner, 0, 0)
        if head is None:
            continue
        yield (("" if first else ",\n") + _compact(head[0])[:-1] + ',"messages":[').encode()
        first = False
        separator = ""
        for page in pages:
            yield (separator + ",".join(page)).encode()
            separator = ","
        yield b"]}"
    yield b"]}\n"


def title_of(session: Mapping[str, Any], personas: Mapping[str, str]) -> str:
    """What a person calls the session: its title or name, else its persona and day."""
    for name in ("display_name", "title"):  # the name the user gave wins
        if isinstance(session.get(name), str) and session[name].strip():
            return str(session[name]).strip()
    persona = personas.get(session.get("persona") or "", session.get("persona") or "Session")
    return f"{persona} {str(session.get('created_at') or '')[:10]}".strip()


def _when(stamp: Any) -> str:
    ms = epoch_ms(stamp) if isinstance(stamp, str) else None
    if ms is None:
        return str(stamp or "")
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M UTC")


def _closed_fences(content: str) -> str:
    """The content as is; a code block it leaves open is closed, so the next heading stays one."""
    fences = FENCE.findall(content)
    if len(fences) % 2:
        return content.rstrip("\n") + "\n" + fences[-1] + "\n"
    return content


def markdown(
    session: Session, pages: Iterable[list[str]], personas: Mapping[str, str], user: str | None = None
) -> Iterator[str]:
    """A session for people: a heading, the persona, dates, then each message with its author
    and time; the content as written (code blocks intact)."""
    persona = personas.get(session["persona"], session["persona"])
    yield f"# {title_of(session, personas)}\n\n"
    yield f"- Persona: {persona} (`{session['persona']}`)\n"
    yield f"- Created: {_when(session.get('created_at'))}\n"
    yield f"- Last activity: {_when(session.get('last_activity'))}\n"
    yield f"- Messages: {session.get('message_count', 0)}\n"
    if session.get("description"):
        yield f"- Description: {session['description']}\n"
    for page in pages:
        for doc in page:
            message = json.loads(doc)
            author = (user or "User") if message.get("role") == "user" else persona
            yield f"\n---\n\n### {author} · {_when(message.get('timestamp'))}\n\n"
            yield _closed_fences(str(message.get("content", ""))).rstrip("\n") + "\n"


def markdown_export(
    store: SessionStore, session_id: str, owner: str | None, personas: Mapping[str, str]
) -> Iterator[bytes]:
    head = store.export_page(session_id, owner, 0, 0)
    if head is None:
        return
    for text in markdown(head[0], store.message_pages(session_id, owner), personas):
        yield text.encode()


def file_stem(title: str) -> str:
    """A file name (without extension) from a title: letters of any script, digits and a few
    marks; nothing a file system or a shell trips on."""
    stem = NOT_IN_A_NAME.sub("-", unicodedata.normalize("NFC", title))
    stem = re.sub(r"[-\s]*-[-\s]*", "-", stem).strip(" .-")[:80].strip(" .-")
    return stem or "session"


def attachment(filename: str) -> str:
    """A Content-Disposition header naming ``filename`` (RFC 6266, with an ASCII fallback)."""
    ascii_name = unicodedata.normalize("NFKD", filename).encode("ascii", "ignore").decode()
    ascii_name = re.sub(r"[^A-Za-z0-9 ._()+,&-]+", "-", ascii_name).strip(" -") or "export"
    header = f'attachment; filename="{ascii_name}"'
    if ascii_name != filename:
        header += f"; filename*=UTF-8''{quote(filename, safe='')}"
    return header


class _Sink:
    """Where the zip is written: what accumulated is taken after each piece (zipfile writes an
    unseekable stream with data descriptors, so nothing is written twice)."""

    def __init__(self) -> None:
        self.parts: list[bytes] = []

    def write(self, data: bytes) -> int:
        self.parts.append(bytes(data))
        return len(data)

    def flush(self) -> None:
        pass

    def close(self) -> None:
        pass

    def take(self) -> bytes:
        data, self.parts = b"".join(self.parts), []
        return data


def zip_export(
    store: SessionStore, session_ids: Iterable[str], owner: str | None, personas: Mapping[str, str]
) -> Iterator[bytes]:
    """A zip of one Markdown file per session, named after its title (repeated names numbered)."""
    sink = _Sink()
    used: set[str] = set()
    with zipfile.ZipFile(cast(IO[bytes], sink), "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for session_id in session_ids:
            head = store.export_page(session_id, owner, 0, 0)
            if head is None:
                continue
            stem = file_stem(title_of(head[0], personas))
            name, n = f"{stem}.md", 1
            while name.casefold() in used:
                n += 1
                name = f"{stem} ({n}).md"
            used.add(name.casefold())
            info = zipfile.ZipInfo(name, date_time=datetime.now(UTC).timetuple()[:6])
            info.compress_type = zipfile.ZIP_DEFLATED
            with archive.open(info, "w") as entry:
                for text in markdown(head[0], store.message_pages(session_id, owner), personas):
                    entry.write(text.encode())
                    if len(sink.parts) > 16:
                        yield sink.take()
            yield sink.take()
    yield sink.take()
