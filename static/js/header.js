// The shown session's title (in the page and the tab), how long it is kept, and Keep (a pin),
// from whatever last told of it: the page, a switch, the session's channel or a change here.

import { describe, requestJSON } from "./api.js";
import { formatTime, sessionTitle } from "./render.js";

const $ = (id) => document.getElementById(id);
const els = { name: $("session-name"), keep: $("session-keep"), text: $("session-keep-text"), button: $("keep-button") };
let shown = null;
const listeners = [];

// hook(session): called with the shown session whenever it is told of anew.
export function onSessionShown(hook) {
  listeners.push(hook);
}

export function shownSession() {
  return shown;
}

// The shown session is (or has changed to) `session`.
export function sessionShown(session) {
  shown = session;
  const title = sessionTitle(session);
  els.name.textContent = title;
  document.title = `${title} · chatapp`;
  showKeep();
  // A first session stored under its own id (it had none, or a provisional one): the address names it now.
  const path = window.location.pathname;
  const stored = !session.session_id.startsWith("session_unwritten_");
  if (stored && (path === "/" || path.startsWith("/sessions/session_unwritten_"))) {
    window.history.replaceState({ sessionId: session.session_id }, "", sessionPath(session.session_id));
  }
  for (const hook of listeners) hook(session);
}

// A message was stored in the shown session: its title (from the first one) and expiry follow.
let touched = null;
export function sessionTouched() {
  clearTimeout(touched);
  touched = setTimeout(async () => {
    const id = shown && shown.session_id;
    if (!id || id.startsWith("session_unwritten_")) return;
    try {
      const session = await requestJSON(`/api/sessions/${encodeURIComponent(id)}`);
      if (shown && shown.session_id === id) sessionShown(session);
    } catch {
      // the channel tells if it is gone
    }
  }, 300);
}

export function sessionPath(sessionId) {
  return `/sessions/${encodeURIComponent(sessionId)}`;
}

function showKeep() {
  const session = shown;
  if (!els.keep) return;
  els.button.hidden = false;
  els.button.disabled = false;
  if (session.archived) {
    els.text.textContent = "Archived: kept, and out of your list.";
    els.button.textContent = "Unarchive";
  } else if (session.pinned) {
    els.text.textContent = "Pinned: kept until you unpin it.";
    els.button.textContent = "Unpin";
  } else {
    const time = document.createElement("time");
    time.dateTime = session.expires_at || "";
    time.dataset.format = "expiry";
    formatTime(time);
    els.text.replaceChildren("Expires ", time, ". ");
    els.button.textContent = "Keep";
    els.button.hidden = !session.expires_at;
  }
}

async function keep() {
  const session = shown;
  const change = session.archived ? { archived: false } : { pinned: !session.pinned };
  els.button.disabled = true;
  try {
    const updated = await requestJSON(`/api/sessions/${encodeURIComponent(session.session_id)}`, {
      method: "PATCH",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(change),
    });
    if (shown && shown.session_id === updated.session_id) sessionShown(updated);
  } catch (error) {
    els.text.textContent = `Could not change it: ${describe(error)}`;
    els.button.disabled = false;
  }
}

// Starts from what the server rendered (the session's title, and how it is kept).
export function startHeader() {
  if (!els.keep) return;
  els.button.addEventListener("click", keep);
  const data = els.keep.dataset;
  shown = {
    session_id: document.body.dataset.sessionId,
    title: els.name.textContent,
    pinned: data.pinned === "true",
    archived: data.archived === "true",
    expires_at: data.expiresAt || null,
  };
  setInterval(() => {
    for (const time of document.querySelectorAll('time[data-format="expiry"]')) formatTime(time);
  }, 30000);
}
