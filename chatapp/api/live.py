"""Live: a session's channel of events, and stopping its running reply."""

from __future__ import annotations

import json
import queue
from collections.abc import Iterator
from typing import Any

from flask import Blueprint, Response, current_app, request
from werkzeug.exceptions import BadRequest, Conflict, ServiceUnavailable

from chatapp import events
from chatapp.api.endpoint import endpoint
from chatapp.errors import error_body
from chatapp.schemas import events_query_schema, message_schema, stop_schema
from chatapp.services import chat
from chatapp.services.live import Hub
from chatapp.storage import StoreUnavailable, get_store
from chatapp.storage.live import Event, Joined, event_id_key, is_event_id
from chatapp.web import sse
from chatapp.web.auth import access, current_principal
from chatapp.web.limits import rate_limited

bp = Blueprint("live", __name__)

RECONNECT_MS = 2000  # what EventSource waits before reconnecting (the `retry:` field)
NOTHING_RUNNING = "No reply is being written in this session; there is nothing to stop."
LOST = (
    "The reply was lost: the server writing it stopped before it ended. Your message is saved; "
    "press Retry to ask again."
)


def _frame(event_id: str | None, kind: str, data: dict[str, Any]) -> str:
    head = f"id: {event_id}\n" if event_id and event_id != "0-0" else ""
    return head + f"event: {kind}\ndata: {json.dumps(data, separators=(',', ':'), ensure_ascii=False)}\n\n"


def _shaped(event: Event) -> dict[str, Any]:
    """An event's data in the API's shapes (a stored message as the messages endpoints show it)."""
    data = event.data
    if event.kind == "message":
        return message_schema.dump(data)
    if isinstance(data.get("assistant_message"), dict):
        stored = data["assistant_message"]
        if isinstance(data.get("index"), int):
            stored = {**stored, "index": data["index"]}
        data = {**data, "assistant_message": message_schema.dump(stored)}
    return data


def _start(joined: Joined, resume: str | None) -> tuple[list[str], str]:
    """The frames a new listener gets first, and the id it then follows the stream from.

    Resuming within what the stream still holds: nothing first, then every later event.
    Otherwise (a new listener, or one that was away longer than the stream keeps events):
    ``reset`` if it missed some, then the running reply so far as one ``delta``.
    """
    newest = joined.newest
    if resume is not None:
        missed = joined.oldest is not None and event_id_key(resume) < event_id_key(joined.oldest)
        if not missed:
            return [], resume
    frames = []
    if resume is not None:
        frames.append(_frame(newest, "reset", {"session_id": joined.session_id}))
    if joined.reply_id:
        began: dict[str, Any] = {"reply_id": joined.reply_id, "started_at": joined.started_at}
        if joined.replaces is not None:
            began["replaces"] = joined.replaces
        frames.append(_frame(newest, "reply", began))
        if joined.text:
            frames.append(_frame(newest, "delta", {"reply_id": joined.reply_id, "text": joined.text}))
    return frames, newest


class _LostReply:
    """Says so when the reply a listener watches was lost: its worker died (its claim ran out)
    or could not store its end, so no ``done`` or ``error`` will ever come.

    Checked at keep-alive time while a reply runs, and only after a second look: a reply
    that ended tells its listeners in the same step as it frees the session, so its last
    event may just be on the way.
    """

    def __init__(self, hub: Hub, joined: Joined) -> None:
        self.hub, self.joined = hub, joined
        self.running = joined.reply_id
        self.doubts = 0

    def saw(self, event: Event) -> None:
        if event.kind == "reply":
            self.running, self.doubts = event.data.get("reply_id"), 0
        elif event.kind in ("done", "error"):
            self.running = None

    def check(self) -> str:
        if self.running is None:
            return ""
        try:
            still = self.hub.store().running_reply(self.joined.session_id, self.joined.shard) == self.running
        except StoreUnavailable:
            return ""  # no news is not bad news
        self.doubts = 0 if still else self.doubts + 1
        if self.doubts < 2:
            return ""
        data = {"reply_id": self.running, "assistant_message": None, **error_body(ServiceUnavailable(LOST))}
        self.running = None
        return _frame(None, "error", data)


def _events(hub: Hub, joined: Joined, after: str, first: list[str], keepalive: float) -> Iterator[str]:
    # Listening starts when the answer does (a response never sent holds nothing); it reads
    # from ``after``, so whatever happened since the join is not lost.
    listener = hub.listen(joined, after)
    events.emit_from(hub.app, events.live_changed, kind="listeners", delta=1)
    lost = _LostReply(hub, joined)
    try:
        # Sent at once: the headers go out with it, so the client knows it is connected.
        yield f"retry: {RECONNECT_MS}\n\n" + "".join(first)
        while True:
            try:
                event = listener.events.get(timeout=keepalive)
            except queue.Empty:
                yield ": keep-alive\n\n" + lost.check()  # proxies close connections that stay silent
                continue
            lost.saw(event)
            yield _frame(event.id, event.kind, _shaped(event))
            if event.kind == "session" and "deleted" in event.data.get("changes", ()):
                return
    finally:
        hub.leave(listener, joined.shard)
        events.emit_from(hub.app, events.live_changed, kind="listeners", delta=-1)


@bp.get("/sessions/<session_id>/events")
@access("visitor")
@endpoint(
    query=events_query_schema,
    responses={},
    errors=(400, 404),
    streams=True,
    error_text={200: "Server-Sent Events: `message`, `reply`, `delta`, `reasoning`, `done`, `error`, `session`"},
)
def session_events(session_id: str, query: dict[str, Any]):
    """The session's live channel: Server-Sent Events for `EventSource` (cookie) or a Bearer key.

    Events, each with an `id:`: `message` (a message stored, in the messages endpoints'
    shape, with its `index`: the history now ends with it, or with the messages told right
    after it, as an edit or a version shown replaces what was there from that index on),
    `reply` `{"reply_id", "started_at", "replaces"?}` (a reply begins; `replaces`: the index
    of the reply it regenerates, which it takes the place of when stored), `delta` and
    `reasoning` `{"reply_id", "text"}` (pieces of the reply), `done` `{"reply_id", "index",
    "assistant_message", "session", "stopped"?}` (the reply is stored at `index`), `error`
    `{"reply_id", "error", "assistant_message", "index"?, "session"}` (it failed or was stopped
    before any text; `assistant_message` is the text kept, or null), `session` `{"changes": ["renamed",
    "described", "archived", "unarchived", "pinned", "unpinned", "cleared" or "deleted"],
    "session"}`; the stream
    ends after `deleted`. A comment every CHATAPP_SSE_KEEPALIVE seconds (15) keeps idle
    connections open through proxies.

    A new listener first gets the running reply so far: `reply`, then its text as one
    `delta`. Reconnecting with `Last-Event-ID` (or `last_event_id`) resumes after that event
    with nothing lost or repeated; when the session's stream no longer holds it (it keeps
    ~1,000 events, for 15 minutes after the last), `reset` says to reload the history, and
    the running reply follows as for a new listener.
    """
    resume = request.headers.get("Last-Event-ID", "").strip() or query.get("last_event_id")
    if resume is not None and not is_event_id(resume):
        raise BadRequest("Last-Event-ID must be an event id such as 1732700000000-0.")
    joined = get_store().join_events(session_id, current_principal().owner)
    if joined is None:
        raise chat.not_found(session_id)
    first, after = _start(joined, resume)
    hub = Hub.of(current_app._get_current_object())  # type: ignore[attr-defined]
    keepalive = float(current_app.config["SSE_KEEPALIVE"])
    body = _events(hub, joined, after, first, keepalive)
    return Response(body, mimetype=sse.EVENT_STREAM, headers=sse.SSE_HEADERS)


@bp.post("/sessions/<session_id>/stop")
@access("visitor")
@rate_limited("messages")
@endpoint(responses={202: stop_schema}, errors=(404, 409))
def stop_reply(session_id: str):
    """Stop the reply being written in this session (the Stop button).

    The reply ends within a second, on whichever worker or host writes it; the text so far
    is stored marked `metadata.stopped = true` (nothing is stored when there was none yet),
    and the session's listeners and the poster's stream get its `done` (or `error`). 409 when
    no reply is running.
    """
    reply_id = get_store().stop_reply(session_id, current_principal().owner)
    if reply_id is None:
        raise chat.not_found(session_id)
    if not reply_id:
        raise Conflict(NOTHING_RUNNING)
    return stop_schema.dump({"session_id": session_id, "reply_id": reply_id, "stopping": True}), 202
