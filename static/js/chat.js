// The shown session: its live channel, the composer, Stop and Retry.
// Everything the log shows comes from the session's channel (stream.js), in every tab showing
// it, this tab's own messages too: sending only posts (Prefer: respond-async, answered once the
// reply has started) and the message, the reply's pieces and its end arrive as events. A reply
// runs on the server whoever is connected: Stop asks the server to end it, from any tab.
// The actions on messages (Copy, Regenerate, Edit, a message's versions) are here too, and the
// composer's ways: focus back in the box after each action, a draft kept per session (local
// storage, cleared once sent), Enter adding a line on touch keyboards.

import { ApiError, describe, request, requestJSON } from "./api.js";
import * as log from "./conversation.js";
import { sessionShown, sessionTouched } from "./header.js";
import { prepareMessages } from "./render.js";
import { Channel } from "./stream.js";

const $ = (id) => document.getElementById(id);
const els = {
  alert: $("chat-alert"),
  alertText: $("chat-alert-text"),
  retry: $("retry-button"),
  composer: $("composer"),
  input: $("message-input"),
  send: $("send-button"),
  stop: $("stop-button"),
  sessionPersona: $("session-persona"),
  older: $("older-button"),
  messages: $("messages"),
  editing: $("editing"),
  editCancel: $("edit-cancel"),
  hint: $("composer-hint"),
};
const TOUCH = window.matchMedia("(pointer: coarse)").matches; // a touch keyboard: Enter adds a line
const DRAFTS = "chatapp.draft.";

const BUSY =
  "A reply is already being written in this session (perhaps in another tab). Your message is still in the box: " +
  "send it when the reply has finished, or Stop it first.";
const GONE = "This session was deleted. Start a new one with New, or open another with Sessions.";

const state = {
  sessionId: document.body.dataset.sessionId || null,
  // A first session lives in the cookie until used (a page view stores nothing): its id until then.
  unwrittenId: document.body.dataset.unwrittenSessionId || null,
  storing: null,
  persona: null,
  channel: null,
  held: null, // events held back while the log is brought up to date (a list), else null
  caughtUp: Promise.resolve(), // a new channel's check that the log misses nothing (catchUp)
  posting: false, // this tab's message or retry is on its way
  stopAsked: false, // Stop was pressed before the reply had started: stop it once it has
  gone: false, // the shown session was deleted
  editing: null, // the index of the user message being edited in the composer, else null
};
let personas = {};

const api = (sessionId, rest) => `/api/sessions/${encodeURIComponent(sessionId)}${rest}`;

// The shown session's id as the server lists it.
export function currentSessionId() {
  return state.sessionId;
}

export function unwrittenSessionId() {
  return state.unwrittenId;
}

// Stores the visitor's unwritten session (once; callers share the request) and goes on with it
// under its stored id, followed on its channel unless `follow` is false (the caller shows another).
export function storeUnwritten({ follow = true } = {}) {
  if (!state.unwrittenId) return Promise.resolve();
  if (!state.storing) {
    const unwritten = state.unwrittenId;
    state.storing = requestJSON(`/sessions/${encodeURIComponent(unwritten)}/start`, { method: "POST" })
      .then((data) => {
        state.unwrittenId = null;
        delete document.body.dataset.unwrittenSessionId;
        if (state.sessionId !== unwritten) return;
        state.sessionId = data.session.session_id;
        document.body.dataset.sessionId = state.sessionId;
        const draft = draftOf(unwritten); // the draft goes with it
        if (draft) saveDraft(state.sessionId, draft);
        saveDraft(unwritten, "");
        sessionShown(data.session);
        if (follow) followShown();
      })
      .finally(() => {
        state.storing = null;
      });
  }
  return state.storing;
}

// --- the channel ------------------------------------------------------------------------
// Opens the shown session's channel (closing any other); the unwritten session has none yet.
function followShown() {
  if (state.channel && state.channel.sessionId === state.sessionId) return state.channel;
  if (state.channel) state.channel.close();
  state.channel = null;
  state.held = null;
  if (state.sessionId && state.sessionId !== state.unwrittenId && !state.gone) {
    const sessionId = state.sessionId;
    state.channel = new Channel(sessionId, (kind, data) => {
      if (state.sessionId !== sessionId) return;
      if (state.held && kind !== "open") state.held.push([kind, data]);
      else handle(kind, data);
    });
  }
  return state.channel;
}

// One event from the channel (the log shows each stored message once, however often told).
function handle(kind, data) {
  if (kind === "open") {
    if (!data.resumed && !state.held) state.caughtUp = catchUp(); // (a reload under way reads the history anyway)
  } else if (kind === "message") {
    if (!log.addMessage(data)) reload(); // the page missed something before it
    sessionTouched();
  } else if (kind === "reply") {
    if (els.alert.dataset.about === "reply") hideAlert(); // a new reply (a Retry in another tab, say)
    log.replyBegan(data.reply_id, data.replaces);
  } else if (kind === "delta") {
    log.replyPiece(data.reply_id, data.text || "");
  } else if (kind === "reasoning") {
    log.replyThinking(data.reply_id);
  } else if (kind === "done") {
    log.replyEnded(data.reply_id, data.assistant_message, data.index);
    sessionTouched();
  } else if (kind === "error") {
    log.replyEnded(data.reply_id, data.assistant_message, data.index, !data.assistant_message && !data.stopped);
    sessionTouched();
    replyFailed(data);
  } else if (kind === "session") {
    sessionChanged(data.changes || [], data.session);
  } else if (kind === "reset") {
    log.replyEnded(null, null); // the running reply, if any, is told again next
    reload();
  } else if (kind === "gone") {
    gone();
  }
}

// Events wait (held) while the log is brought up to date, then go through in order.
function hold() {
  if (!state.held) state.held = [];
}

function release() {
  const queued = state.held || [];
  state.held = null;
  while (queued.length && !state.held) handle(...queued.shift());
  if (state.held) state.held.unshift(...queued); // held again (a reset): the rest wait their turn
}

// Reloads the shown history (a `reset`: the channel lost track), holding events meanwhile.
async function reload() {
  const sessionId = state.sessionId;
  hold();
  try {
    const history = await requestJSON(`/api/session/${encodeURIComponent(sessionId)}/history`);
    if (state.sessionId !== sessionId) return;
    log.showHistory(history.messages, history.next_before);
  } catch (error) {
    if (state.sessionId !== sessionId) return;
    if (error instanceof ApiError && error.status === 404) return gone();
    showAlert(`Could not reload this conversation: ${describe(error)}`, false);
  }
  release();
}

// A fresh channel tells only what happens from now on: if the log lacks something stored
// before it opened (after the page's history was read), reload the history.
async function catchUp() {
  const sessionId = state.sessionId;
  hold();
  try {
    const session = await requestJSON(api(sessionId, ""));
    if (state.sessionId !== sessionId) return;
    sessionShown(session);
    if (session.message_count !== log.shownCount()) return reload();
  } catch (error) {
    if (state.sessionId !== sessionId) return;
    if (error instanceof ApiError && error.status === 404) return gone();
  }
  release();
}

// --- what the channel tells -----------------------------------------------------------
function replyFailed(data) {
  const error = data.error || {};
  const text = error.message || "The assistant failed.";
  const canRetry = error.code !== 413; // the conversation no longer fits the model: asking again cannot help
  if (data.stopped && !data.assistant_message) showAlert("Stopped before the assistant answered.", true, "reply");
  else if (data.assistant_message) showAlert(`The reply broke off: ${text}`, canRetry, "reply");
  else showAlert(`Your message was saved, but the assistant did not answer: ${text}`, canRetry, "reply");
}

function sessionChanged(changes, session) {
  if (changes.includes("deleted")) return gone();
  if (session && session.session_id) sessionShown(session);
  if (changes.includes("cleared")) {
    log.showHistory([], 0);
    hideAlert();
  }
}

// The shown session no longer exists (deleted here, in another tab, or by the API).
function gone() {
  if (state.channel) state.channel.close();
  state.channel = null;
  state.held = null;
  state.gone = true;
  log.replyEnded(null, null);
  showAlert(GONE, false);
  refresh();
}

// --- the composer -----------------------------------------------------------------------
// Send and Stop follow whether a reply is on its way or running (in this tab or another).
function refresh() {
  const busy = log.busy();
  const usable = Boolean(state.sessionId) && !state.gone;
  els.input.disabled = !usable;
  els.send.disabled = busy || !usable;
  els.stop.hidden = !busy || !usable;
  if (!busy) els.stop.disabled = false;
  // Regenerate on the last reply, Edit on the last message of the user's; none while a reply runs.
  const { last, lastUser } = log.lastMessages();
  for (const button of els.messages.querySelectorAll('[data-action="regenerate"], [data-action="edit"]')) {
    const message = button.closest(".msg");
    const applies =
      button.dataset.action === "regenerate"
        ? message === last && message.classList.contains("msg-assistant")
        : message === lastUser;
    button.hidden = !applies || !usable;
    button.disabled = busy;
  }
  for (const button of els.messages.querySelectorAll(".msg-versions button")) {
    const box = button.closest(".msg-versions");
    const at = Number(box.dataset.version);
    const end = button.dataset.action === "previous" ? at <= 0 : at >= Number(box.dataset.versions) - 1;
    button.disabled = busy || end;
  }
  if (state.editing !== null && (!lastUser || Number(lastUser.dataset.index) !== state.editing)) stopEditing();
}

// `about` "reply": the alert tells how a reply ended, and goes when another one begins.
function showAlert(text, canRetry, about = "") {
  els.alertText.textContent = text;
  els.alert.dataset.about = about;
  els.retry.hidden = !canRetry;
  els.alert.hidden = false;
}

function hideAlert() {
  els.alert.hidden = true;
  els.retry.hidden = true;
}

// Posts a message (payload), a retry (null) or an edit (method PUT); the channel shows what follows.
async function ask(path, payload, method = "POST") {
  if (log.busy() || !state.sessionId || state.gone) return;
  hideAlert();
  state.posting = true;
  state.stopAsked = false;
  log.waitFor(true);
  let sessionId = state.sessionId;
  let started = null;
  try {
    await storeUnwritten();
    sessionId = state.sessionId;
    await followShown().ready(); // from now on the channel misses nothing,
    await state.caughtUp; // and what came before is shown (not reloaded again for this post)
    const headers = { Prefer: "respond-async" };
    if (payload) headers["Content-Type"] = "application/json";
    const body = payload ? JSON.stringify(payload) : undefined;
    const response = await request(api(sessionId, path), { method, headers, body });
    const data = await response.json();
    if (state.sessionId !== sessionId) return;
    if (payload && els.input.value === payload.content) {
      els.input.value = ""; // stored: 201 or 202
      if (method !== "PUT") saveDraft(sessionId, ""); // (an edit leaves the draft it set aside)
    }
    if (method === "PUT") stopEditing();
    if (response.status === 202) started = data.reply_id;
  } catch (error) {
    if (state.sessionId === sessionId) showAlert(...postFailure(error, payload === null));
  } finally {
    state.posting = false;
    if (state.sessionId === sessionId) log.waitFor(started || false);
  }
  if (started && state.stopAsked) stopReply();
}

// What to say when a post failed: the text, and whether Retry can help.
function postFailure(error, isRetry) {
  const status = error instanceof ApiError ? error.status : 0;
  if (isRetry && [404, 405].includes(status)) {
    return ["Asking again is not available on this server; please send your message again.", false];
  }
  if (isRetry) {
    if (status === 409) return [describe(error), false];
    return [`Your message was saved, but the assistant did not answer: ${describe(error)}`, status !== 413];
  }
  if (status === 409) return [BUSY, false];
  return [`Your message was not sent: ${describe(error)}`, false];
}

function sendMessage() {
  const text = els.input.value;
  if (!text.trim()) return;
  if (state.editing !== null) ask(`/messages/${state.editing}`, { content: text }, "PUT");
  else ask("/messages", { content: text });
}

// --- drafts: what was typed and not sent, per session, across reloads ---------------------
function saveDraft(sessionId, text) {
  try {
    if (text) window.localStorage.setItem(DRAFTS + sessionId, text);
    else window.localStorage.removeItem(DRAFTS + sessionId);
  } catch {
    // storage full or refused (private browsing): the draft lives as long as the page
  }
}

function draftOf(sessionId) {
  try {
    return window.localStorage.getItem(DRAFTS + sessionId) || "";
  } catch {
    return "";
  }
}

function restoreDraft() {
  els.input.value = state.sessionId ? draftOf(state.sessionId) : "";
}

// The message box: focused after loading, sending, stopping, creating or switching sessions
// and closing a dialog, so typing goes on without reaching for it.
export function focusComposer() {
  if (els.input.disabled || document.querySelector("dialog[open]")) return;
  els.input.focus();
}

// --- actions on messages ------------------------------------------------------------------
async function copyText(button, text) {
  const label = button.querySelector(".msg-action-label") || button;
  const was = label.textContent;
  try {
    await navigator.clipboard.writeText(text);
    label.textContent = "Copied";
  } catch {
    label.textContent = "Copy failed";
  }
  setTimeout(() => {
    label.textContent = was;
  }, 1500);
}

function startEditing(article) {
  state.editing = Number(article.dataset.index);
  if (els.input.value.trim()) saveDraft(state.sessionId, els.input.value);
  els.input.value = article.dataset.content || "";
  els.editing.hidden = false;
  els.input.focus();
}

function stopEditing() {
  if (state.editing === null) return;
  state.editing = null;
  els.editing.hidden = true;
  restoreDraft();
}

// Shows another version of a message (stored: every tab and the model's next context follow).
async function showVersion(article, step) {
  const box = article.querySelector(".msg-versions");
  const at = Number(box.dataset.version) + step;
  const index = Number(article.dataset.index);
  const sessionId = state.sessionId;
  try {
    const answer = await requestJSON(api(sessionId, `/messages/${index}/version`), {
      method: "PUT",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ version: at }),
    });
    if (state.sessionId !== sessionId) return;
    answer.messages.forEach((message, n) => log.addMessage(message, index + n));
    const shown = log.messageAt(index);
    if (shown) shown.querySelector(`[data-action="${step < 0 ? "previous" : "next"}"]`).focus();
    refresh();
  } catch (error) {
    if (state.sessionId === sessionId) showAlert(`Could not show that version: ${describe(error)}`, false);
  }
}

function onMessageAction(event) {
  const button = event.target.closest("button[data-action]");
  if (!button || button.disabled) return;
  const article = button.closest(".msg");
  const action = button.dataset.action;
  if (action === "copy") copyText(button, article.dataset.content || article.querySelector(".msg-text").innerText);
  else if (action === "copy-code") copyText(button, button.closest(".code-block").querySelector("code").textContent);
  else if (action === "regenerate") {
    ask("/reply", null);
    focusComposer();
  } else if (action === "edit") startEditing(article);
  else if (action === "previous") showVersion(article, -1);
  else if (action === "next") showVersion(article, 1);
}

function retry() {
  ask("/reply", null);
  focusComposer();
}

// Asks the server to stop the running reply, wherever it was started; the channel tells how it
// ended. Pressed while this tab's post is on its way, it stops the reply once that has started.
async function stopReply() {
  if (state.posting) {
    state.stopAsked = true;
    els.stop.disabled = true;
    return;
  }
  const sessionId = state.sessionId;
  els.stop.disabled = true;
  try {
    await request(api(sessionId, "/stop"), { method: "POST" });
  } catch (error) {
    if (state.sessionId !== sessionId) return;
    els.stop.disabled = false;
    if (error instanceof ApiError && error.status === 409) {
      log.waitFor(false); // nothing runs: whatever the log shows as running ended unseen
      log.replyEnded(null, null);
      reload();
    } else {
      showAlert(`The reply was not stopped: ${describe(error)}`, false);
    }
  }
}

// --- older messages, a page at a time ---------------------------------------------------
const OLDER_PAGE = 100;

async function loadOlder() {
  const sessionId = state.sessionId;
  els.older.disabled = true;
  try {
    const query = `limit=${OLDER_PAGE}&before=${encodeURIComponent(log.olderBefore())}`;
    const page = await requestJSON(api(sessionId, `/messages?${query}`));
    if (state.sessionId === sessionId) log.showOlder(page.messages, page.next_before);
  } catch (error) {
    showAlert(`Could not load earlier messages: ${describe(error)}`, false);
  } finally {
    els.older.disabled = false;
  }
}

// --- which session is shown -------------------------------------------------------------
function setCurrent(session, persona) {
  state.sessionId = session.session_id;
  state.persona = persona || personas[session.persona] || personas.default;
  state.gone = false;
  document.body.dataset.sessionId = session.session_id;
  sessionShown(session);
  els.sessionPersona.textContent = state.persona.name;
  log.reset(state.persona);
}

// Show another session (just created, or switched to) with its newest messages, in place of
// this one, and follow it; `olderBefore` is the history's next_before (null when it holds them all).
// A reply running in the one left goes on: it is stored whole, and shown when it is opened again.
export function openConversation(session, persona, messages, olderBefore = null) {
  stopEditing();
  setCurrent(session, persona);
  log.showHistory(messages, olderBefore);
  hideAlert();
  followShown();
  refresh();
  restoreDraft();
  focusComposer();
  setTimeout(focusComposer); // once the dialog that asked for it has closed
}

// Wires the composer up and follows the shown session; `known` maps persona ids to
// {id, name, greeting, description}.
export function startChat(known) {
  personas = known;
  els.composer.addEventListener("submit", (event) => {
    event.preventDefault();
    sendMessage();
    els.input.focus();
  });
  els.input.addEventListener("keydown", (event) => {
    if (event.key === "Escape" && state.editing !== null) {
      event.preventDefault();
      stopEditing();
    } else if (event.key === "Enter" && !event.shiftKey && !event.isComposing && !TOUCH) {
      event.preventDefault();
      sendMessage();
    }
  });
  if (TOUCH) {
    els.input.enterKeyHint = "enter";
    els.hint.textContent = "Enter adds a line; the Send button sends.";
  }
  els.input.addEventListener("input", () => {
    if (state.editing === null && state.sessionId) saveDraft(state.sessionId, els.input.value);
  });
  els.editCancel.addEventListener("click", () => {
    stopEditing();
    els.input.focus();
  });
  els.messages.addEventListener("click", onMessageAction);
  // Closing any dialog brings the focus back to the message box (once the dialog's own
  // handlers are done: they return it to what opened it).
  document.addEventListener("close", () => setTimeout(focusComposer), true);
  els.stop.addEventListener("click", () => {
    stopReply();
    els.input.focus();
  });
  els.retry.addEventListener("click", retry);
  els.older.addEventListener("click", loadOlder);
  log.onBusyChange(refresh);
  // The server rendered this session and its history: its persona is the one it named.
  const name = els.sessionPersona.textContent;
  state.persona = Object.values(personas).find((p) => p.name === name) || personas.default;
  log.reset(state.persona);
  log.setOlder(log.olderBefore()); // the server said whether there are older messages
  prepareMessages(els.messages);
  log.startFollowing();
  followShown();
  refresh();
  restoreDraft();
  focusComposer();
}
