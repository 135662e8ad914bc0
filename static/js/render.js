// Messages and session rows for the page, and times in the visitor's own time zone.
// The markup is the server's: index.html renders an empty message and an empty session row
// from the same Jinja macros as the page (templates/macros.html) into <template>s, and these
// clone and fill them. Text goes in with textContent, attributes with setAttribute/dataset;
// the one thing parsed as HTML is a message's `html`, which the server rendered from Markdown
// and sanitized against an allow-list (chatapp/rendering.py), the same markup the page had.

const timeFormat = new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit" });
const dateTimeFormat = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "short" });
const fullFormat = new Intl.DateTimeFormat(undefined, { dateStyle: "full", timeStyle: "medium" });
const dayFormat = new Intl.DateTimeFormat(undefined, { weekday: "long", day: "numeric", month: "long", year: "numeric" });

// A day separator's text: Today, Yesterday, or the date.
export function formatDay(date) {
  const today = new Date();
  const yesterday = new Date(today);
  yesterday.setDate(today.getDate() - 1);
  if (date.toDateString() === today.toDateString()) return "Today";
  if (date.toDateString() === yesterday.toDateString()) return "Yesterday";
  return dayFormat.format(date);
}

function untilText(date) {
  const minutes = Math.round((date.getTime() - Date.now()) / 60000);
  if (minutes <= 0) return "expiring now";
  if (minutes < 60) return `in ${minutes} min`;
  const hours = Math.floor(minutes / 60);
  return minutes % 60 ? `in ${hours} h ${minutes % 60} min` : `in ${hours} h`;
}

// A <time datetime> in local time; data-format="expiry" says how long until, "datetime" the date too.
export function formatTime(el) {
  const date = new Date(el.dateTime);
  if (Number.isNaN(date.getTime())) return;
  const kind = el.dataset.format;
  if (kind === "expiry") {
    el.textContent = untilText(date);
    el.title = dateTimeFormat.format(date);
  } else if (kind === "datetime") {
    el.textContent = dateTimeFormat.format(date);
  } else {
    // A message's time: the hour, and the full date and time on hover (title) or focus (data-full).
    el.textContent = timeFormat.format(date);
    el.title = fullFormat.format(date);
    el.dataset.full = fullFormat.format(date);
  }
}

export function formatTimes(root) {
  for (const el of root.querySelectorAll("time[datetime]")) formatTime(el);
}

function fromTemplate(template) {
  return template.content.firstElementChild.cloneNode(true);
}

function setTime(el, iso) {
  el.setAttribute("datetime", iso);
  formatTime(el);
}

// Versions: "2 / 3" between previous and next (hidden with a single version).
export function showVersions(article, at, total) {
  const box = article.querySelector(".msg-versions");
  if (!box) return;
  box.dataset.version = String(at);
  box.dataset.versions = String(total);
  box.hidden = total < 2;
  box.querySelector(".msg-version-count").textContent = `${at + 1} / ${total}`;
  box.querySelector('[data-action="previous"]').disabled = at <= 0;
  box.querySelector('[data-action="next"]').disabled = at >= total - 1;
}

// Code blocks get a Copy button (the label says what language, when the fence named one).
export function addCodeButtons(root) {
  for (const head of root.querySelectorAll(".code-head")) {
    if (head.querySelector(".code-copy")) continue;
    const button = document.createElement("button");
    button.type = "button";
    button.className = "code-copy";
    button.dataset.action = "copy-code";
    button.textContent = "Copy";
    const language = head.querySelector(".code-lang");
    button.setAttribute("aria-label", language ? `Copy the ${language.textContent} code` : "Copy the code");
    head.append(button);
  }
}

// Everything the page's own (server-rendered) messages need from the script.
export function prepareMessages(root) {
  for (const article of root.querySelectorAll(".msg")) {
    const box = article.querySelector(".msg-versions");
    if (box) showVersions(article, Number(box.dataset.version), Number(box.dataset.versions));
  }
  addCodeButtons(root);
}

// A chat message; `who` names the assistant; `index` is its place in the session (null for the
// greeting and a reply being written, which have no actions).
export function messageElement(message, who, extraClass, index = null) {
  const article = fromTemplate(document.getElementById("message-template"));
  const user = message.role === "user";
  article.classList.toggle("msg-user", user);
  article.classList.toggle("msg-assistant", !user);
  if (extraClass) article.classList.add(extraClass);
  if (message.metadata && message.metadata.interrupted) article.classList.add("msg-interrupted");
  article.querySelector(".msg-who").textContent = user ? "You" : who;
  const time = article.querySelector("time");
  if (message.timestamp) setTime(time, message.timestamp);
  else time.remove();
  const text = article.querySelector(".msg-text");
  if (typeof message.html === "string") {
    text.innerHTML = message.html; // sanitized by the server (chatapp/rendering.py)
  } else {
    text.textContent = message.content ?? "";
    text.classList.add("msg-plain");
  }
  article.dataset.content = message.content ?? "";
  // The template carries every note (truncated, incomplete, stopped); keep those the metadata flags.
  for (const note of article.querySelectorAll("[data-note]")) {
    if (!(message.metadata && message.metadata[note.dataset.note])) note.remove();
  }
  if (index === null || index === undefined) {
    article.querySelector(".msg-actions").remove();
  } else {
    article.dataset.index = String(index);
    const total = (message.versions || []).length + 1;
    showVersions(article, Number.isInteger(message.version) ? message.version : total - 1, total);
  }
  addCodeButtons(article);
  return article;
}

// A session's download (format json or markdown): an attachment named after its title.
export function exportUrl(sessionId, format) {
  return `/api/sessions/${encodeURIComponent(sessionId)}/export?format=${format}`;
}

// What a session is called: the name given to it, else its first words (see macros.html).
export function sessionTitle(session) {
  return session.display_name || session.title || "New chat";
}

// A heading and its (empty) list for one period of the Sessions list.
export function groupElement(label) {
  const section = fromTemplate(document.getElementById("session-group-template"));
  section.querySelector(".session-group-label").textContent = label;
  return section;
}

function setLabel(el, text) {
  el.querySelector(".visually-hidden").textContent = text;
  el.title = text;
}

// A row of the Sessions list, like the rows the server rendered: a link to the session's
// address, a box to select it and its actions (Export's links download it); `personaName` is shown under its title.
export function sessionRow(session, personaName, isCurrent) {
  const li = fromTemplate(document.getElementById("session-template"));
  const title = sessionTitle(session);
  li.classList.toggle("is-pinned", Boolean(session.pinned));
  li.classList.toggle("is-archived", Boolean(session.archived));
  const link = li.querySelector(".session-item");
  link.href = `/sessions/${encodeURIComponent(session.session_id)}`;
  link.dataset.sessionId = session.session_id;
  if (isCurrent) link.setAttribute("aria-current", "true");
  li.querySelector(".session-select").setAttribute("aria-label", `Select ${title}`);
  li.querySelector(".session-name").textContent = title;
  li.querySelector(".session-persona").textContent = personaName;
  li.querySelector(".session-description").textContent = session.description || "";
  setTime(li.querySelector(".session-activity time"), session.last_activity);
  const count = session.message_count;
  li.querySelector(".session-count").textContent = `${count} message${count === 1 ? "" : "s"}`;
  const expiry = li.querySelector(".session-expiry");
  if (session.archived) expiry.textContent = "Kept (archived)";
  else if (session.pinned) expiry.textContent = "Kept (pinned)";
  else setTime(expiry.querySelector("time"), session.expires_at);
  li.querySelector(".session-actions").setAttribute("aria-label", `Actions for ${title}`);
  for (const a of li.querySelectorAll("a[data-format]")) a.href = exportUrl(session.session_id, a.dataset.format);
  setLabel(li.querySelector('[data-action="pin"]'), session.pinned ? "Unpin" : "Pin");
  setLabel(li.querySelector('[data-action="archive"]'), session.archived ? "Unarchive" : "Archive");
  return li;
}
