// The message log of the shown session: its history, the reply being written (a bubble that
// grows with each piece, after "typing…" or "thinking…" while it has no words yet), older
// messages a page at a time, day separators, and where the view is: it follows the newest
// message while the reader is at the bottom, and offers "Jump to latest" once they scroll up.
// Each stored message carries its index in the session (data-index): a message told at index i
// is the session's message i, and the history now ends there (an edit, or another version
// shown, replaces what followed). render.js builds each message; chat.js says what to show.

import { formatDay, messageElement } from "./render.js";

const $ = (id) => document.getElementById(id);
const els = {
  messages: $("messages"),
  typing: $("typing"),
  typingText: $("typing-text"),
  older: $("older-button"),
  jump: $("jump-button"),
};
const NEAR_BOTTOM_PX = 40; // this close to the end counts as reading the newest message

let persona = { name: "", greeting: "" };
// The reply being written: {id, text, thinking, bubble (null until its first words), replaces
// (the index of the reply it regenerates, hidden meanwhile)}.
let live = null;
// This tab's own message or retry on its way: true while posted, then the reply's id until
// the channel tells of it (the answer and the channel's events may come in either order).
let waiting = false;
let told = new Set(); // replies the channel told of, so a late answer does not wait for them
let following = true; // the view keeps the newest message in sight
let onChange = () => {};

// hook(): called whenever busy() or the last messages may have changed.
export function onBusyChange(hook) {
  onChange = hook;
}

export function busy() {
  return waiting !== false || live !== null;
}

// A new session is shown: nothing is running in it as far as this page knows.
export function reset(shown) {
  persona = shown;
  live = null;
  waiting = false;
  told = new Set();
  following = true;
  showStatus();
}

// --- where the view is ----------------------------------------------------------------
function nearBottom() {
  const box = els.messages;
  return box.scrollHeight - box.scrollTop - box.clientHeight <= NEAR_BOTTOM_PX;
}

// Shows the newest message and follows from now on.
export function scrollToLatest() {
  following = true;
  els.messages.scrollTop = els.messages.scrollHeight;
  els.jump.hidden = true;
}

// After the log grew or changed: keep following, or offer the way back down.
function grew() {
  if (following) scrollToLatest();
  else els.jump.hidden = nearBottom();
}

// The page's own history is shown: mark its days, open at the newest message, and from now on
// follow it while the reader is at the bottom.
export function startFollowing() {
  els.messages.addEventListener("scroll", () => {
    following = nearBottom();
    els.jump.hidden = following;
  });
  els.jump.addEventListener("click", scrollToLatest);
  // The box shrinks when the composer grows (or the window does): keep the end in sight.
  const keep = () => {
    if (following) els.messages.scrollTop = els.messages.scrollHeight;
  };
  new ResizeObserver(keep).observe(els.messages);
  window.addEventListener("load", keep); // late layout (fonts, the stylesheet) moves the end
  markDays();
  scrollToLatest();
  requestAnimationFrame(keep);
}

// --- the messages ---------------------------------------------------------------------
function stored() {
  return [...els.messages.querySelectorAll(".msg[data-index]")];
}

function element(message, index, extraClass) {
  return messageElement(message, persona.name, extraClass, index);
}

function greeting() {
  return element({ role: "assistant", content: persona.greeting }, null, "msg-greeting");
}

// Day separators (Today, Yesterday, a date) before the first message of each day, in local time.
function markDays() {
  for (const old of els.messages.querySelectorAll(".day-separator")) old.remove();
  let last = "";
  for (const article of els.messages.querySelectorAll(".msg")) {
    const time = article.querySelector("time[datetime]");
    const date = time && new Date(time.dateTime);
    if (!date || Number.isNaN(date.getTime())) continue;
    const day = date.toDateString();
    if (day === last) continue;
    last = day;
    const separator = document.createElement("p");
    separator.className = "day-separator";
    separator.textContent = formatDay(date);
    article.before(separator);
  }
}

function changed() {
  markDays();
  grew();
  onChange();
}

export function setOlder(before) {
  els.older.dataset.before = before === null || before === undefined ? "0" : String(before);
  els.older.hidden = !(Number(els.older.dataset.before) > 0);
}

// The history (the newest messages, oldest first) after the greeting; `before`: how many older
// ones there are (the history's next_before: the index of the first one here). A reply being
// written stays at the end. Opens at the newest message.
export function showHistory(messages, before) {
  const first = Number(before) || 0;
  const items = [greeting(), ...messages.map((m, n) => element(m, first + n))];
  if (live && live.bubble) items.push(live.bubble);
  els.messages.replaceChildren(...items);
  hideReplaced();
  setOlder(before);
  following = true;
  changed();
}

export function olderBefore() {
  return els.older.dataset.before;
}

// Older messages (a page before those shown), after the greeting; the view stays where it was.
export function showOlder(messages, before) {
  const first = Number(before) || 0;
  const shownFirst = Number(els.older.dataset.before) || 0;
  const older = messages.map((m, n) => element(m, first + n)).filter((el) => Number(el.dataset.index) < shownFirst);
  const box = els.messages;
  const fromBottom = box.scrollHeight - box.scrollTop;
  const head = els.messages.querySelector(".msg-greeting");
  if (head) head.after(...older);
  else els.messages.prepend(...older);
  setOlder(before);
  markDays();
  box.scrollTop = box.scrollHeight - fromBottom;
  onChange();
}

// Stored messages this page accounts for (shown, or older than those shown).
export function shownCount() {
  const all = stored();
  return all.length ? Number(all[all.length - 1].dataset.index) + 1 : Number(els.older.dataset.before) || 0;
}

// A stored message at its index (a message event, a version shown): it replaces whatever the
// page shows from that index on (one without an index comes last). Answers false when the page
// misses messages before it.
export function addMessage(message, index = message.index) {
  if (!Number.isInteger(index)) index = shownCount();
  if (index > shownCount()) return false;
  if (same(messageAt(index), message)) return true; // told again (a history read held it already)
  for (const el of stored()) if (Number(el.dataset.index) >= index) el.remove();
  const el = element(message, index);
  if (live && live.bubble) live.bubble.before(el);
  else els.messages.append(el);
  hideReplaced();
  changed();
  return true;
}

// Whether the shown element is this very message, in the same version.
function same(el, message) {
  if (!el) return false;
  const time = el.querySelector("time");
  const box = el.querySelector(".msg-versions");
  const total = (message.versions || []).length + 1;
  const at = Number.isInteger(message.version) ? message.version : total - 1;
  return (
    el.dataset.content === message.content &&
    el.classList.contains(message.role === "user" ? "msg-user" : "msg-assistant") &&
    (time ? time.getAttribute("datetime") : undefined) === message.timestamp &&
    (!box || (Number(box.dataset.versions) === total && Number(box.dataset.version) === at))
  );
}

// The shown message at this index, if any.
export function messageAt(index) {
  return els.messages.querySelector(`.msg[data-index="${Number(index)}"]`);
}

// The newest message and the last one of the user's, for the actions that apply to them.
export function lastMessages() {
  const all = stored();
  const last = all[all.length - 1] || null;
  const users = all.filter((el) => el.classList.contains("msg-user"));
  return { last, lastUser: users[users.length - 1] || null };
}

function hideReplaced() {
  for (const el of els.messages.querySelectorAll(".msg-replaced")) {
    el.classList.remove("msg-replaced");
    el.hidden = false;
  }
  if (live && Number.isInteger(live.replaces)) {
    const old = messageAt(live.replaces);
    if (old) {
      old.classList.add("msg-replaced");
      old.hidden = true;
    }
  }
}

// --- the reply being written --------------------------------------------------------------
function tell(id) {
  told.add(id);
  if (waiting === id) waiting = false;
}

// `true` while this tab posts, its reply's id once posted, `false` when nothing comes of it.
export function waitFor(what) {
  waiting = typeof what === "string" && told.has(what) ? false : what;
  showStatus();
}

// A reply begins (or, for a page that joins late, the channel's snapshot of it: its text so far
// follows). `replaces`: the index of the reply it regenerates, hidden while it is written.
export function replyBegan(id, replaces) {
  tell(id);
  if (live && live.bubble) live.bubble.remove();
  live = { id, text: "", thinking: false, bubble: null, replaces };
  hideReplaced();
  showStatus();
  grew();
}

export function replyPiece(id, text) {
  if (!live || live.id !== id) replyBegan(id);
  live.text += text;
  if (!live.bubble) {
    const now = { role: "assistant", content: "", timestamp: new Date().toISOString() };
    live.bubble = element(now, null, "msg-streaming");
    els.messages.append(live.bubble);
    markDays();
  }
  live.bubble.querySelector(".msg-text").textContent = live.text; // plain text until it is stored
  showStatus();
  grew();
}

// The model is thinking (its thoughts are kept with the stored reply, not shown).
export function replyThinking(id) {
  if (!live || live.id !== id) replyBegan(id);
  live.thinking = true;
  showStatus();
}

// The reply ended: `message` (stored at `index`, rendered) takes the bubble's place. Without
// one, a reply that was lost (`lost`) keeps its text so far on screen, marked as interrupted
// and not saved; otherwise the bubble goes.
export function replyEnded(id, message, index, lost = false) {
  if (id) tell(id);
  const bubble = live && live.bubble;
  live = null;
  hideReplaced();
  if (message && addMessage(message, index)) {
    if (bubble) bubble.remove();
  } else if (bubble && lost && bubble.querySelector(".msg-text").textContent.trim()) {
    bubble.classList.remove("msg-streaming");
    bubble.classList.add("msg-interrupted");
    bubble.querySelector(".msg-actions")?.remove();
    const note = document.createElement("p");
    note.className = "msg-note";
    note.dataset.note = "interrupted";
    note.textContent = "Interrupted: the connection was lost before this reply finished; it was not saved.";
    bubble.append(note);
  } else if (bubble) {
    bubble.remove();
  }
  showStatus();
  changed();
}

// The status line and aria-busy follow the reply: "typing…" (or "thinking…") until its first words.
function showStatus() {
  const isBusy = busy();
  els.typing.hidden = !isBusy || Boolean(live && live.bubble);
  els.typingText.textContent = `${persona.name} is ${live && live.thinking ? "thinking" : "typing"}…`;
  els.messages.setAttribute("aria-busy", String(isBusy));
  onChange();
}
