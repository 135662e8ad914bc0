// The modals: opened as real modals, closed by Escape, ✕ or a tap on the backdrop (a phone has
// no Escape key), and focus goes back to whatever opened them. Also the character counters of
// their fields: a limit is shown as it is reached, never applied by cutting the text.

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
  // A click on the dialog element itself outside its box is a click on the backdrop
  // (closedby="any" does the same where the browser knows it).
  dialog.addEventListener("click", (event) => {
    // ✕ is <button command="close">; a browser that does not know commands needs this
    if (event.target.closest(".modal-close") && !("command" in HTMLButtonElement.prototype)) return dialog.close();
    if (event.target !== dialog) return;
    const box = dialog.getBoundingClientRect();
    const inside =
      event.clientX >= box.left && event.clientX <= box.right && event.clientY >= box.top && event.clientY <= box.bottom;
    if (!inside) dialog.close();
  });
}

// "12 / 100", or how far over the limit it is; true while the field is within its limit.
export function countField(field) {
  const limit = Number(field.dataset.limit);
  const counter = document.getElementById(field.getAttribute("aria-describedby"));
  const length = [...field.value].length;
  const over = length > limit;
  counter.textContent = over
    ? `${length - limit} over the limit of ${limit.toLocaleString("en")} characters`
    : `${length} / ${limit.toLocaleString("en")}`;
  counter.classList.toggle("counter-over", over);
  if (over) field.setAttribute("aria-invalid", "true");
  else if (field.dataset.counted) field.removeAttribute("aria-invalid");
  field.dataset.counted = "1";
  return !over;
}

// Counts every field with data-limit in `root` as it is typed in; answers a check for them all.
export function countFields(root) {
  const fields = [...root.querySelectorAll("[data-limit]")];
  for (const field of fields) field.addEventListener("input", () => countField(field));
  return () => fields.map(countField).every(Boolean);
}
