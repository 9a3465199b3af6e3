// The message list: one page at a time (the API's start/limit), kept current by live events.

import { getJSON, url } from "./api.js";
import { count, fullDate, plural, relative, size } from "./format.js";

function names(addresses) {
  return (addresses || []).map((a) => a.Name || a.Address).filter(Boolean);
}

export class Inbox {
  constructor({ pageSize, onOpen }) {
    this.pageSize = pageSize;
    this.onOpen = onOpen;
    this.list = document.getElementById("rows");
    this.template = document.getElementById("row-template");
    this.rows = new Map(); // ID -> {li, summary}
    this.query = "";
    this.start = 0;
    this.total = 0;
    this.unread = 0;
    this.matched = 0;
    this.cursor = null; // ID of the row keyboard moves act on
    this.openID = null;
    this.missed = 0; // new messages that arrived while a later page or a search was shown
    this.loading = null;
    this.failed = false; // the last search was refused (its error shows instead of the list)
    this.els = {
      title: document.getElementById("list-title"),
      counts: document.getElementById("counts"),
      range: document.getElementById("range"),
      newer: document.getElementById("newer"),
      older: document.getElementById("older"),
      empty: document.getElementById("empty-inbox"),
      emptySearch: document.getElementById("empty-search"),
      emptyQuery: document.getElementById("empty-query"),
      error: document.getElementById("list-error"),
      pill: document.getElementById("new-pill"),
      pillText: document.getElementById("new-pill-text"),
      app: document.getElementById("app"),
      pinned: document.getElementById("pinned-open"),
      pinnedSubject: document.getElementById("pinned-subject"),
    };
    this.openSummary = null; // the open message's summary, kept while its row is elsewhere
    this.els.pinned.addEventListener("click", (event) => {
      if (event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return;
      event.preventDefault();
      this.onOpen(this.openID, { focusPane: true });
    });
    this.list.addEventListener("click", (event) => {
      const link = event.target.closest(".row-link");
      if (!link || event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return;
      event.preventDefault();
      this.onOpen(link.closest(".row").dataset.id, { focusPane: false });
    });
    this.list.addEventListener("focusin", (event) => {
      const row = event.target.closest(".row");
      if (row) this.setCursor(row.dataset.id, { focus: false });
    });
    setInterval(() => this.refreshTimes(), 30000);
  }

  /** Fetch and show a page; a search goes to api/v1/search, everything else to api/v1/messages. */
  async load({ query = this.query, start = this.start, keepCursor = false } = {}) {
    const controller = new AbortController();
    this.loading?.abort();
    this.loading = controller;
    const limit = this.pageSize;
    try {
      // extras: each summary's Envelope, shown when a message has no From or To header.
      const page = query
        ? await getJSON("api/v1/search", { query, start, limit, extras: 1 }, controller.signal)
        : await getJSON("api/v1/messages", { start, limit, extras: 1 }, controller.signal);
      if (this.loading !== controller) return;
      if (!page.messages.length && start > 0 && page.messages_count > 0) {
        // Past the end (the last page's messages were deleted, say): show the last page.
        const last = Math.floor((page.messages_count - 1) / limit) * limit;
        this.loading = null;
        return this.load({ query, start: last, keepCursor });
      }
      this.query = query;
      this.render(page, { keepCursor });
      this.showError("");
    } catch (error) {
      if (error.name === "AbortError") return;
      this.query = query;
      this.start = start;
      if (query) {
        // What was listed does not answer this query: show its error alone, not "Nothing matches".
        this.failed = true;
        this.rows.clear();
        this.list.replaceChildren();
        this.matched = 0;
        this.update();
      }
      this.showError(
        error.status === 404 && query ? "Search is not available on this server." : error.message,
      );
    } finally {
      if (this.loading === controller) this.loading = null;
    }
  }

  /** Show a page the API returned (MessagesSummary). */
  render(page, { keepCursor = false } = {}) {
    const previousCursor = this.cursor;
    this.start = page.start;
    this.total = page.total;
    this.unread = page.unread;
    this.matched = page.messages_count;
    this.missed = 0;
    this.failed = false;
    this.rows.clear();
    const items = page.messages.map((summary) => this.build(summary));
    this.list.replaceChildren(...items);
    this.cursor = null;
    const ids = [...this.rows.keys()];
    const wanted = keepCursor && this.rows.has(previousCursor) ? previousCursor : this.openID;
    this.setCursor(this.rows.has(wanted) ? wanted : ids[0] ?? null, { focus: false });
    this.markOpen(this.openID);
    this.update();
  }

  build(summary) {
    const li = this.template.content.firstElementChild.cloneNode(true);
    this.rows.set(summary.ID, { li, summary });
    this.fill(li, summary);
    return li;
  }

  fill(li, s) {
    const field = (name) => li.querySelector(`[data-field="${name}"]`);
    li.dataset.id = s.ID;
    li.classList.toggle("is-unread", !s.Read);
    const link = li.querySelector(".row-link");
    link.href = url(`view/${encodeURIComponent(s.ID)}`, { q: this.query, start: this.start }).href;
    const from = (s.From && (s.From.Name || s.From.Address)) || (s.Envelope && s.Envelope.MailFrom) || "";
    field("from").textContent = from || "(no sender)";
    let to = names(s.To);
    if (!to.length && s.Envelope) to = s.Envelope.RcptTo || [];
    field("to").textContent = to.length ? `To ${to.slice(0, 3).join(", ")}${to.length > 3 ? ` +${to.length - 3}` : ""} —` : "";
    field("subject").textContent = s.Subject || "(no subject)";
    const tags = field("tags");
    tags.replaceChildren(
      ...(s.Tags || []).map((tag) => {
        const chip = document.createElement("span");
        chip.className = "tag";
        chip.textContent = tag;
        return chip;
      }),
    );
    field("snippet").textContent = s.Snippet || "";
    const time = field("time");
    const created = new Date(s.Created);
    time.dateTime = s.Created;
    time.textContent = relative(created);
    time.title = fullDate(created);
    field("size").textContent = size(s.Size);
    const attach = field("attachments");
    attach.hidden = !s.Attachments;
    attach.title = s.Attachments ? plural(s.Attachments, "attachment", "attachments") : "";
    field("state").textContent = s.Read ? "" : "Unread: ";
  }

  refreshTimes() {
    for (const { li, summary } of this.rows.values()) {
      li.querySelector('[data-field="time"]').textContent = relative(new Date(summary.Created));
    }
  }

  /** Counts, pager, empty states and the page title. */
  update() {
    const { els } = this;
    const searching = Boolean(this.query);
    const shown = this.rows.size;
    els.title.textContent = searching ? "Search results" : "Inbox";
    this.bulkLabels(searching);
    if (searching && this.failed) {
      els.counts.textContent = "Search not understood";
    } else if (searching) {
      els.counts.textContent = `${plural(this.matched, "match", "matches")} of ${count(this.total)}`;
    } else if (this.total) {
      els.counts.replaceChildren();
      if (this.unread) {
        const strong = document.createElement("strong");
        strong.textContent = `${count(this.unread)} unread`;
        els.counts.append(strong, ` · ${plural(this.total, "message", "messages")}`);
      } else {
        els.counts.textContent = plural(this.total, "message", "messages");
      }
    } else {
      els.counts.textContent = "No messages";
    }
    const end = this.start + shown;
    els.range.textContent = shown ? `${count(this.start + 1)}–${count(end)} of ${count(this.matched)}` : "";
    els.newer.disabled = this.start === 0;
    els.older.disabled = end >= this.matched;
    const nothing = shown === 0;
    els.empty.hidden = !(nothing && !searching && this.total === 0);
    els.emptySearch.hidden = !(nothing && searching && !this.failed);
    els.emptyQuery.textContent = this.query;
    els.app.classList.toggle("is-empty", nothing && !searching && this.total === 0 && !this.openID);
    els.pill.hidden = this.missed === 0;
    els.pillText.textContent = `${plural(this.missed, "new message", "new messages")}`;
    document.dispatchEvent(new CustomEvent("mailsink:counts"));
  }

  bulkLabels(searching) {
    for (const [id, all, matching] of [
      ["mark-all-read", "Mark all read", "Mark all matching read"],
      ["delete-all", "Delete all messages", "Delete all matching messages"],
    ]) {
      const button = document.getElementById(id);
      const label = searching ? matching : all;
      button.setAttribute("aria-label", label);
      button.title = label;
    }
  }

  showError(message) {
    this.els.error.textContent = message;
    this.els.error.hidden = !message;
  }

  // -- live changes ---------------------------------------------------------------------

  /**
   * A message arrived. On the first page of the unfiltered inbox it goes on top ("shown");
   * a search result list has to ask the server whether it matches ("search"); a later page
   * keeps still and counts it for the "new messages" pill ("later").
   */
  arrived(summary) {
    if (this.rows.has(summary.ID)) return "shown";
    if (this.query) return "search";
    if (this.start > 0) {
      this.missed += 1;
      this.update();
      return "later";
    }
    const li = this.build(summary);
    this.rows.delete(summary.ID);
    this.rows = new Map([[summary.ID, { li, summary }], ...this.rows]);
    li.classList.add("is-new");
    li.addEventListener("animationend", () => li.classList.remove("is-new"), { once: true });
    this.list.prepend(li);
    this.matched += 1;
    while (this.rows.size > this.pageSize) {
      const lastID = [...this.rows.keys()].pop();
      if (this.cursor === lastID) this.cursor = null;
      this.rows.get(lastID).li.remove();
      this.rows.delete(lastID);
    }
    if (this.cursor === null) this.setCursor(summary.ID, { focus: false });
    this.update();
    return "shown";
  }

  changed(summary) {
    const row = this.rows.get(summary.ID);
    if (!row) return;
    row.summary = summary;
    this.fill(row.li, summary);
  }

  setRead(ids, read) {
    const all = !ids || ids.length === 0;
    for (const [id, row] of this.rows) {
      if (!all && !ids.includes(id)) continue;
      row.summary = { ...row.summary, Read: read };
      this.fill(row.li, row.summary);
    }
  }

  /** Rows gone; returns whether the page now has room that a reload would fill. */
  removed(ids) {
    const all = !ids || ids.length === 0;
    let removedAny = false;
    for (const id of all ? [...this.rows.keys()] : ids) {
      const row = this.rows.get(id);
      if (!row) continue;
      if (this.cursor === id) this.cursor = this.neighbour(id);
      row.li.remove();
      this.rows.delete(id);
      removedAny = true;
    }
    if (this.cursor) this.setCursor(this.cursor, { focus: document.activeElement === document.body });
    this.update();
    return removedAny;
  }

  totals({ Total, Unread }) {
    this.total = Total;
    this.unread = Unread;
    if (!this.query) this.matched = Total;
    this.update();
  }

  // -- cursor and selection -------------------------------------------------------------

  ids() {
    return [...this.rows.keys()];
  }

  neighbour(id) {
    const ids = this.ids();
    const i = ids.indexOf(id);
    return ids[i + 1] ?? ids[i - 1] ?? null;
  }

  /** The ID `delta` rows away from `from` (or the cursor), or null past either end. */
  step(delta, from = this.cursor) {
    const ids = this.ids();
    if (!ids.length) return null;
    const i = ids.indexOf(from);
    if (i < 0) return ids[0];
    return ids[i + delta] ?? null;
  }

  setCursor(id, { focus = true } = {}) {
    if (this.cursor && this.rows.has(this.cursor)) {
      const old = this.rows.get(this.cursor).li;
      old.classList.remove("is-cursor");
      old.querySelector(".row-link").tabIndex = -1;
    }
    this.cursor = id;
    const row = id ? this.rows.get(id) : null;
    if (!row) return;
    row.li.classList.add("is-cursor");
    const link = row.li.querySelector(".row-link");
    link.tabIndex = 0; // a roving tabindex: Tab enters the list at the cursor
    if (focus) link.focus();
    else row.li.scrollIntoView({ block: "nearest" });
  }

  markOpen(id) {
    this.openID = id;
    if (!id) this.openSummary = null;
    else if (this.rows.has(id)) this.openSummary = this.rows.get(id).summary;
    else if (this.openSummary?.ID !== id) this.openSummary = null;
    for (const [rowID, row] of this.rows) {
      const open = rowID === id;
      row.li.classList.toggle("is-open", open);
      const link = row.li.querySelector(".row-link");
      if (open) link.setAttribute("aria-current", "true");
      else link.removeAttribute("aria-current");
    }
    this.showPinned();
  }

  /** The open message, pinned above the list when the page shown does not hold it. */
  showPinned() {
    const { pinned, pinnedSubject } = this.els;
    const id = this.openID;
    const elsewhere = Boolean(id) && !this.rows.has(id);
    pinned.hidden = !elsewhere;
    if (!elsewhere) return;
    const article = document.querySelector(`article.message[data-id="${CSS.escape(id)}"]`);
    const subject = this.openSummary?.Subject ?? article?.dataset.subject;
    pinnedSubject.textContent = subject || "(no subject)";
    pinned.href = url(`view/${encodeURIComponent(id)}`, { q: this.query, start: this.start }).href;
  }

  focusCursor() {
    if (!this.cursor) this.setCursor(this.ids()[0] ?? null, { focus: false });
    if (this.cursor) this.setCursor(this.cursor, { focus: true });
  }

  summary(id) {
    return this.rows.get(id)?.summary ?? null;
  }
}
