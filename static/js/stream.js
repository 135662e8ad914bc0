// A session's live channel: one EventSource on GET /api/sessions/{id}/events. The page shows
// what arrives here (in every tab on the session), so this only carries events; chat.js decides.
// The browser reconnects by itself after a network blip and resumes with Last-Event-ID; what
// it does not retry (the server refused: an answer other than 200) is handled here.

import { request } from "./api.js";

const KINDS = ["message", "reply", "delta", "reasoning", "done", "session", "reset"];
const REOPEN_MS = 3000; // after a refusal, e.g. while the store is down (the banner says so)
const READY_MS = 10000; // how long a send waits for the channel to open

export class Channel {
  // onEvent(kind, data): each event, plus "open" {resumed} (resumed: nothing can have been
  // missed) and "gone" (the session no longer exists).
  constructor(sessionId, onEvent) {
    this.sessionId = sessionId;
    this.onEvent = onEvent;
    this.lastId = "";
    this.closed = false;
    this.waiters = [];
    this.connect();
  }

  get url() {
    const base = `/api/sessions/${encodeURIComponent(this.sessionId)}/events`;
    // A new EventSource only resumes when told where from (the browser's own retries send the header).
    return this.lastId ? `${base}?last_event_id=${encodeURIComponent(this.lastId)}` : base;
  }

  connect() {
    const source = new EventSource(this.url);
    this.source = source;
    const mine = (handler) => (event) => {
      if (this.source === source && !this.closed) handler(event);
    };
    source.addEventListener(
      "open",
      mine(() => {
        this.onEvent("open", { resumed: this.lastId !== "" });
        this.settle(null);
      }),
    );
    const relay = (kind, event) => {
      if (event.lastEventId) this.lastId = event.lastEventId;
      this.onEvent(kind, JSON.parse(event.data));
    };
    for (const kind of KINDS) source.addEventListener(kind, mine((event) => relay(kind, event)));
    // "error" is both the server's event (a MessageEvent: a reply failed) and the browser's
    // word for a broken connection; a closed one was refused and is not retried by itself.
    source.addEventListener(
      "error",
      mine((event) => {
        if (event instanceof MessageEvent) relay("error", event);
        else if (source.readyState === EventSource.CLOSED) this.refused();
      }),
    );
  }

  // Asks why (404: the session is gone; 503: the store is down, and the banner shows), then
  // tries again, resuming where it was.
  async refused() {
    this.source.close();
    let failure = null;
    try {
      await request(`/api/sessions/${encodeURIComponent(this.sessionId)}`);
      failure = new Error("The live channel was refused.");
    } catch (error) {
      failure = error;
    }
    if (this.closed) return;
    this.settle(failure);
    if (failure.status === 404) {
      this.onEvent("gone", {});
    } else {
      this.timer = setTimeout(() => this.connect(), REOPEN_MS);
    }
  }

  settle(error) {
    for (const waiter of this.waiters.splice(0)) waiter(error);
  }

  // Resolves once the channel is open (so nothing sent from now on is missed); rejects if it
  // is refused or does not open in time.
  ready() {
    if (this.source.readyState === EventSource.OPEN) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => done(new Error("The live channel did not open in time.")), READY_MS);
      const done = (error) => {
        clearTimeout(timer);
        this.waiters = this.waiters.filter((w) => w !== done);
        if (error) reject(error);
        else resolve();
      };
      this.waiters.push(done);
    });
  }

  close() {
    this.closed = true;
    clearTimeout(this.timer);
    this.source.close();
    this.settle(new Error("The page stopped following this session."));
  }
}
