// Search (GET /api/search): the Search button or Ctrl+K / Cmd+K. Hits become <mark>s by offset.

import { describe, requestJSON } from "./api.js";
import { openConversation } from "./chat.js";
import { olderBefore, showOlder } from "./conversation.js";
import { openDialog, returnFocusOnClose } from "./dialogs.js";
import { sessionPath } from "./header.js";

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
let personas = {};
let timer = null;
let asked = 0; // the newest search (a late answer to an older one is dropped)

const clone = (id) => $(id).content.firstElementChild.cloneNode(true);
const history = (sid, query = "") => requestJSON(`/api/session/${encodeURIComponent(sid)}/history${query}`);

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
  const li = clone("search-result-template");
  const open = li.querySelector(".search-open");
  open.querySelector(".search-name").textContent = result.title || "Chat";
  const persona = personas[result.persona];
  open.querySelector(".session-persona").textContent = persona ? persona.name : result.persona;
  open.dataset.sessionId = result.session_id;
  if (result.snippets.length) open.dataset.messageIndex = String(result.snippets[0].message_index);
  for (const snippet of result.snippets) {
    const item = clone("search-snippet-template");
    const button = item.querySelector(".search-snippet");
    button.dataset.sessionId = result.session_id;
    button.dataset.messageIndex = String(snippet.message_index);
    button.querySelector(".search-role").textContent = snippet.role === "user" ? "You:" : "Reply:";
    button.querySelector(".search-text").replaceChildren(...markedText(snippet.text, snippet.highlights));
    li.querySelector(".search-snippets").append(item);
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
    const n = data.count;
    els.status.textContent = n ? `${n} conversation${n === 1 ? "" : "s"} found.` : "No conversation holds all these words.";
  } catch (error) {
    if (mine !== asked) return;
    els.results.replaceChildren();
    els.status.textContent = describe(error);
  }
}

async function messageAt(sid, index) {
  while (Number(olderBefore()) > index) {
    const page = await history(sid, `?before=${olderBefore()}`);
    showOlder(page.messages, page.next_before);
  }
  const shown = els.messages.querySelectorAll(".msg:not(.msg-greeting):not(.msg-streaming)");
  return shown[index - Number(olderBefore())] || null;
}

// Opens a conversation (as the Sessions list does) at message `index`, marked briefly.
export async function openAt(sid, index) {
  els.status.textContent = "Opening…";
  try {
    const page = await history(sid);
    const data = await requestJSON(`/sessions/${encodeURIComponent(sid)}/switch`, { method: "POST" });
    window.history.pushState({ sessionId: sid }, "", sessionPath(sid));
    openConversation(data.session, data.persona, page.messages, page.next_before);
    els.dialog.close();
    const found = Number.isInteger(index) ? await messageAt(sid, index) : null;
    if (found) {
      found.scrollIntoView({ block: "center" });
      found.classList.add("msg-found");
      setTimeout(() => found.classList.remove("msg-found"), 2500);
    }
  } catch (error) {
    els.status.textContent = `Could not open it: ${describe(error)}`;
  }
}

function open(q) {
  openDialog(els.dialog, document.activeElement);
  if (typeof q === "string") {
    els.input.value = q;
    search();
  }
  els.input.focus();
  els.input.select();
}

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
  els.input.addEventListener("input", () => {
    clearTimeout(timer);
    timer = setTimeout(search, 200);
  });
  // The Sessions modal's search field (names and titles) leads on to the messages.
  const names = $("sessions-search");
  const more = $("search-messages");
  if (names && more) {
    names.addEventListener("input", () => {
      more.hidden = !names.value.trim();
    });
    more.addEventListener("click", () => {
      $("sessions-dialog").close();
      open(names.value);
    });
  }
  els.results.addEventListener("click", (event) => {
    const button = event.target.closest("[data-session-id]");
    if (!button) return;
    const index = button.dataset.messageIndex === undefined ? null : Number(button.dataset.messageIndex);
    openAt(button.dataset.sessionId, index);
  });
}
