// chatapp page script: sessions, switching and sending through the JSON API.
// Everything users or the assistant wrote is inserted with textContent, never as HTML.
"use strict";

(() => {
  const $ = (id) => document.getElementById(id);
  const body = document.body;
  const csrfToken = document.querySelector('meta[name="csrf-token"]').content;
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
    banner: $("store-banner"),
    sessionName: $("session-name"),
    sessionPersona: $("session-persona"),
    newButton: $("new-button"),
    sessionsButton: $("sessions-button"),
    newDialog: $("new-dialog"),
    newForm: $("new-form"),
    newError: $("new-error"),
    personaSelect: $("persona-select"),
    sessionsDialog: $("sessions-dialog"),
    sessionsList: $("sessions-list"),
    sessionsStatus: $("sessions-status"),
  };

  // Personas come from the select's options (rendered by the server).
  const personas = {};
  for (const option of els.personaSelect.options) {
    personas[option.value] = {
      id: option.value,
      name: option.textContent,
      greeting: option.dataset.greeting,
      description: option.dataset.description,
    };
  }

  const state = {
    sessionId: body.dataset.sessionId || null,
    persona: null,
    controller: null,
    busy: false,
  };

  // --- time formatting (local time of the visitor) -------------------------------------
  const timeFormat = new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit" });
  const dateTimeFormat = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "short" });

  function untilText(date) {
    const minutes = Math.round((date.getTime() - Date.now()) / 60000);
    if (minutes <= 0) return "expiring now";
    if (minutes < 60) return `in ${minutes} min`;
    const hours = Math.floor(minutes / 60);
    return minutes % 60 ? `in ${hours} h ${minutes % 60} min` : `in ${hours} h`;
  }

  function formatTime(el) {
    const date = new Date(el.dateTime);
    if (Number.isNaN(date.getTime())) return;
    const kind = el.dataset.format;
    if (kind === "expiry") {
      el.textContent = untilText(date);
      el.title = dateTimeFormat.format(date);
    } else if (kind === "datetime") {
      el.textContent = dateTimeFormat.format(date);
    } else {
      el.textContent = timeFormat.format(date);
      el.title = dateTimeFormat.format(date);
    }
  }

  function formatTimes(root) {
    for (const el of root.querySelectorAll("time[datetime]")) formatTime(el);
  }

  function make(tag, className, text) {
    const el = document.createElement(tag);
    if (className) el.className = className;
    if (text !== undefined) el.textContent = text;
    return el;
  }

  function timeElement(iso, format) {
    const el = make("time");
    el.dateTime = iso;
    if (format) el.dataset.format = format;
    formatTime(el);
    return el;
  }

  // --- messages -----------------------------------------------------------------------
  function personaName() {
    return (state.persona && state.persona.name) || els.sessionPersona.textContent;
  }

  function messageElement(message, extraClass) {
    const article = make("article", `msg msg-${message.role === "user" ? "user" : "assistant"}`);
    if (extraClass) article.classList.add(extraClass);
    if (message.metadata && message.metadata.interrupted) article.classList.add("msg-interrupted");
    const meta = make("header", "msg-meta");
    meta.append(make("span", "msg-who", message.role === "user" ? "You" : personaName()));
    if (message.timestamp) meta.append(timeElement(message.timestamp));
    article.append(meta, make("p", "msg-text", message.content));
    return article;
  }

  function addMessage(message, extraClass) {
    const el = messageElement(message, extraClass);
    els.messages.append(el);
    el.scrollIntoView({ block: "end" });
    return el;
  }

  function renderConversation(persona, messages) {
    const greeting = messageElement({ role: "assistant", content: persona.greeting }, "msg-greeting");
    els.messages.replaceChildren(greeting, ...messages.map((m) => messageElement(m)));
    const last = els.messages.lastElementChild;
    if (last) last.scrollIntoView({ block: "end" });
  }

  function setCurrent(session, persona) {
    state.sessionId = session.session_id;
    state.persona = persona || personas[session.persona] || personas.default;
    body.dataset.sessionId = session.session_id;
    els.sessionName.textContent = session.display_name || "Chat";
    els.sessionPersona.textContent = state.persona.name;
    els.typingText.textContent = `${state.persona.name} is typing…`;
    els.input.disabled = false;
    els.send.disabled = false;
  }

  // --- errors -------------------------------------------------------------------------
  class ApiError extends Error {
    constructor(status, message, fields) {
      super(message);
      this.status = status;
      this.fields = fields || null;
    }
  }

  async function errorFrom(response) {
    let message = `The server answered ${response.status} ${response.statusText}.`;
    let fields = null;
    try {
      const data = await response.json();
      if (data && data.error) {
        message = data.error.message || message;
        fields = data.error.fields || null;
      }
    } catch {
      // not JSON: keep the status line
    }
    return new ApiError(response.status, message, fields);
  }

  function describe(error) {
    if (error instanceof ApiError) return error.message;
    return "The network request failed; check your connection and try again.";
  }

  function noteStore(ok) {
    if (ok) {
      els.banner.hidden = true;
    } else {
      els.banner.textContent = "The session store is unavailable right now, so chats cannot be loaded or saved. Try again shortly.";
      els.banner.hidden = false;
    }
  }

  async function request(url, options = {}) {
    const headers = { Accept: "application/json", ...(options.headers || {}) };
    if (options.method && options.method !== "GET") headers["X-CSRFToken"] = csrfToken;
    const response = await fetch(url, { credentials: "same-origin", ...options, headers });
    if (response.status === 503) noteStore(false);
    if (!response.ok) throw await errorFrom(response);
    noteStore(true);
    return response;
  }

  async function requestJSON(url, options) {
    return (await request(url, options)).json();
  }

  function showAlert(text, canRetry) {
    els.alertText.textContent = text;
    els.retry.hidden = !canRetry;
    els.alert.hidden = false;
  }

  function hideAlert() {
    els.alert.hidden = true;
    els.retry.hidden = true;
  }

  // --- sending and streaming ----------------------------------------------------------
  function setBusy(busy) {
    state.busy = busy;
    els.send.disabled = busy || !state.sessionId;
    els.stop.hidden = !busy;
    els.typing.hidden = !busy;
    els.messages.setAttribute("aria-busy", String(busy));
  }

  async function readEvents(response, onEvent) {
    const reader = response.body.getReader();
    const decoder = new TextDecoder();
    let buffer = "";
    const dispatch = (block) => {
      let event = "message";
      const data = [];
      for (const line of block.split("\n")) {
        if (line.startsWith(":")) continue;
        const colon = line.indexOf(":");
        const field = colon < 0 ? line : line.slice(0, colon);
        const value = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
        if (field === "event") event = value;
        else if (field === "data") data.push(value);
      }
      if (data.length) onEvent(event, JSON.parse(data.join("\n")));
    };
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += decoder.decode(value, { stream: true }).replace(/\r\n?/g, "\n");
      let end;
      while ((end = buffer.indexOf("\n\n")) >= 0) {
        dispatch(buffer.slice(0, end));
        buffer = buffer.slice(end + 2);
      }
    }
    if (buffer.trim()) dispatch(buffer);
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
          } else if (event === "delta") {
            partial += data.text || "";
            ensureBubble().querySelector(".msg-text").textContent = partial;
          } else if (event === "done") {
            const stored = messageElement(data.assistant_message);
            ensureBubble().replaceWith(stored);
            bubble = stored;
          } else if (event === "error") {
            failure = new ApiError((data.error && data.error.code) || 502, (data.error && data.error.message) || "The assistant failed.");
          }
        });
      } else {
        const data = await response.json();
        if (state.sessionId === sessionId) {
          if (data.user_message) storedUser(data.user_message);
          if (data.assistant_message) addMessage(data.assistant_message);
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
      const prefix = userStored ? "Your message was saved, but the assistant did not answer: " : "Your message was not sent: ";
      showAlert(prefix + describe(failure), userStored);
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
  els.stop.addEventListener("click", () => {
    if (state.controller) state.controller.abort();
  });
  els.retry.addEventListener("click", retry);

  // --- dialogs ------------------------------------------------------------------------
  const openers = new Map();

  function openDialog(dialog, opener) {
    openers.set(dialog, opener || document.activeElement);
    if (dialog.open) dialog.close();
    dialog.showModal();
  }

  for (const dialog of [els.newDialog, els.sessionsDialog]) {
    dialog.addEventListener("close", () => {
      const opener = openers.get(dialog);
      openers.delete(dialog);
      if (opener && opener.isConnected && typeof opener.focus === "function") opener.focus();
    });
  }

  // --- New Session --------------------------------------------------------------------
  function markPersona() {
    for (const li of document.querySelectorAll("#persona-help li")) {
      li.classList.toggle("selected", li.dataset.persona === els.personaSelect.value);
    }
  }
  els.personaSelect.addEventListener("change", markPersona);

  function showFormError(text, fields) {
    els.newError.textContent = text;
    els.newError.hidden = false;
    for (const control of els.newForm.querySelectorAll("input[name], select[name]")) {
      if (fields && fields[control.name]) control.setAttribute("aria-invalid", "true");
      else control.removeAttribute("aria-invalid");
    }
  }

  function clearFormError() {
    els.newError.hidden = true;
    els.newError.textContent = "";
    for (const control of els.newForm.querySelectorAll("[aria-invalid]")) control.removeAttribute("aria-invalid");
  }

  els.newButton.addEventListener("click", (event) => {
    event.preventDefault(); // the script opens it (native command= is the no-script path)
    clearFormError();
    markPersona();
    openDialog(els.newDialog, els.newButton);
  });

  els.newForm.addEventListener("submit", async (event) => {
    if (event.submitter && event.submitter.getAttribute("formmethod") === "dialog") return;
    event.preventDefault();
    const submit = els.newForm.querySelector('button[type="submit"]');
    submit.disabled = true;
    try {
      const data = await requestJSON(els.newForm.action, {
        method: "POST",
        headers: { "Content-Type": "application/x-www-form-urlencoded" },
        body: new URLSearchParams(new FormData(els.newForm)),
      });
      setCurrent(data.session, data.persona);
      renderConversation(state.persona, []);
      hideAlert();
      els.newForm.reset();
      clearFormError();
      els.newDialog.close();
    } catch (error) {
      const fields = error instanceof ApiError ? error.fields : null;
      const details = fields ? Object.values(fields).flat().join(" ") : "";
      showFormError(`The session was not created: ${describe(error)}${details ? ` ${details}` : ""}`, fields);
    } finally {
      submit.disabled = false;
    }
  });

  // --- Sessions -----------------------------------------------------------------------
  function sessionItem(session) {
    const li = make("li");
    const button = make("button", "session-item");
    button.type = "button";
    button.dataset.sessionId = session.session_id;
    if (session.session_id === state.sessionId) button.setAttribute("aria-current", "true");
    const persona = personas[session.persona];
    const meta = make("span", "session-meta");
    const created = make("span", null, "Created ");
    created.append(timeElement(session.created_at, "datetime"));
    const count = make("span", "session-count", `${session.message_count} message${session.message_count === 1 ? "" : "s"}`);
    let expiry;
    if (session.expires_at) {
      expiry = make("span", null, "Expires ");
      expiry.append(timeElement(session.expires_at, "expiry"));
    } else {
      expiry = make("span", null, "Kept (archived)");
    }
    meta.append(created, count, expiry);
    button.append(
      make("span", "session-name", session.display_name || session.user_id),
      make("span", "session-persona", persona ? persona.name : session.persona),
      meta,
    );
    li.append(button);
    return li;
  }

  async function loadSessions() {
    els.sessionsStatus.textContent = "";
    try {
      const data = await requestJSON("/api/sessions?limit=200");
      els.sessionsList.replaceChildren(...data.sessions.map(sessionItem));
      if (!data.sessions.length) els.sessionsStatus.textContent = "No sessions yet: create one with New.";
    } catch (error) {
      els.sessionsStatus.textContent = `Could not load your sessions: ${describe(error)}`;
    }
  }

  els.sessionsButton.addEventListener("click", async (event) => {
    event.preventDefault();
    await loadSessions();
    openDialog(els.sessionsDialog, els.sessionsButton);
    const current = els.sessionsList.querySelector('[aria-current="true"]') || els.sessionsList.querySelector("button");
    if (current) current.focus();
  });

  async function switchTo(sessionId) {
    if (state.controller) state.controller.abort();
    els.sessionsStatus.textContent = "Loading…";
    try {
      const history = await requestJSON(`/api/session/${encodeURIComponent(sessionId)}/history`);
      const data = await requestJSON(`/sessions/${encodeURIComponent(sessionId)}/switch`, { method: "POST" });
      setCurrent(data.session, data.persona);
      renderConversation(state.persona, history.messages);
      hideAlert();
      els.sessionsStatus.textContent = "";
      els.sessionsDialog.close();
    } catch (error) {
      els.sessionsStatus.textContent = `Could not open that session: ${describe(error)}`;
    }
  }

  els.sessionsList.addEventListener("click", (event) => {
    const button = event.target.closest(".session-item");
    if (!button) return;
    event.preventDefault(); // also stops the no-script form post
    switchTo(button.dataset.sessionId);
  });

  // --- start --------------------------------------------------------------------------
  if (new URLSearchParams(window.location.search).has("session")) {
    // The cookie remembers it now; a stale ?session= must not override a later switch.
    window.history.replaceState(null, "", window.location.pathname);
  }
  if (state.sessionId) {
    const current = els.sessionsList.querySelector(`[data-session-id="${CSS.escape(state.sessionId)}"]`);
    const name = els.sessionPersona.textContent;
    state.persona = Object.values(personas).find((p) => p.name === name) || personas.default;
    if (current) current.setAttribute("aria-current", "true");
    els.input.disabled = false;
    els.send.disabled = false;
  }
  if (els.newDialog.open) {
    // The server re-rendered the form with errors: show it as a real modal.
    els.newDialog.close();
    openDialog(els.newDialog, els.newButton);
  }
  $("needs-script").hidden = true;
  markPersona();
  formatTimes(document);
})();
