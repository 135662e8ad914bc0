// The Share dialog: make a link to a session (the shown one from the header's Share, a row's
// from the Sessions manager) with an expiry and a mode, copy it, and see the session's working
// links with their expiry and views, each with Copy and Revoke. Everything goes in with
// textContent; links come from the API (/api/sessions/{id}/shares).

import { describe, requestJSON } from "./api.js";
import { currentSessionId, storeUnwritten } from "./chat.js";
import { openDialog, returnFocusOnClose } from "./dialogs.js";

const $ = (id) => document.getElementById(id);
const els = {
  button: $("share-button"),
  dialog: $("share-dialog"),
  title: $("share-dialog-title"),
  close: $("share-close"),
  form: $("share-form"),
  expiry: $("share-expiry"),
  error: $("share-error"),
  create: $("share-create"),
  created: $("share-created"),
  url: $("share-url"),
  copy: $("share-copy"),
  copied: $("share-copied"),
  list: $("share-list"),
  status: $("share-status"),
  rowTemplate: $("share-row-template"),
};
const dateTime = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "short" });
let sharing = null; // the session the dialog is open for; null: whichever is shown
const sharesUrl = () => `/api/sessions/${encodeURIComponent(sharing || currentSessionId())}/shares`;

function expiryText(share) {
  return share.expires_at ? `Expires ${dateTime.format(new Date(share.expires_at))}` : "Never expires";
}

async function copyText(text, input) {
  try {
    await navigator.clipboard.writeText(text);
    els.copied.textContent = "Link copied.";
  } catch {
    // No clipboard access (an insecure origin, or permission refused): select it for Ctrl+C.
    if (input) {
      input.focus();
      input.select();
    }
    els.copied.textContent = "Select the link and copy it (Ctrl+C or Cmd+C).";
  }
}

function row(share) {
  const li = els.rowTemplate.content.firstElementChild.cloneNode(true);
  li.dataset.shareId = share.share_id;
  li.querySelector(".share-row-mode").textContent = share.mode === "live" ? "Live" : "Snapshot";
  li.querySelector(".share-row-expiry").textContent = expiryText(share);
  li.querySelector(".share-row-views").textContent = `${share.views} view${share.views === 1 ? "" : "s"}`;
  const copy = li.querySelector(".share-row-copy");
  copy.setAttribute("aria-label", `Copy link (${li.querySelector(".share-row-mode").textContent}, ${expiryText(share)})`);
  copy.addEventListener("click", () => copyText(share.url, null));
  const revoke = li.querySelector(".share-row-revoke");
  revoke.addEventListener("click", () => revokeShare(share, revoke));
  return li;
}

async function loadShares() {
  els.status.textContent = "Loading…";
  try {
    const data = await requestJSON(sharesUrl());
    els.list.replaceChildren(...data.shares.map(row));
    els.status.textContent = data.count ? "" : "No active links for this session.";
  } catch (error) {
    els.status.textContent = `Could not load this session's links: ${describe(error)}`;
  }
}

async function revokeShare(share, button) {
  button.disabled = true;
  try {
    await requestJSON(`/api/shares/${encodeURIComponent(share.share_id)}`, { method: "DELETE" });
    els.copied.textContent = "Link revoked: it no longer works.";
    if (els.url.value === share.url) els.created.hidden = true;
  } catch (error) {
    els.copied.textContent = `Could not revoke the link: ${describe(error)}`;
  }
  await loadShares();
  els.create.focus();
}

async function createShare(event) {
  event.preventDefault();
  els.error.hidden = true;
  els.create.disabled = true;
  try {
    await storeUnwritten(); // a first session that was never written to is stored now, to be shared
    const mode = new FormData(els.form).get("mode");
    const expiresIn = els.expiry.value === "" ? null : Number(els.expiry.value);
    const share = await requestJSON(sharesUrl(), {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ expires_in: expiresIn, mode }),
    });
    els.url.value = share.url;
    els.created.hidden = false;
    els.copied.textContent = "";
    els.url.focus();
    els.url.select();
    await loadShares();
  } catch (error) {
    els.error.textContent = `The link was not created: ${describe(error)}`;
    els.error.hidden = false;
  } finally {
    els.create.disabled = false;
  }
}

// Opens the dialog for `sessionId` (titled by `title`), or for the shown session when it is null;
// focus goes back to `opener` (by default what has it now) when it closes.
export async function openShare(sessionId = null, title = null, opener = undefined) {
  sharing = sessionId;
  els.title.textContent = title ? `Share “${title}”` : "Share this conversation";
  els.created.hidden = true;
  els.error.hidden = true;
  els.copied.textContent = "";
  els.list.replaceChildren();
  openDialog(els.dialog, opener);
  els.expiry.focus();
  try {
    await storeUnwritten();
  } catch {
    // listed below as an error
  }
  await loadShares();
}

export function startShare() {
  if (!els.button || !els.dialog) return;
  returnFocusOnClose(els.dialog);
  els.button.hidden = false; // it needs this script: hidden on the no-script page
  els.button.addEventListener("click", (event) => {
    event.preventDefault();
    openShare(null, null, els.button);
  });
  els.form.addEventListener("submit", createShare);
  els.copy.addEventListener("click", () => copyText(els.url.value, els.url));
  els.close.addEventListener("click", () => els.dialog.close());
  // A click on the backdrop (outside the dialog's box) closes it, like Escape.
  els.dialog.addEventListener("click", (event) => {
    if (event.target !== els.dialog) return;
    const box = els.dialog.getBoundingClientRect();
    const inside =
      event.clientX >= box.left && event.clientX <= box.right && event.clientY >= box.top && event.clientY <= box.bottom;
    if (!inside) els.dialog.close();
  });
}
