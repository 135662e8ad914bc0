// The conversation: the message log, the composer, sending with a streamed reply, Stop and Retry.

import { ApiError, describe, request, requestJSON } from "./api.js";
import { messageElement } from "./render.js";
import { readEvents } from "./stream.js";

const $ = (id) => document.getElementById(id);
const els = {
  messages: $("messages"),
  typing: $("typing"),
  typingText: $("typing-text"),
  alert: $("chat-alert"),
  alertText: $("chat-alert-text"),
  retry: $("retry-button"),
  composer: $("composer"),
  input: $("message-input"),
  send: $("send-button"),
  stop: $("stop-button"),
  sessionName: $("session-name"),
  sessionPersona: $("session-persona"),
  older: $("older-button"),
};

const state = {
  sessionId: document.body.dataset.sessionId || null,
  // A first session lives in the cookie until used (a page view stores nothing): its id until then.
  unwrittenId: document.body.dataset.unwrittenSessionId || null,
  storing: null,
  persona: null,
  controller: null,
  busy: false,
};
let personas = {};
const storedAs = new Map(); // unwritten id -> stored id, once stored

// The shown session's id as the server lists it (it may still be shown by its unwritten id).
export function currentSessionId() {
  return storedAs.get(state.sessionId) || state.sessionId;
}

export function unwrittenSessionId() {
  return state.unwrittenId;
}

// Stores the visitor's unwritten session (once; callers share the request). The page goes on
// showing it by its old id, which the server knows as the stored one, until the next message.
export function storeUnwritten() {
  if (!state.unwrittenId) return Promise.resolve();
  if (!state.storing) {
    const unwritten = state.unwrittenId;
    state.storing = requestJSON(`/sessions/${encodeURIComponent(unwritten)}/start`, { method: "POST" })
      .then((data) => {
        storedAs.set(unwritten, data.session.session_id);
        state.unwrittenId = null;
        delete document.body.dataset.unwrittenSessionId;
      })
      .finally(() => {
        state.storing = null;
      });
  }
  return state.storing;
}

// --- messages -------------------------------------------------------------------------
function personaName() {
  return (state.persona && state.persona.name) || els.sessionPersona.textContent;
}

function messageFor(message, extraClass) {
  return messageElement(message, personaName(), extraClass);
}

function addMessage(message, extraClass) {
  const el = messageFor(message, extraClass);
  els.messages.append(el);
  el.scrollIntoView({ block: "end" });
  return el;
}

function renderConversation(persona, messages) {
  const greeting = messageFor({ role: "assistant", content: persona.greeting }, "msg-greeting");
  els.messages.replaceChildren(greeting, ...messages.map((m) => messageFor(m)));
  const last = els.messages.lastElementChild;
  if (last) last.scrollIntoView({ block: "end" });
}

function setCurrent(session, persona) {
  state.sessionId = session.session_id;
  state.persona = persona || personas[session.persona] || personas.default;
  document.body.dataset.sessionId = session.session_id;
  els.sessionName.textContent = session.display_name || "Chat";
  els.sessionPersona.textContent = state.persona.name;
  els.typingText.textContent = `${state.persona.name} is typing…`;
  els.input.disabled = false;
  els.send.disabled = false;
}

// A first message stores the unwritten session it was sent to, under a new id: go on with that one.
function adoptStoredId(sentTo, storedId) {
  if (!storedId || storedId === sentTo) return;
  if (state.unwrittenId === sentTo) {
    state.unwrittenId = null;
    delete document.body.dataset.unwrittenSessionId;
  }
  if (state.sessionId === sentTo) {
    state.sessionId = storedId;
    document.body.dataset.sessionId = storedId;
  }
}

// Show another session (just created, or switched to) with its newest messages, in place of
// this one; `olderBefore` is the history's next_before (null when it holds them all).
export function openConversation(session, persona, messages, olderBefore = null) {
  setCurrent(session, persona);
  renderConversation(state.persona, messages);
  setOlder(olderBefore);
  hideAlert();
}

// --- older messages, a page at a time ---------------------------------------------------
const OLDER_PAGE = 100;

function setOlder(before) {
  els.older.dataset.before = before === null || before === undefined ? "0" : String(before);
  els.older.hidden = !(Number(els.older.dataset.before) > 0);
}

async function loadOlder() {
  const sessionId = state.sessionId;
  els.older.disabled = true;
  try {
    const query = `limit=${OLDER_PAGE}&before=${encodeURIComponent(els.older.dataset.before)}`;
    const page = await requestJSON(`/api/sessions/${encodeURIComponent(sessionId)}/messages?${query}`);
    if (state.sessionId !== sessionId) return;
    const greeting = els.messages.querySelector(".msg-greeting");
    const older = page.messages.map((m) => messageFor(m));
    if (greeting) greeting.after(...older);
    else els.messages.prepend(...older);
    setOlder(page.next_before);
  } catch (error) {
    showAlert(`Could not load earlier messages: ${describe(error)}`, false);
  } finally {
    els.older.disabled = false;
  }
}

// --- alerts ---------------------------------------------------------------------------
function showAlert(text, canRetry) {
  els.alertText.textContent = text;
  els.retry.hidden = !canRetry;
  els.alert.hidden = false;
}

function hideAlert() {
  els.alert.hidden = true;
  els.retry.hidden = true;
}

// --- sending and streaming ------------------------------------------------------------
// What the status line says while the reply has no text yet: typing, or thinking while a
// reasoning model sends only its thoughts.
function setWaiting(thinking) {
  els.typingText.textContent = `${personaName()} is ${thinking ? "thinking" : "typing"}…`;
}

function setBusy(busy) {
  state.busy = busy;
  setWaiting(false);
  els.send.disabled = busy || !state.sessionId;
  els.stop.hidden = !busy;
  els.typing.hidden = !busy;
  els.messages.setAttribute("aria-busy", String(busy));
}

// Stops the reply being received, if any.
export function stopReply() {
  if (state.controller) state.controller.abort();
}

// One exchange with the server: a message post or a retry. Returns when it is over.
async function exchange(url, payload, text) {
  hideAlert();
  setBusy(true);
  const controller = new AbortController();
  state.controller = controller;
  const sessionId = state.sessionId;
  let userStored = payload === null; // a retry stores no user message
  let bubble = null;
  let partial = "";
  let failure = null;
  const ensureBubble = () => {
    if (!bubble) {
      bubble = addMessage({ role: "assistant", content: "", timestamp: new Date().toISOString() }, "msg-streaming");
      els.typing.hidden = true;
    }
    return bubble;
  };
  const storedUser = (message) => {
    userStored = true;
    addMessage(message);
    if (els.input.value === text) els.input.value = "";
  };
  try {
    const response = await request(url, {
      method: "POST",
      headers: payload === null ? { Accept: "text/event-stream" } : { "Content-Type": "application/json", Accept: "text/event-stream" },
      body: payload === null ? undefined : JSON.stringify(payload),
      signal: controller.signal,
    });
    const type = response.headers.get("Content-Type") || "";
    if (type.startsWith("text/event-stream")) {
      await readEvents(response, (event, data) => {
        if (state.sessionId !== sessionId) return;
        if (event === "user_message") {
          storedUser(data);
        } else if (event === "reasoning") {
          if (!bubble) setWaiting(true); // the thoughts themselves are kept with the stored reply
        } else if (event === "delta") {
          partial += data.text || "";
          ensureBubble().querySelector(".msg-text").textContent = partial;
        } else if (event === "done") {
          const stored = messageFor(data.assistant_message);
          ensureBubble().replaceWith(stored);
          bubble = stored;
          adoptStoredId(sessionId, data.session && data.session.session_id);
        } else if (event === "error") {
          failure = new ApiError((data.error && data.error.code) || 502, (data.error && data.error.message) || "The assistant failed.");
          if (data.assistant_message) {
            // the text so far, stored and marked incomplete
            const stored = messageFor(data.assistant_message);
            ensureBubble().replaceWith(stored);
            bubble = stored;
          }
        }
      });
    } else {
      const data = await response.json();
      if (state.sessionId === sessionId) {
        if (data.user_message) storedUser(data.user_message);
        if (data.assistant_message) addMessage(data.assistant_message);
        adoptStoredId(sessionId, data.session_id);
      }
    }
  } catch (error) {
    if (error.name === "AbortError") {
      if (bubble) {
        bubble.classList.add("msg-interrupted");
      } else if (userStored) {
        showAlert("Stopped before the assistant answered.", true);
      } else {
        showAlert("Stopped. Your message is still in the box.", false);
      }
    } else {
      failure = error;
    }
  } finally {
    if (bubble) bubble.classList.remove("msg-streaming");
    state.controller = null;
    setBusy(false);
  }
  if (failure && payload === null && failure instanceof ApiError && [404, 405].includes(failure.status)) {
    showAlert("Asking again is not available on this server; please send your message again.", false);
  } else if (failure && payload === null && failure.status === 409) {
    showAlert(describe(failure), false);
  } else if (failure) {
    let prefix = "Your message was not sent: ";
    if (bubble) prefix = "The reply broke off: ";
    else if (userStored) prefix = "Your message was saved, but the assistant did not answer: ";
    // 413: the conversation no longer fits the model; asking again cannot help
    showAlert(prefix + describe(failure), userStored && failure.status !== 413);
  }
}

function sendMessage() {
  const text = els.input.value;
  if (!text.trim() || state.busy || !state.sessionId) return;
  const url = `/api/sessions/${encodeURIComponent(state.sessionId)}/messages`;
  exchange(url, { content: text }, text);
}

async function retry() {
  if (state.busy || !state.sessionId) return;
  const url = `/api/sessions/${encodeURIComponent(state.sessionId)}/reply`;
  await exchange(url, null, null);
}

// Wires the composer up; `known` maps persona ids to {id, name, greeting, description}.
export function startChat(known) {
  personas = known;
  els.composer.addEventListener("submit", (event) => {
    event.preventDefault();
    sendMessage();
  });
  els.input.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      sendMessage();
    }
  });
  els.stop.addEventListener("click", stopReply);
  els.retry.addEventListener("click", retry);
  els.older.addEventListener("click", loadOlder);
  setOlder(els.older.dataset.before);
  if (state.sessionId) {
    // The server rendered this session: its persona is the one it named.
    const name = els.sessionPersona.textContent;
    state.persona = Object.values(personas).find((p) => p.name === name) || personas.default;
    els.input.disabled = false;
    els.send.disabled = false;
  }
}
