// The page script's entry (a module: it runs once the page is parsed). It wires the parts up
// and takes over from the no-script page: the message box works from here on.

import { onStoreStatus } from "./api.js";
import { startChat } from "./chat.js";
import { startHeader } from "./header.js";
import { formatTimes } from "./render.js";
import { startSearch } from "./search.js";
import { personasFromForm, startSessions } from "./sessions.js";
import { startTransfer } from "./transfer.js";
import { startShare } from "./share.js";

const STORE_DOWN = "The session store is unavailable right now, so chats cannot be loaded or saved. Try again shortly.";
const banner = document.getElementById("store-banner");

onStoreStatus((ok) => {
  if (ok) {
    banner.hidden = true;
  } else {
    banner.textContent = STORE_DOWN;
    banner.hidden = false;
  }
});

document.documentElement.dataset.script = "on"; // shows what needs the script (.script-only)
startHeader();
formatTimes(document); // before the log opens at the newest message: its height is final
const personas = personasFromForm();
startChat(personas);
startSessions(personas);
startSearch(personas);
startTransfer(personas);
startShare();
document.getElementById("needs-script").hidden = true;
