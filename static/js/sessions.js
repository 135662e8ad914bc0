// The New Session form, switching sessions, and each session's address: switching puts it in
// the address bar (History API), so Back and Forward switch back. Without the script the form
// posts and redirects, and each listed session is a link to its address.

import { ApiError, describe, requestJSON } from "./api.js";
import { currentSessionId, openConversation, storeUnwritten, unwrittenSessionId } from "./chat.js";
import { countFields, openDialog, returnFocusOnClose } from "./dialogs.js";
import { sessionPath } from "./header.js";
import { load, startManager } from "./manager.js";

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
let withinLimits = () => true;

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
  for (const control of els.newForm.querySelectorAll("input[name], select[name], textarea[name]")) {
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
  if (!withinLimits()) {
    els.newError.textContent = "Please shorten what is over its limit.";
    els.newError.hidden = false;
    return;
  }
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
    window.history.pushState({ sessionId: data.session.session_id }, "", sessionPath(data.session.session_id));
    openConversation(data.session, data.persona, []);
    els.newForm.reset();
    clearFormError();
    withinLimits();
    els.newDialog.close();
  } catch (error) {
    const fields = error instanceof ApiError ? error.fields : null;
    const details = fields ? Object.values(fields).flat().join(" ") : "";
    showFormError(`The session was not created: ${describe(error)}${details ? ` ${details}` : ""}`, fields);
  } finally {
    submit.disabled = false;
  }
}

// --- switching ----------------------------------------------------------------------------
async function openSessions() {
  let unsaved = null;
  try {
    await storeUnwritten(); // the list comes from the API, which knows stored sessions only
  } catch (error) {
    unsaved = error;
  }
  await load(true);
  if (unsaved) els.sessionsStatus.textContent = `Your first session could not be saved yet: ${describe(unsaved)}`;
}

// Opens a session in place of the shown one: `push` puts its address in the history (not when
// going Back or Forward to it). A reply running in the one left goes on (a job on the server).
async function switchTo(sessionId, push = true) {
  els.sessionsStatus.textContent = "Loading…";
  const id = encodeURIComponent(sessionId);
  try {
    const history = await requestJSON(`/api/session/${id}/history`);
    const data = await requestJSON(`/sessions/${id}/switch`, { method: "POST" });
    if (push) window.history.pushState({ sessionId }, "", sessionPath(sessionId));
    openConversation(data.session, data.persona, history.messages, history.next_before);
    els.sessionsStatus.textContent = "";
    els.sessionsDialog.close();
  } catch (error) {
    if (!push) return window.location.reload(); // the page says what became of it
    els.sessionsStatus.textContent = `Could not open that session: ${describe(error)}`;
  }
}

function sessionOfPath() {
  const found = /^\/sessions\/([^/]+)$/.exec(window.location.pathname);
  return found ? decodeURIComponent(found[1]) : null;
}

// Wires both modals and the address up; `known` maps persona ids to {id, name, greeting, description}.
export function startSessions(known) {
  personas = known;
  returnFocusOnClose(els.newDialog);
  returnFocusOnClose(els.sessionsDialog);
  withinLimits = countFields(els.newForm);
  els.personaSelect.addEventListener("change", markPersona);

  els.newButton.addEventListener("click", (event) => {
    event.preventDefault(); // the script opens it (native command= is the no-script path)
    clearFormError();
    markPersona();
    withinLimits();
    openDialog(els.newDialog, els.newButton);
  });
  els.newForm.addEventListener("submit", createSession);

  els.sessionsButton.addEventListener("click", async (event) => {
    event.preventDefault();
    await openSessions();
    openDialog(els.sessionsDialog, els.sessionsButton);
    const current = els.sessionsList.querySelector('[aria-current="true"]') || els.sessionsList.querySelector("a");
    (current || $("sessions-search")).focus();
  });
  startManager({
    current: currentSessionId,
    open: (id) => (id === currentSessionId() ? els.sessionsDialog.close() : switchTo(id)),
    personaName: (id) => (personas[id] ? personas[id].name : id),
  });

  // The script lists sessions from the API once the unwritten one is stored: the server's
  // row for it (there for the no-script page) goes.
  const unwritten = unwrittenSessionId();
  if (unwritten) {
    const row = els.sessionsList.querySelector(`[data-session-id="${CSS.escape(unwritten)}"]`);
    if (row) row.closest("li").remove();
  }
  // The address names the shown session once it is stored (a first one stays at /).
  const shown = currentSessionId();
  if (shown && shown !== unwritten && sessionOfPath() !== shown) {
    window.history.replaceState({ sessionId: shown }, "", sessionPath(shown));
  }
  window.addEventListener("popstate", () => {
    const wanted = sessionOfPath();
    if (!wanted) window.location.reload();
    else if (wanted !== currentSessionId()) switchTo(wanted, false);
  });
  if (els.newDialog.open) {
    // The server re-rendered the form with errors: show it as a real modal.
    els.newDialog.close();
    openDialog(els.newDialog, els.newButton);
  }
  markPersona();
}
