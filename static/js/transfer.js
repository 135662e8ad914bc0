// Export and import (templates/transfer.html): the open session's downloads, the export of every
// session or of those selected in the Sessions manager, and the Import panel of the Sessions dialog (upload progress, then what came in and
// what was skipped, the imported sessions added to the list).

import { ApiError, describe, request, requestJSON } from "./api.js";
import { currentSessionId, storeUnwritten, unwrittenSessionId } from "./chat.js";
import { selectedIds, showFirst } from "./manager.js";
import { exportUrl } from "./render.js";

const $ = (id) => document.getElementById(id);
const csrfMeta = document.querySelector('meta[name="csrf-token"]');
const els = {
  exportLinks: $("export-links"),
  file: $("import-file"),
  button: $("import-button"),
  progress: $("import-progress"),
  status: $("import-status"),
  skipped: $("import-skipped"),
  sessionsStatus: $("sessions-status"),
};
let personas = {};

function download(href, filename) {
  const link = document.createElement("a");
  link.href = href;
  if (filename) link.download = filename;
  document.body.append(link);
  link.click();
  link.remove();
}

// A session link downloads whichever session is open (a first session is stored before).
async function exportOpenSession(event) {
  const link = event.target.closest("a[data-format]");
  if (!link) return;
  event.preventDefault();
  try {
    if (currentSessionId() && currentSessionId() === unwrittenSessionId()) await storeUnwritten();
  } catch (error) {
    els.status.textContent = `Could not export: ${describe(error)}`;
    return;
  }
  if (currentSessionId()) download(exportUrl(currentSessionId(), link.dataset.format));
}

// The export of several sessions (every one of the visitor's when `sessionIds` is null) as a file.
export async function exportSessions(sessionIds, format) {
  const body = { format };
  if (sessionIds) body.session_ids = sessionIds;
  const response = await request("/api/export", {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(body),
  });
  const blob = await response.blob();
  const url = URL.createObjectURL(blob);
  download(url, format === "markdown" ? "chatapp.zip" : "chatapp.json");
  setTimeout(() => URL.revokeObjectURL(url), 60000);
}

// Uploads with XMLHttpRequest: fetch cannot tell how much of a request body has been sent.
function upload(file) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open("POST", "/api/import");
    xhr.setRequestHeader("Content-Type", "application/json");
    xhr.setRequestHeader("Accept", "application/json");
    xhr.setRequestHeader("X-CSRFToken", csrfMeta ? csrfMeta.content : "");
    xhr.upload.addEventListener("progress", (event) => {
      if (!event.lengthComputable) return;
      els.progress.value = Math.round((100 * event.loaded) / event.total);
      els.progress.textContent = `${els.progress.value}%`;
      if (event.loaded === event.total) els.status.textContent = "Uploaded; importing…";
    });
    xhr.addEventListener("load", () => {
      let data = null;
      try {
        data = JSON.parse(xhr.responseText);
      } catch {
        // not JSON: the status line says it
      }
      if (xhr.status >= 200 && xhr.status < 300 && data) resolve(data);
      else {
        const message = data && data.error ? data.error.message : `The server answered ${xhr.status}.`;
        reject(new ApiError(xhr.status, message, data && data.error ? data.error.fields : null));
      }
    });
    xhr.addEventListener("error", () => reject(new TypeError("network")));
    xhr.send(file);
  });
}

function plural(count, word) {
  return `${count} ${word}${count === 1 ? "" : "s"}`;
}

// The imported sessions at the top of the list (they are archived: the list shows live ones).
async function listImported(answer) {
  if (!answer.sessions.length) return;
  const ids = new Set(answer.sessions.map((s) => s.session_id));
  const kept = await requestJSON("/api/sessions?archived=true&limit=200");
  showFirst(kept.sessions.filter((s) => ids.has(s.session_id)));
}

async function importFile() {
  const file = els.file.files[0];
  if (!file) return;
  els.button.disabled = true;
  els.skipped.hidden = true;
  els.skipped.replaceChildren();
  els.progress.value = 0;
  els.progress.hidden = false;
  els.status.textContent = `Uploading ${file.name}…`;
  try {
    const answer = await upload(file);
    const skipped = answer.skipped.length ? `; skipped ${answer.skipped.length}` : "";
    els.status.textContent = `Imported ${plural(answer.imported, "session")}${skipped}.`;
    for (const item of answer.skipped) {
      const li = document.createElement("li");
      li.textContent = `${item.title || `Conversation ${item.index + 1}`}: ${item.reason}`;
      els.skipped.append(li);
    }
    els.skipped.hidden = !answer.skipped.length;
    await listImported(answer);
    els.file.value = "";
  } catch (error) {
    els.status.textContent = `Nothing was imported: ${describe(error)}`;
  } finally {
    els.progress.hidden = true;
    els.button.disabled = !els.file.files.length;
  }
}

export function startTransfer(known) {
  personas = known;
  if (els.exportLinks) {
    els.exportLinks.addEventListener("click", exportOpenSession);
    // The links follow the open session (the page may switch without a load).
    new MutationObserver(() => {
      els.exportLinks.hidden = !currentSessionId();
    }).observe(document.body, { attributes: true, attributeFilter: ["data-session-id"] });
  }
  if (!els.file) return;
  els.file.addEventListener("change", () => {
    els.button.disabled = !els.file.files.length;
    els.status.textContent = "";
  });
  els.button.addEventListener("click", importFile);
  // Export all (the Import panel), or the selected sessions (Select mode's bar).
  for (const button of document.querySelectorAll("[data-export-all], [data-export-selected]")) {
    const all = "exportAll" in button.dataset;
    const status = all ? els.status : els.sessionsStatus;
    button.addEventListener("click", async () => {
      const ids = all ? null : selectedIds();
      try {
        await exportSessions(ids, button.dataset.exportAll || button.dataset.exportSelected);
        if (ids) status.textContent = `Exported ${plural(ids.length, "session")}.`;
      } catch (error) {
        status.textContent = `Could not export: ${describe(error)}`;
      }
    });
  }
}
