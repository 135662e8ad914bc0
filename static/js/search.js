// Search across the visitor's conversations (GET /api/search): a dialog opened by the header's
// Search button or Ctrl+K / Cmd+K from anywhere. Each result lists the conversation and up to
// three snippets with the hits marked; choosing one opens the conversation at that message,
// scrolled to and briefly marked. Snippets are text: hits become <mark>s by their offsets (in
// code points), nothing is parsed as HTML.

import { describe, requestJSON } from "./api.js";
import { openConversation } from "./chat.js";
import { olderBefore, showOlder } from "./conversation.js";
import { openDialog, returnFocusOnClose } from "./dialogs.js";

const $ = (id) => document.getElementById(id);
const els = {
  button: $("search-button"),
  dialog: $("search-dialog"),
  form: $("search-form"),
  input: $("search-input"),
  status: $("search-status"),
  results: $("search-results"),
  messages: $("messages"),
};
const DELAY_MS = 200; // after the last key, so typing a word is one search
const MARK_MS = 2500; // how long the message found stays marked
let personas = {};
let timer = null;
let asked = 0; // the newest search sent: an older answer arriving late is dropped

function fromTemplate(id) {
  return $(id).content.firstElementChild.cloneNode(true);
}

// `text` with each [start, end) of `highlights` (code points) in a <mark>.
export function markedText(text, highlights) {
  const chars = Array.from(text);
  const parts = [];
  let at = 0;
  for (const [start, end] of highlights) {
    if (start < at || end <= start) continue;
    if (start > at) parts.push(document.createTextNode(chars.slice(at, start).join("")));
    const mark = document.createElement("mark");
    mark.textContent = chars.slice(start, end).join("");
    parts.push(mark);
    at = end;
  }
  if (at < chars.length) parts.push(document.createTextNode(chars.slice(at).join("")));
  return parts;
}

function resultElement(result) {
  const li = fromTemplate("search-result-template");
  const open = li.querySelector(".search-open");
  open.querySelector(".search-name").textContent = result.title || "Chat";
  const persona = personas[result.persona];
  open.querySelector(".session-persona").textContent = persona ? persona.name : result.persona;
  open.dataset.sessionId = result.session_id;
  if (result.snippets.length) open.dataset.messageIndex = String(result.snippets[0].message_index);
  const list = li.querySelector(".search-snippets");
  for (const snippet of result.snippets) {
    const item = fromTemplate("search-snippet-template");
    const button = item.querySelector(".search-snippet");
    button.dataset.sessionId = result.session_id;
    button.dataset.messageIndex = String(snippet.message_index);
    button.querySelector(".search-role").textContent = snippet.role === "user" ? "You:" : "Reply:";
    button.querySelector(".search-text").replaceChildren(...markedText(snippet.text, snippet.highlights));
    list.append(item);
  }
  return li;
}

async function search() {
  const q = els.input.value;
  const mine = ++asked;
  if (!q.trim()) {
    els.results.replaceChildren();
    els.status.textContent = "";
    return;
  }
  els.status.textContent = "Searching…";
  try {
    const data = await requestJSON(`/api/search?${new URLSearchParams({ q, limit: "20" })}`);
    if (mine !== asked) return;
    els.results.replaceChildren(...data.results.map(resultElement));
    const more = data.count > data.results.length ? ` (the best ${data.results.length} shown)` : "";
    els.status.textContent = data.count
      ? `${data.count} conversation${data.count === 1 ? "" : "s"} found${more}.`
      : "No conversation holds all of these words.";
  } catch (error) {
    if (mine !== asked) return;
    els.results.replaceChildren();
    els.status.textContent = describe(error);
  }
}

function later() {
  clearTimeout(timer);
  timer = setTimeout(search, DELAY_MS);
}

// The message at `index` of the shown conversation, loading older pages until it is there.
async function messageAt(sessionId, index) {
  while (Number(olderBefore()) > index) {
    const before = olderBefore();
    const page = await requestJSON(`/api/session/${encodeURIComponent(sessionId)}/history?before=${before}`);
    showOlder(page.messages, page.next_before);
  }
  const shown = els.messages.querySelectorAll(".msg:not(.msg-greeting):not(.msg-streaming)");
  return shown[index - Number(olderBefore())] || null;
}

// Open a conversation (as the Sessions list switches) at message `index`, and mark it.
export async function openAt(sessionId, index) {
  els.status.textContent = "Opening…";
  try {
    const switchUrl = $("session-template").dataset.switchUrl.replace("SESSION_ID", encodeURIComponent(sessionId));
    const history = await requestJSON(`/api/session/${encodeURIComponent(sessionId)}/history`);
    const data = await requestJSON(switchUrl, { method: "POST" });
    openConversation(data.session, data.persona, history.messages, history.next_before);
    els.dialog.close();
    const found = Number.isInteger(index) ? await messageAt(sessionId, index) : null;
    if (found) {
      found.scrollIntoView({ block: "center" });
      found.classList.add("msg-found");
      setTimeout(() => found.classList.remove("msg-found"), MARK_MS);
    }
  } catch (error) {
    els.status.textContent = `Could not open that conversation: ${describe(error)}`;
  }
}

function open() {
  openDialog(els.dialog, document.activeElement);
  els.input.focus();
  els.input.select();
}

// Wires the dialog, its button and the shortcut; `known` maps persona ids to {id, name, ...}.
export function startSearch(known) {
  personas = known;
  returnFocusOnClose(els.dialog);
  els.button.addEventListener("click", (event) => {
    event.preventDefault();
    open();
  });
  document.addEventListener("keydown", (event) => {
    if ((event.ctrlKey || event.metaKey) && !event.altKey && event.key.toLowerCase() === "k") {
      event.preventDefault();
      open();
    }
  });
  els.form.addEventListener("submit", (event) => {
    event.preventDefault();
    clearTimeout(timer);
    search();
  });
  els.input.addEventListener("input", later);
  els.results.addEventListener("click", (event) => {
    const button = event.target.closest("[data-session-id]");
    if (!button) return;
    const index = button.dataset.messageIndex === undefined ? null : Number(button.dataset.messageIndex);
    openAt(button.dataset.sessionId, index);
  });
}
