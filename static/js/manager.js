// The Sessions modal as a manager: search, the Chats and Archived views in pages from the
// server, grouped by last activity; per row Rename, Describe, Pin, Archive, Export (plain
// download links), Share (the Share dialog for that row's session) and Delete; Select mode
// acting on several at once (POST /api/sessions/bulk; its Export is wired by transfer.js).
// Archive, Pin and Delete can be undone for a few seconds: a delete is sent only once that
// time is up (or the page is left).

import { describe, request, requestJSON } from "./api.js";
import { countField, countFields, openDialog, returnFocusOnClose } from "./dialogs.js";
import { sessionShown, shownSession } from "./header.js";
import { groupElement, sessionRow, sessionTitle } from "./render.js";
import { openShare } from "./share.js";

const PAGE = 50;
const UNDO_MS = 6000;
const $ = (id) => document.getElementById(id);
const els = {
  dialog: $("sessions-dialog"),
  list: $("sessions-list"),
  status: $("sessions-status"),
  more: $("more-button"),
  search: $("sessions-search"),
  select: $("select-button"),
  bulkBar: $("bulk-bar"),
  selectAll: $("select-all"),
  selected: $("selected-count"),
  toast: $("toast"),
  toastText: $("toast-text"),
  undo: $("undo-button"),
  edit: $("edit-dialog"),
  editForm: $("edit-form"),
  editTitle: $("edit-title"),
  editError: $("edit-error"),
  editName: $("edit-name"),
  editDescription: $("edit-description"),
  confirm: $("confirm-dialog"),
  confirmTitle: $("confirm-title"),
  confirmText: $("confirm-text"),
};
const state = { view: "live", query: "", items: [], total: 0, next: null, seq: 0, selected: new Set() };
let hooks = { current: () => null, open: () => {}, personaName: (id) => id };
let toast = null; // {timer, undo, commit}
let editing = null; // {kind, session}

const api = (id) => `/api/sessions/${encodeURIComponent(id)}`;
const quoted = (session) => `“${sessionTitle(session)}”`;
const plural = (n, word) => `${n} ${word}${n === 1 ? "" : "s"}`;

function patch(id, change) {
  return requestJSON(api(id), {
    method: "PATCH",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(change),
  });
}

function bulk(action, ids, options = {}) {
  return requestJSON("/api/sessions/bulk", {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ action, session_ids: ids }),
    ...options,
  });
}

// --- the list -----------------------------------------------------------------------------
function groupOf(session) {
  if (session.pinned && state.view === "live") return "Pinned";
  const day = (date) => new Date(date.getFullYear(), date.getMonth(), date.getDate()).getTime();
  const days = Math.round((day(new Date()) - day(new Date(session.last_activity))) / 86400000);
  if (days <= 0) return "Today";
  if (days === 1) return "Yesterday";
  return days <= 7 ? "Previous 7 days" : "Older";
}

function order(a, b) {
  const pinned = state.view === "live" ? Number(Boolean(b.pinned)) - Number(Boolean(a.pinned)) : 0;
  return pinned || b.last_activity.localeCompare(a.last_activity);
}

// Draws the rows from state.items, keeping focus where it was (a row's link or action).
function render() {
  const active = document.activeElement;
  const row = active && active.closest ? active.closest(".session-row") : null;
  const focusId = row ? row.querySelector(".session-item").dataset.sessionId : null;
  const focusAction = active && active.dataset ? active.dataset.action : null;
  const groups = [];
  let current = null;
  for (const session of state.items) {
    const label = groupOf(session);
    if (!current || current.label !== label) {
      current = { label, element: groupElement(label) };
      groups.push(current.element);
    }
    const li = sessionRow(session, hooks.personaName(session.persona), session.session_id === hooks.current());
    li.querySelector(".session-select").checked = state.selected.has(session.session_id);
    current.element.querySelector("ul").append(li);
  }
  els.list.replaceChildren(...groups);
  showCount();
  if (focusId) {
    const link = els.list.querySelector(`.session-item[data-session-id="${CSS.escape(focusId)}"]`);
    const target = link && focusAction ? link.closest("li").querySelector(`[data-action="${focusAction}"]`) : link;
    if (target) target.focus();
    else if (row) (els.list.querySelector(".session-item") || els.search).focus();
  }
}

function showCount() {
  const shown = state.items.length;
  let text = `Showing ${shown} of ${state.total}`;
  if (state.query) text += ` matching “${state.query}”`;
  if (!state.total) {
    if (state.query) text = `No sessions match “${state.query}”.`;
    else text = state.view === "archived" ? "Nothing is archived." : "No sessions yet: create one with New.";
  }
  els.status.textContent = text;
  els.more.hidden = state.next === null;
  els.more.textContent = `Load more (${Math.max(state.total - shown, 0)} more)`;
  showSelection();
}

// The first page of the view (reset), or the next one.
export async function load(reset = true) {
  const seq = ++state.seq;
  const params = new URLSearchParams({ limit: PAGE, offset: reset ? 0 : state.next || 0 });
  if (state.view === "archived") params.set("archived", "true");
  if (state.query) params.set("q", state.query);
  els.more.disabled = true;
  try {
    const data = await requestJSON(`/api/sessions?${params}`);
    if (seq !== state.seq) return;
    const known = new Set(reset ? [] : state.items.map((s) => s.session_id));
    const fresh = data.sessions.filter((s) => !known.has(s.session_id));
    state.items = reset ? fresh : [...state.items, ...fresh];
    state.total = data.count;
    state.next = data.next_offset;
    if (reset) state.selected.clear();
    render();
  } catch (error) {
    if (seq === state.seq) els.status.textContent = `Could not load your sessions: ${describe(error)}`;
  } finally {
    els.more.disabled = false;
  }
}

// Sessions to show at the top of the list whatever the view (just imported, say).
export function showFirst(sessions) {
  const ids = new Set(sessions.map((s) => s.session_id));
  const rest = state.items.filter((s) => !ids.has(s.session_id));
  state.items = [...sessions, ...rest];
  render();
}

// A session changed here or elsewhere: its row shows it, or leaves a view it no longer fits.
function changed(session) {
  const fits = session.archived === (state.view === "archived");
  const at = state.items.findIndex((s) => s.session_id === session.session_id);
  if (at >= 0 && !fits) {
    state.items.splice(at, 1);
    state.total -= 1;
    state.selected.delete(session.session_id);
  } else if (at >= 0) {
    state.items[at] = session;
  } else if (fits) {
    state.items.push(session);
    state.total += 1;
  }
  state.items.sort(order);
  render();
  const shown = shownSession();
  if (shown && shown.session_id === session.session_id) sessionShown(session);
}

function removed(ids) {
  const gone = new Set(ids);
  const before = state.items.length;
  state.items = state.items.filter((s) => !gone.has(s.session_id));
  state.total -= before - state.items.length;
  for (const id of ids) state.selected.delete(id);
  render();
}

// --- undo -----------------------------------------------------------------------------------
// Shows `text` with Undo for a few seconds; `commit` runs when that time is up (or another
// toast comes, or the page is left), `undo` if Undo is pressed first.
function offerUndo(text, undo, commit = () => {}) {
  settleToast();
  els.toastText.textContent = text;
  els.toast.hidden = false;
  toast = { undo, commit, timer: setTimeout(settleToast, UNDO_MS) };
}

function settleToast() {
  if (!toast) return;
  const { commit, timer } = toast;
  toast = null;
  clearTimeout(timer);
  els.toast.hidden = true;
  commit();
}

async function undoToast() {
  if (!toast) return;
  const { undo, timer } = toast;
  toast = null;
  clearTimeout(timer);
  els.toast.hidden = true;
  try {
    await undo();
  } catch (error) {
    els.status.textContent = `Could not undo: ${describe(error)}`;
  }
  (els.list.querySelector(".session-item") || els.search).focus();
}

// --- one session ----------------------------------------------------------------------------
function find(id) {
  return state.items.find((s) => s.session_id === id);
}

async function act(action, session) {
  const id = session.session_id;
  try {
    if (action === "rename" || action === "describe") return openEdit(action, session);
    if (action === "share") return openShare(id, sessionTitle(session));
    if (action === "pin") {
      const pinned = !session.pinned;
      changed(await patch(id, { pinned }));
      offerUndo(`${pinned ? "Pinned" : "Unpinned"} ${quoted(session)}.`, async () => changed(await patch(id, { pinned: !pinned })));
    } else if (action === "archive") {
      const archived = !session.archived;
      changed(await patch(id, { archived }));
      offerUndo(`${archived ? "Archived" : "Unarchived"} ${quoted(session)}.`, async () =>
        changed(await patch(id, { archived: !archived })),
      );
    } else if (action === "delete") {
      if (!(await confirmDelete(`Delete ${quoted(session)}?`, "Its messages are deleted with it."))) return;
      deleteLater([session], `Deleted ${quoted(session)}.`);
    }
  } catch (error) {
    els.status.textContent = `Could not ${action} ${quoted(session)}: ${describe(error)}`;
  }
}

// Takes the rows away now and deletes once Undo is no longer offered.
function deleteLater(sessions, text) {
  const ids = sessions.map((s) => s.session_id);
  removed(ids);
  offerUndo(
    text,
    () => {
      state.items.push(...sessions);
      state.total += sessions.length;
      state.items.sort(order);
      render();
    },
    () => {
      const keepalive = true; // sent even while the page is being left
      const sent =
        ids.length === 1 ? request(api(ids[0]), { method: "DELETE", keepalive }) : bulk("delete", ids, { keepalive });
      sent.catch((error) => {
        els.status.textContent = `Could not delete: ${describe(error)}`;
        load(true);
      });
    },
  );
}

function confirmDelete(title, text) {
  els.confirmTitle.textContent = title;
  els.confirmText.textContent = `${text} You can undo it for a few seconds.`;
  els.confirm.returnValue = "";
  openDialog(els.confirm);
  return new Promise((resolve) => {
    els.confirm.addEventListener("close", () => resolve(els.confirm.returnValue === "delete"), { once: true });
  });
}

// --- Rename and Describe ------------------------------------------------------------------
function openEdit(kind, session) {
  editing = { kind, session };
  const naming = kind === "rename";
  els.editTitle.textContent = naming ? "Rename session" : "Describe session";
  $("edit-name-field").hidden = !naming;
  $("edit-description-field").hidden = naming;
  const field = naming ? els.editName : els.editDescription;
  field.value = (naming ? session.display_name : session.description) || "";
  countField(field);
  els.editError.hidden = true;
  openDialog(els.edit);
  field.focus();
}

async function saveEdit(event) {
  if (!event.submitter || event.submitter.value !== "save" || !editing) return;
  event.preventDefault();
  const { kind, session } = editing;
  const field = kind === "rename" ? els.editName : els.editDescription;
  if (!countField(field)) return field.focus();
  const value = field.value.trim() || null;
  try {
    changed(await patch(session.session_id, kind === "rename" ? { display_name: value } : { description: value }));
    els.edit.close();
  } catch (error) {
    els.editError.textContent = `Not saved: ${describe(error)}`;
    els.editError.hidden = false;
  }
}

// --- Select ------------------------------------------------------------------------------------
function setSelecting(on) {
  els.select.setAttribute("aria-pressed", String(on));
  els.dialog.classList.toggle("selecting", on);
  els.bulkBar.hidden = !on;
  if (!on) state.selected.clear();
  render();
}

function showSelection() {
  const n = state.selected.size;
  els.selected.textContent = `${n} selected`;
  els.selectAll.checked = n > 0 && n === state.items.length;
  els.selectAll.indeterminate = n > 0 && n < state.items.length;
  for (const button of els.bulkBar.querySelectorAll("button")) button.disabled = n === 0;
  els.bulkBar.querySelector('[data-bulk="archive"]').textContent = state.view === "archived" ? "Unarchive" : "Archive";
}

// The selected sessions' ids, in the order shown.
export function selectedIds() {
  return state.items.filter((s) => state.selected.has(s.session_id)).map((s) => s.session_id);
}

async function bulkAct(action) {
  const chosen = state.items.filter((s) => state.selected.has(s.session_id));
  if (!chosen.length) return;
  const count = plural(chosen.length, "session");
  if (action === "delete") {
    if (await confirmDelete(`Delete ${count}?`, "Their messages are deleted with them.")) deleteLater(chosen, `Deleted ${count}.`);
    return;
  }
  const archived = state.view === "archived";
  const [doing, undoing, said] =
    action === "pin"
      ? ["pin", "unpin", "Pinned"]
      : archived
        ? ["unarchive", "archive", "Unarchived"]
        : ["archive", "unarchive", "Archived"];
  try {
    const answer = await bulk(doing, chosen.map((s) => s.session_id));
    const done = answer.results.filter((r) => r.status === 200);
    for (const result of done) changed(result.session);
    const refused = answer.results.filter((r) => r.status !== 200);
    if (refused.length) els.status.textContent = `${plural(refused.length, "session")} not changed: ${refused[0].error}`;
    offerUndo(`${said} ${plural(done.length, "session")}.`, async () => {
      const back = await bulk(undoing, done.map((r) => r.session_id));
      for (const result of back.results) if (result.session) changed(result.session);
    });
  } catch (error) {
    els.status.textContent = `Could not ${doing} them: ${describe(error)}`;
  }
}

// --- wiring ---------------------------------------------------------------------------------
// `given`: current() the shown session's id, open(id) switches to it, personaName(id).
export function startManager(given) {
  hooks = given;
  returnFocusOnClose(els.edit);
  returnFocusOnClose(els.confirm);
  countFields(els.editForm);
  els.editForm.addEventListener("submit", saveEdit);
  els.undo.addEventListener("click", undoToast);
  els.more.addEventListener("click", () => load(false));
  els.select.addEventListener("click", () => setSelecting(els.select.getAttribute("aria-pressed") !== "true"));
  els.selectAll.addEventListener("change", () => {
    state.selected = new Set(els.selectAll.checked ? state.items.map((s) => s.session_id) : []);
    render();
  });
  for (const button of els.bulkBar.querySelectorAll("[data-bulk]")) {
    button.addEventListener("click", () => bulkAct(button.dataset.bulk));
  }
  let typing = null;
  els.search.addEventListener("input", () => {
    clearTimeout(typing);
    typing = setTimeout(() => {
      state.query = els.search.value.trim();
      load(true);
    }, 250);
  });
  for (const radio of els.dialog.querySelectorAll('input[name="sessions-view"]')) {
    radio.addEventListener("change", () => {
      state.view = radio.value;
      load(true);
    });
  }
  els.list.addEventListener("click", (event) => {
    const row = event.target.closest(".session-row");
    if (!row) return;
    const id = row.querySelector(".session-item").dataset.sessionId;
    const button = event.target.closest("[data-action]");
    if (button) return act(button.dataset.action, find(id));
    const download = event.target.closest(".row-export a");
    if (download) download.closest("details").open = false; // the link itself downloads
    const link = event.target.closest(".session-item");
    if (link && !(event.ctrlKey || event.metaKey || event.shiftKey || event.button)) {
      event.preventDefault(); // the link opens it without a page load (and works without the script)
      hooks.open(id);
    }
  });
  els.list.addEventListener("change", (event) => {
    if (!event.target.classList.contains("session-select")) return;
    const id = event.target.closest(".session-row").querySelector(".session-item").dataset.sessionId;
    if (event.target.checked) state.selected.add(id);
    else state.selected.delete(id);
    showSelection();
  });
  // Up and Down move between sessions; Tab goes through a row's actions.
  els.list.addEventListener("keydown", (event) => {
    if (!event.target.classList.contains("session-item") || !["ArrowDown", "ArrowUp"].includes(event.key)) return;
    const links = [...els.list.querySelectorAll(".session-item")];
    const next = links[links.indexOf(event.target) + (event.key === "ArrowDown" ? 1 : -1)];
    if (next) {
      event.preventDefault();
      next.focus();
    }
  });
  els.dialog.addEventListener("close", settleToast);
  window.addEventListener("pagehide", settleToast);
}
