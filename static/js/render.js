// Messages and session rows for the page, and times in the visitor's own time zone.
// Everything users or the assistant wrote is inserted with textContent, never as HTML.

const timeFormat = new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit" });
const dateTimeFormat = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "short" });

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
    el.textContent = timeFormat.format(date);
    el.title = dateTimeFormat.format(date);
  }
}

export function formatTimes(root) {
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

// A chat message; `who` names the assistant.
export function messageElement(message, who, extraClass) {
  const article = make("article", `msg msg-${message.role === "user" ? "user" : "assistant"}`);
  if (extraClass) article.classList.add(extraClass);
  if (message.metadata && message.metadata.interrupted) article.classList.add("msg-interrupted");
  const meta = make("header", "msg-meta");
  meta.append(make("span", "msg-who", message.role === "user" ? "You" : who));
  if (message.timestamp) meta.append(timeElement(message.timestamp));
  article.append(meta, make("p", "msg-text", message.content));
  return article;
}

// A row of the Sessions list; `personaName` is shown under the session's name.
export function sessionRow(session, personaName, isCurrent) {
  const li = make("li");
  const button = make("button", "session-item");
  button.type = "button";
  button.dataset.sessionId = session.session_id;
  if (isCurrent) button.setAttribute("aria-current", "true");
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
  button.append(make("span", "session-name", session.display_name || session.user_id), make("span", "session-persona", personaName), meta);
  li.append(button);
  return li;
}
