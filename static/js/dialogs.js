// The two modals: opened as real modals, and focus goes back to whatever opened them.

const openers = new Map();

export function openDialog(dialog, opener) {
  openers.set(dialog, opener || document.activeElement);
  if (dialog.open) dialog.close();
  dialog.showModal();
}

export function returnFocusOnClose(dialog) {
  dialog.addEventListener("close", () => {
    const opener = openers.get(dialog);
    openers.delete(dialog);
    if (opener && opener.isConnected && typeof opener.focus === "function") opener.focus();
  });
}
