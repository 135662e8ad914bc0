// The message log of the shown session: its history, the reply being written (a bubble that
// grows with each piece, after "typing…" or "thinking…" while it has no words yet), and older
// messages a page at a time. render.js builds each message from the server's own markup, with
// text only; chat.js says what to show, from the session's channel.

import { messageElement } from "./render.js";

const $ = (id) => document.getElementById(id);
const els = { messages: $("messages"), typing: $("typing"), typingText: $("typing-text"), older: $("older-button") };

let persona = { name: "", greeting: "" };
let live = null; // the reply being written: {id, text, thinking, bubble (null until its first words)}
// This tab's own message or retry on its way: true while posted, then the reply's id until
// the channel tells of it (the answer and the channel's events may come in either order).
let waiting = false;
let told = new Set(); // replies the channel told of, so a late answer does not wait for them
// The stored messages shown since the history was last loaded, by role, time and text: each is
// shown once, though the channel may tell of one that a history read just then holds too.
let shown = new Set();
let onChange = () => {};

// hook(): called whenever busy() may have changed.
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
  shown = new Set();
  showStatus();
}

// False for a message shown already; else notes it as shown.
function isNew(message) {
  const key = `${message.role}\n${message.timestamp}\n${message.content}`;
  if (shown.has(key)) return false;
  shown.add(key);
  return true;
}

function element(message, extraClass) {
  return messageElement(message, persona.name, extraClass);
}

function scrollToEnd() {
  const last = els.messages.lastElementChild;
  if (last) last.scrollIntoView({ block: "end" });
}

export function setOlder(before) {
  els.older.dataset.before = before === null || before === undefined ? "0" : String(before);
  els.older.hidden = !(Number(els.older.dataset.before) > 0);
}

// The history (the newest messages, oldest first) after the greeting; `before`: how many older
// ones there are (the history's next_before). A reply being written stays at the end.
export function showHistory(messages, before) {
  shown = new Set();
  messages.forEach(isNew);
  const greeting = element({ role: "assistant", content: persona.greeting }, "msg-greeting");
  const items = [greeting, ...messages.map((m) => element(m))];
  if (live && live.bubble) items.push(live.bubble);
  els.messages.replaceChildren(...items);
  setOlder(before);
  scrollToEnd();
}

export function olderBefore() {
  return els.older.dataset.before;
}

export function showOlder(messages, before) {
  messages.forEach(isNew);
  const greeting = els.messages.querySelector(".msg-greeting");
  const older = messages.map((m) => element(m));
  if (greeting) greeting.after(...older);
  else els.messages.prepend(...older);
  setOlder(before);
}

// Stored messages this page accounts for (shown, or older than those shown).
export function shownCount() {
  const shown = els.messages.querySelectorAll(".msg:not(.msg-greeting):not(.msg-streaming)").length;
  return Number(els.older.dataset.before) + shown;
}

// A newly stored message, at the end (before the reply being written, if any).
export function addMessage(message) {
  if (!isNew(message)) return;
  const el = element(message);
  if (live && live.bubble) live.bubble.before(el);
  else els.messages.append(el);
  scrollToEnd();
}

function tell(id) {
  told.add(id);
  if (waiting === id) waiting = false;
}

// `true` while this tab posts, its reply's id once posted, `false` when nothing comes of it.
export function waitFor(what) {
  waiting = typeof what === "string" && told.has(what) ? false : what;
  showStatus();
}

// A reply begins (or, for a page that joins late, the channel's snapshot of it: its text so far follows).
export function replyBegan(id) {
  tell(id);
  if (live && live.bubble) live.bubble.remove();
  live = { id, text: "", thinking: false, bubble: null };
  showStatus();
}

export function replyPiece(id, text) {
  if (!live || live.id !== id) replyBegan(id);
  live.text += text;
  if (!live.bubble) {
    live.bubble = element({ role: "assistant", content: "", timestamp: new Date().toISOString() }, "msg-streaming");
    els.messages.append(live.bubble);
  }
  live.bubble.querySelector(".msg-text").textContent = live.text;
  live.bubble.scrollIntoView({ block: "end" });
  showStatus();
}

// The model is thinking (its thoughts are kept with the stored reply, not shown).
export function replyThinking(id) {
  if (!live || live.id !== id) replyBegan(id);
  live.thinking = true;
  showStatus();
}

// The reply ended: `message` (its stored text, null if none) takes the bubble's place.
export function replyEnded(id, message) {
  if (id) tell(id);
  const bubble = live && live.bubble;
  live = null;
  if (message && isNew(message)) {
    const el = element(message);
    if (bubble) bubble.replaceWith(el);
    else els.messages.append(el);
    scrollToEnd();
  } else if (bubble) {
    bubble.remove();
  }
  showStatus();
}

// The status line and aria-busy follow the reply: "typing…" (or "thinking…") until its first words.
function showStatus() {
  const isBusy = busy();
  els.typing.hidden = !isBusy || Boolean(live && live.bubble);
  els.typingText.textContent = `${persona.name} is ${live && live.thinking ? "thinking" : "typing"}…`;
  els.messages.setAttribute("aria-busy", String(isBusy));
  onChange();
}
