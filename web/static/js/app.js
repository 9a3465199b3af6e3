// mailsink's web UI: wires the list, the message pane, the live stream and the keyboard.

import { call, route, url } from "./api.js";
import { count, plural } from "./format.js";
import { Inbox } from "./inbox.js";
import { installShortcuts } from "./keys.js";
import { Live } from "./live.js";
import { MessagePane } from "./message.js";
import { notify } from "./toast.js";
import "./density.js";
import "./tools.js";

const body = document.body;
const app = document.getElementById("app");
const search = document.getElementById("search");

const inbox = new Inbox({
  pageSize: Number(body.dataset.pageSize) || 50,
  onOpen: (id, options) => open(id, options),
});
const pane = new MessagePane({ onAction: (action) => paneAction(action) });

// -- URL state: view/ID?q=…&start=… ---------------------------------------------------

function stateURL(id) {
  return url(id ? `view/${encodeURIComponent(id)}` : "./", { q: inbox.query, start: inbox.start });
}

function openedFromURL() {
  const match = /^view\/([^/]+)$/.exec(route());
  return match ? decodeURIComponent(match[1]) : null;
}

function title() {
  const unread = inbox.unread ? `(${count(inbox.unread)}) ` : "";
  const subject = pane.article()?.dataset.subject;
  const what = pane.id ? subject || "(no subject)" : inbox.query ? `Search: ${inbox.query}` : "Inbox";
  document.title = `${unread}${what} · mailsink`;
}
document.addEventListener("mailsink:counts", title);

// -- opening and closing messages -------------------------------------------------------

async function open(id, { push = true, focusPane = false } = {}) {
  if (!id) return;
  inbox.markOpen(id);
  inbox.setCursor(id, { focus: false });
  app.classList.add("has-message");
  app.classList.remove("is-empty");
  if (push) history.pushState({ id }, "", stateURL(id));
  const exists = await pane.load(id);
  if (exists === null) return; // another message was opened meanwhile
  inbox.showPinned();
  if (exists) {
    inbox.setRead([id], true);
  }
  title();
  if (focusPane) pane.article()?.querySelector("[role='tab'][aria-selected='true']")?.focus();
}

function close({ push = true } = {}) {
  const id = pane.current;
  inbox.markOpen(null);
  pane.showNothing();
  app.classList.remove("has-message");
  if (push) history.pushState({}, "", stateURL(null));
  inbox.update();
  title();
  if (id && inbox.rows.has(id)) inbox.setCursor(id);
  else inbox.focusCursor();
}

async function removeOne(id) {
  if (!id) return;
  const next = inbox.step(1, id) ?? inbox.step(-1, id);
  const wasOpen = pane.current === id;
  await call("DELETE", "api/v1/messages", { IDs: [id] });
  inbox.removed([id]);
  if (wasOpen) {
    if (next) await open(next, { push: false }).then(() => history.replaceState({ id: next }, "", stateURL(next)));
    else close();
  } else if (next) {
    inbox.setCursor(next);
  }
  notify("Message deleted");
  scheduleReload();
}

async function paneAction(action) {
  const id = pane.id;
  try {
    if (action === "close") close();
    else if (action === "newer") stepOpen(-1);
    else if (action === "older") stepOpen(1);
    else if (action === "delete") await removeOne(id);
    else if (action === "toggle-read") {
      const read = await pane.toggleRead();
      if (read !== null) inbox.setRead([id], read);
    }
  } catch (error) {
    notify(error.message);
  }
}

function stepOpen(delta) {
  const next = inbox.step(delta, pane.current ?? inbox.cursor);
  if (next) open(next);
  else if (delta > 0 && !document.getElementById("older").disabled) page(1, { openEdge: "first" });
  else if (delta < 0 && inbox.start > 0) page(-1, { openEdge: "last" });
}

async function page(direction, { openEdge } = {}) {
  const start = Math.max(0, inbox.start + direction * inbox.pageSize);
  if (start === inbox.start) return;
  await inbox.load({ start });
  const ids = inbox.ids();
  if (openEdge && ids.length) {
    await open(openEdge === "first" ? ids[0] : ids[ids.length - 1]);
  } else {
    history.pushState({ id: pane.current }, "", stateURL(pane.current));
    inbox.focusCursor();
  }
}

// -- list toolbar ---------------------------------------------------------------------

document.getElementById("newer").addEventListener("click", () => page(-1));
document.getElementById("older").addEventListener("click", () => page(1));
document.getElementById("new-pill").addEventListener("click", async () => {
  await inbox.load({ query: inbox.query, start: 0 });
  history.pushState({ id: pane.current }, "", stateURL(pane.current));
});

// While a search is shown, the bulk actions act on what it matches, not on everything.
document.getElementById("mark-all-read").addEventListener("click", async () => {
  try {
    const query = inbox.query;
    await call("PUT", "api/v1/messages", query ? { Search: query, Read: true } : { Read: true });
    inbox.setRead(null, true);
    if (!query) pane.setRead(true);
    notify(query ? "Every matching message is marked read" : "Every message is marked read");
  } catch (error) {
    notify(error.message);
  }
});

const confirmDialog = document.getElementById("confirm");
const confirmTitle = document.getElementById("confirm-title");
const confirmText = document.getElementById("confirm-text");
const confirmOK = document.getElementById("confirm-ok");
let deleteQuery = "";
document.getElementById("delete-all").addEventListener("click", () => {
  deleteQuery = inbox.query;
  if (deleteQuery) {
    confirmTitle.textContent = "Delete the matching messages?";
    confirmText.textContent = `This deletes the ${plural(inbox.matched, "message", "messages")} that match “${deleteQuery}”. It cannot be undone.`;
    confirmOK.textContent = `Delete ${count(inbox.matched)}`;
  } else {
    confirmTitle.textContent = "Delete every message?";
    confirmText.textContent = `This deletes all ${count(inbox.total)} messages, not only the ones shown. It cannot be undone.`;
    confirmOK.textContent = "Delete all";
  }
  confirmDialog.returnValue = "";
  confirmDialog.showModal();
});
confirmDialog.addEventListener("close", async () => {
  if (confirmDialog.returnValue !== "confirm") return;
  try {
    if (deleteQuery) {
      await call("DELETE", url("api/v1/search", { query: deleteQuery }));
      scheduleReload();
    } else {
      await call("DELETE", "api/v1/messages");
      inbox.removed(null);
    }
    if (pane.current && !deleteQuery) close();
    notify(deleteQuery ? "The matching messages are deleted" : "Every message is deleted");
  } catch (error) {
    notify(error.message);
  }
});

// -- search -----------------------------------------------------------------------------

document.getElementById("search-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const query = search.value.trim();
  await inbox.load({ query, start: 0 });
  history.pushState({ id: pane.current }, "", stateURL(pane.current));
  title();
  inbox.focusCursor();
});
search.addEventListener("search", () => {
  // The field's clear button (or Escape in some browsers) empties it: show everything again.
  if (!search.value && inbox.query) search.form.requestSubmit();
});

// -- live updates -----------------------------------------------------------------------

// New mail is announced to screen readers, a burst as one sentence.
const announcer = document.getElementById("announcer");
let arrivals = [];
let announceTimer = null;
function announce(summary) {
  arrivals.push(summary);
  if (announceTimer) return;
  announceTimer = setTimeout(() => {
    const [first] = arrivals;
    const from = first.From ? first.From.Name || first.From.Address : "";
    announcer.textContent =
      arrivals.length === 1
        ? `New message${from ? ` from ${from}` : ""}: ${first.Subject || "no subject"}`
        : `${arrivals.length} new messages`;
    arrivals = [];
    announceTimer = null;
  }, 1000);
}

let reloadTimer = null;
/** Reload the current page soon, at most every half second, however many events arrive. */
function scheduleReload() {
  if (reloadTimer) return;
  reloadTimer = setTimeout(async () => {
    reloadTimer = null;
    await inbox.load({ keepCursor: true });
  }, 500);
}

new Live(
  {
    new(summary) {
      if (inbox.arrived(summary) === "search") scheduleReload();
      announce(summary);
    },
    update(summary) {
      inbox.changed(summary);
    },
    read({ IDs, Read }) {
      inbox.setRead(IDs, Read);
      if (pane.id && (IDs.length === 0 || IDs.includes(pane.id))) pane.setRead(Read);
    },
    deleted({ IDs }) {
      const openGone = pane.id && (IDs.length === 0 || IDs.includes(pane.id));
      inbox.removed(IDs.length ? IDs : null);
      if (openGone) pane.showGone();
      if (inbox.rows.size < inbox.pageSize || inbox.query) scheduleReload();
    },
    stats(stats) {
      inbox.totals(stats);
    },
    reset() {
      scheduleReload();
    },
    reconnected() {
      // Whatever happened while we were away (a restart, say) is in a fresh page.
      scheduleReload();
    },
  },
  document.getElementById("live"),
);

// -- keyboard ---------------------------------------------------------------------------

installShortcuts({
  next: (event) => move(1, event),
  previous: (event) => move(-1, event),
  open: () => {
    if (!inbox.cursor) return false;
    open(inbox.cursor, { focusPane: false });
  },
  close: () => {
    if (!pane.current) return false;
    close();
  },
  delete: () => {
    const id = pane.current ?? inbox.cursor;
    if (!id) return false;
    removeOne(id).catch((error) => notify(error.message));
  },
  toggleRead: () => {
    const id = pane.id ?? inbox.cursor;
    if (!id) return false;
    if (pane.id) return void paneAction("toggle-read");
    const summary = inbox.summary(id);
    const read = !summary.Read;
    call("PUT", "api/v1/messages", { IDs: [id], Read: read })
      .then(() => inbox.setRead([id], read))
      .catch((error) => notify(error.message));
  },
  search: () => {
    search.focus();
    search.select();
  },
  leaveSearch: () => inbox.focusCursor(),
  help: () => document.getElementById("shortcuts").showModal(),
  newerPage: () => page(-1),
  olderPage: () => {
    if (document.getElementById("older").disabled) return false;
    page(1);
  },
  tab: (event) => {
    if (!pane.id) return false;
    return pane.select(Number(event.key));
  },
});

function move(delta, event) {
  // With a message open, j/k open the next one (the reading pane follows); otherwise they
  // move the cursor, and Enter opens.
  if (pane.current && !event.key.startsWith("Arrow")) return stepOpen(delta);
  const next = inbox.step(delta);
  if (next) inbox.setCursor(next);
  else if (delta > 0 && !document.getElementById("older").disabled) page(1);
  else if (delta < 0 && inbox.start > 0) page(-1);
}

document.getElementById("help-button").addEventListener("click", () =>
  document.getElementById("shortcuts").showModal(),
);

// -- theme ------------------------------------------------------------------------------

const themeButton = document.getElementById("theme-toggle");
const systemDark = matchMedia("(prefers-color-scheme: dark)");

function showTheme() {
  const chosen = document.documentElement.dataset.theme || "system";
  themeButton.dataset.mode = chosen;
  const label = chosen === "system" ? "Theme: follows the system" : `Theme: ${chosen}`;
  themeButton.setAttribute("aria-label", `${label}. Change theme`);
  themeButton.title = label;
}

themeButton.addEventListener("click", () => {
  // system → the opposite of what the system shows → the same as the system → system
  const current = document.documentElement.dataset.theme || "system";
  const systemTheme = systemDark.matches ? "dark" : "light";
  const opposite = systemTheme === "dark" ? "light" : "dark";
  const next = current === "system" ? opposite : current === opposite ? systemTheme : "system";
  if (next === "system") delete document.documentElement.dataset.theme;
  else document.documentElement.dataset.theme = next;
  try {
    if (next === "system") localStorage.removeItem("mailsink-theme");
    else localStorage.setItem("mailsink-theme", next);
  } catch {
    /* storage disabled: the choice lasts for this page */
  }
  showTheme();
});
showTheme();

// -- small things -----------------------------------------------------------------------

document.addEventListener("click", (event) => {
  const copy = event.target.closest("[data-copy]");
  if (copy) {
    const text = document.querySelector(copy.dataset.copy)?.textContent ?? "";
    navigator.clipboard?.writeText(text).then(
      () => notify("Copied"),
      () => notify("Copying is not allowed here"),
    );
    return;
  }
  const home = event.target.closest("[data-action='home']");
  if (home && event.button === 0 && !event.metaKey && !event.ctrlKey) {
    event.preventDefault();
    search.value = "";
    if (pane.current) close({ push: false });
    inbox.load({ query: "", start: 0 }).then(() => {
      history.pushState({}, "", stateURL(null));
      title();
    });
  }
  const skip = event.target.closest("[data-skip]");
  if (skip) {
    event.preventDefault();
    inbox.focusCursor();
  }
});

window.addEventListener("popstate", async () => {
  const params = new URLSearchParams(location.search);
  const query = params.get("q") || "";
  const start = Number(params.get("start")) || 0;
  search.value = query;
  if (query !== inbox.query || start !== inbox.start) await inbox.load({ query, start });
  const id = openedFromURL();
  if (id && id !== pane.current) await open(id, { push: false });
  else if (!id && pane.current) close({ push: false });
});

// A phone has no room for the search syntax in the placeholder.
const narrow = matchMedia("(max-width: 640px)");
const fullPlaceholder = search.placeholder;
function placeholder() {
  search.placeholder = narrow.matches ? "Search mail" : fullPlaceholder;
}
narrow.addEventListener("change", placeholder);
placeholder();

// -- start ------------------------------------------------------------------------------

(function start() {
  const params = new URLSearchParams(location.search);
  inbox.query = params.get("q") || "";
  inbox.start = Number(params.get("start")) || 0;
  const opened = pane.id;
  if (opened) inbox.markOpen(opened);
  const initial = JSON.parse(document.getElementById("initial-page").textContent);
  if (initial) inbox.render(initial);
  else inbox.load();
  pane.enhance();
  title();
})();
