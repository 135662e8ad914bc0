// The New Session form and the Sessions list: creating and switching without a page load.
// Without the script both are plain forms that post and redirect.

import { ApiError, describe, requestJSON } from "./api.js";
import { currentSessionId, openConversation, storeUnwritten, unwrittenSessionId } from "./chat.js";
import { openDialog, returnFocusOnClose } from "./dialogs.js";
import { sessionRow } from "./render.js";

const $ = (id) => document.getElementById(id);
const els = {
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
let personas = {};

// Personas come from the New Session form's options (rendered by the server).
export function personasFromForm() {
  const found = {};
  for (const option of els.personaSelect.options) {
    found[option.value] = {
      id: option.value,
      name: option.textContent,
      greeting: option.dataset.greeting,
      description: option.dataset.description,
    };
  }
  return found;
}

// --- New Session ----------------------------------------------------------------------
function markPersona() {
  for (const li of document.querySelectorAll("#persona-help li")) {
    li.classList.toggle("selected", li.dataset.persona === els.personaSelect.value);
  }
}

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

async function createSession(event) {
  if (event.submitter && event.submitter.getAttribute("formmethod") === "dialog") return;
  event.preventDefault();
  const submit = els.newForm.querySelector('button[type="submit"]');
  submit.disabled = true;
  try {
    await storeUnwritten({ follow: false }); // the session shown so far stays in the list, older than the new one
  } catch {
    // it stays unwritten for now and is listed once stored
  }
  try {
    const data = await requestJSON(els.newForm.action, {
      method: "POST",
      headers: { "Content-Type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams(new FormData(els.newForm)),
    });
    openConversation(data.session, data.persona, []);
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
}

// --- Sessions -------------------------------------------------------------------------
function rowFor(session) {
  const persona = personas[session.persona];
  return sessionRow(session, persona ? persona.name : session.persona, session.session_id === currentSessionId());
}

async function loadSessions() {
  els.sessionsStatus.textContent = "";
  let unsaved = null;
  try {
    await storeUnwritten(); // the list comes from the API, which knows stored sessions only
  } catch (error) {
    unsaved = error;
  }
  try {
    const data = await requestJSON("/api/sessions?limit=200");
    els.sessionsList.replaceChildren(...data.sessions.map(rowFor));
    if (!data.sessions.length) els.sessionsStatus.textContent = "No sessions yet: create one with New.";
    if (unsaved) els.sessionsStatus.textContent = `Your first session could not be saved yet: ${describe(unsaved)}`;
  } catch (error) {
    els.sessionsStatus.textContent = `Could not load your sessions: ${describe(error)}`;
  }
}

// Posts to the row's own form action: the URL the no-script form posts to.
// A reply running in the session left goes on (it is a job on the server), shown when it is opened again.
async function switchTo(sessionId, switchUrl) {
  els.sessionsStatus.textContent = "Loading…";
  try {
    const history = await requestJSON(`/api/session/${encodeURIComponent(sessionId)}/history`);
    const data = await requestJSON(switchUrl, { method: "POST" });
    openConversation(data.session, data.persona, history.messages, history.next_before);
    els.sessionsStatus.textContent = "";
    els.sessionsDialog.close();
  } catch (error) {
    els.sessionsStatus.textContent = `Could not open that session: ${describe(error)}`;
  }
}

// Wires both modals up; `known` maps persona ids to {id, name, greeting, description}.
export function startSessions(known) {
  personas = known;
  returnFocusOnClose(els.newDialog);
  returnFocusOnClose(els.sessionsDialog);
  els.personaSelect.addEventListener("change", markPersona);

  els.newButton.addEventListener("click", (event) => {
    event.preventDefault(); // the script opens it (native command= is the no-script path)
    clearFormError();
    markPersona();
    openDialog(els.newDialog, els.newButton);
  });
  els.newForm.addEventListener("submit", createSession);

  els.sessionsButton.addEventListener("click", async (event) => {
    event.preventDefault();
    await loadSessions();
    openDialog(els.sessionsDialog, els.sessionsButton);
    const current = els.sessionsList.querySelector('[aria-current="true"]') || els.sessionsList.querySelector("button");
    if (current) current.focus();
  });
  els.sessionsList.addEventListener("click", (event) => {
    const button = event.target.closest(".session-item");
    if (!button) return;
    event.preventDefault(); // also stops the no-script form post
    switchTo(button.dataset.sessionId, button.form.action);
  });

  // The script lists sessions from the API once the unwritten one is stored (loadSessions):
  // the server's row for it (there for the no-script page) goes.
  const unwritten = unwrittenSessionId();
  if (unwritten) {
    const row = els.sessionsList.querySelector(`[data-session-id="${CSS.escape(unwritten)}"]`);
    if (row) row.closest("li").remove();
  }
  const sessionId = currentSessionId();
  if (sessionId) {
    const current = els.sessionsList.querySelector(`[data-session-id="${CSS.escape(sessionId)}"]`);
    if (current) current.setAttribute("aria-current", "true");
  }
  if (els.newDialog.open) {
    // The server re-rendered the form with errors: show it as a real modal.
    els.newDialog.close();
    openDialog(els.newDialog, els.newButton);
  }
  markPersona();
}
