// The message pane: a fragment of server-rendered HTML (view/ID?fragment=1), made interactive.
// The fragment comes from the server's own autoescaped templates; the message's HTML itself
// only ever appears inside the sandboxed preview frame.

import { call, getJSON, getText } from "./api.js";
import { fullDate, size } from "./format.js";
import { highlightHTML, linkify } from "./highlight.js";

const RAW_LIMIT = 5_000_000; // bytes; bigger raw sources load only when asked

export class MessagePane {
  constructor({ onAction }) {
    this.pane = document.getElementById("message-pane");
    this.onAction = onAction;
    this.controller = null;
    this.loadingID = null;
    this.chosenTab = null; // the tab the user last picked; the next message opens on it too
    this.pane.addEventListener("click", (event) => this.click(event));
    this.pane.addEventListener("keydown", (event) => this.tabKeys(event));
  }

  /** The open message's ID, or null. */
  get id() {
    return this.article()?.dataset.id ?? null;
  }

  article() {
    return this.pane.querySelector("article.message");
  }

  /** The message shown, or being loaded. */
  get current() {
    return this.loadingID ?? this.id;
  }

  /**
   * Load and show one message: true when shown, false when it no longer exists, null when
   * another load (or closing the pane) overtook this one.
   */
  async load(id) {
    this.controller?.abort();
    const controller = new AbortController();
    this.controller = controller;
    this.loadingID = id;
    let response;
    try {
      response = await getText(`view/${encodeURIComponent(id)}`, { fragment: 1 }, controller.signal);
    } catch (error) {
      if (error.name === "AbortError") return null;
      throw error;
    } finally {
      if (this.controller === controller) this.loadingID = null;
    }
    if (this.controller !== controller) return null;
    this.pane.innerHTML = response.text; // our own template's output, see the note at the top
    this.pane.scrollTop = 0;
    this.enhance();
    if (this.chosenTab) this.select(this.chosenTab, { focus: false, remember: false });
    return response.status !== 404;
  }

  /** Wire up a freshly inserted message (also the one the server rendered into the page). */
  enhance() {
    const article = this.article();
    if (!article) return;
    for (const time of this.pane.querySelectorAll("time[data-format='full']")) {
      const date = new Date(time.dateTime);
      if (!Number.isNaN(date.valueOf())) time.textContent = fullDate(date);
    }
    for (const el of this.pane.querySelectorAll("[data-linkify]")) linkify(el);
    const width = localStorage.getItem("mailsink-preview-width");
    if (width) this.setWidth(width);
  }

  showNothing() {
    this.controller?.abort();
    this.controller = null;
    this.loadingID = null;
    const template = document.getElementById("nothing-open-template");
    this.pane.replaceChildren(template.content.cloneNode(true));
  }

  showGone() {
    const article = this.article();
    if (!article) return;
    const note = document.createElement("div");
    note.className = "notice notice-error";
    note.setAttribute("role", "status");
    note.textContent = "This message was deleted.";
    article.querySelector(".message-head").prepend(note);
    for (const button of article.querySelectorAll("[data-action='toggle-read'], [data-action='delete']")) {
      button.disabled = true;
    }
    article.dataset.gone = "true";
  }

  setRead(read) {
    const article = this.article();
    if (!article) return;
    article.dataset.read = read ? "true" : "false";
    const button = article.querySelector("[data-action='toggle-read']");
    button.querySelector("[data-label]").textContent = read ? "Mark unread" : "Mark read";
    button.title = read ? "Mark unread (u)" : "Mark read (u)";
  }

  get read() {
    return this.article()?.dataset.read === "true";
  }

  // -- tabs -----------------------------------------------------------------------------

  tabs() {
    return [...this.pane.querySelectorAll("[role='tab']")];
  }

  currentTab() {
    return this.pane.querySelector("[role='tab'][aria-selected='true']")?.dataset.tab ?? null;
  }

  /** Show one tab (by name like "raw", or by position from 1). */
  select(which, { focus = true, remember = true } = {}) {
    const tabs = this.tabs();
    const tab = typeof which === "number" ? tabs[which - 1] : tabs.find((t) => t.dataset.tab === which);
    if (!tab) return false;
    if (remember) this.chosenTab = tab.dataset.tab;
    for (const other of tabs) {
      const selected = other === tab;
      other.setAttribute("aria-selected", selected ? "true" : "false");
      other.tabIndex = selected ? 0 : -1;
      document.getElementById(other.getAttribute("aria-controls")).hidden = !selected;
    }
    if (focus) tab.focus();
    const name = tab.dataset.tab;
    if (name === "source") {
      const code = this.pane.querySelector("[data-highlight='html']");
      if (code && !code.dataset.highlighted) highlightHTML(code);
    }
    if (name === "raw") this.loadRaw(false);
    if (name === "compat") this.loadCompat();
    if (name === "spam") this.loadSpam();
    return true;
  }

  // -- checks ---------------------------------------------------------------------------

  async loadCompat() {
    const panel = this.pane.querySelector("#panel-compat");
    if (!panel || panel.dataset.loaded) return;
    panel.dataset.loaded = "true";
    const total = panel.querySelector(".compat-total");
    let result;
    try {
      result = await getJSON(panel.dataset.src);
    } catch (error) {
      total.textContent = `Could not check the HTML: ${error.message}`;
      delete panel.dataset.loaded;
      return;
    }
    const t = result.Total;
    total.textContent = `${t.Supported.toFixed(1)}% supported, ${t.Partial.toFixed(1)}% partly, ` +
      `${t.Unsupported.toFixed(1)}% not supported (${t.Nodes} elements, ${t.Tests} tests)`;
    const select = panel.querySelector(".compat-platform");
    for (const platform of Object.keys(result.Platforms).sort()) {
      select.append(new Option(platform, platform));
    }
    select.closest("label").hidden = false;
    select.addEventListener("change", () => this.showCompat(panel, result.Warnings, select.value));
    this.showCompat(panel, result.Warnings, "");
  }

  showCompat(panel, warnings, platform) {
    const list = panel.querySelector(".compat-warnings");
    const items = [];
    for (const warning of warnings) {
      const results = warning.Results.filter((r) => !platform || r.Platform === platform);
      if (platform && !results.length) continue;
      const count = (kind) => results.filter((r) => r.Support === kind).length;
      const item = document.createElement("li");
      item.className = "compat-warning";
      item.dataset.slug = warning.Slug;
      const title = document.createElement(warning.URL ? "a" : "strong");
      title.className = "compat-title";
      title.textContent = warning.Title;
      if (warning.URL) {
        title.href = warning.URL;
        title.target = "_blank";
        title.rel = "noopener";
      }
      const detail = document.createElement("span");
      detail.className = "compat-detail muted";
      detail.textContent = results.length
        ? ` found ${warning.Score.Found}× · ${count("yes")} clients support it, ${count("partial")} partly, ${count("no")} not`
        : ` found ${warning.Score.Found}× · ${warning.Score.Unsupported}% not supported`;
      item.append(title, detail);
      const unsupported = results.filter((r) => r.Support !== "yes").map((r) => `${r.Name}: ${r.Support}`);
      if (unsupported.length) {
        const clients = document.createElement("details");
        const summary = document.createElement("summary");
        summary.textContent = "Clients without full support";
        const text = document.createElement("p");
        text.textContent = unsupported.join(" · ");
        clients.append(summary, text);
        item.append(clients);
      }
      items.push(item);
    }
    if (!items.length) {
      const none = document.createElement("li");
      none.className = "muted";
      none.textContent = "Nothing to warn about.";
      items.push(none);
    }
    list.replaceChildren(...items);
  }

  async loadSpam() {
    const panel = this.pane.querySelector("#panel-spam");
    if (!panel || panel.dataset.loaded) return;
    panel.dataset.loaded = "true";
    const score = panel.querySelector(".spam-score");
    let result;
    try {
      result = await getJSON(panel.dataset.src);
    } catch (error) {
      score.textContent = `Could not check for spam: ${error.message}`;
      delete panel.dataset.loaded;
      return;
    }
    if (result.Error) {
      score.textContent = `SpamAssassin could not score it: ${result.Error}`;
      delete panel.dataset.loaded;
      return;
    }
    score.textContent = `Score ${result.Score}: ${result.IsSpam ? "spam" : "not spam"}`;
    score.classList.toggle("spam-is-spam", result.IsSpam);
    const rows = (result.Rules || []).map((rule) => {
      const row = document.createElement("tr");
      for (const value of [String(rule.Score), rule.Name, rule.Description]) {
        const cell = document.createElement("td");
        cell.textContent = value;
        row.append(cell);
      }
      return row;
    });
    const table = panel.querySelector(".spam-rules");
    table.tBodies[0].replaceChildren(...rows);
    table.hidden = false;
  }

  tabKeys(event) {
    const tab = event.target.closest("[role='tab']");
    if (!tab) return;
    const tabs = this.tabs();
    const i = tabs.indexOf(tab);
    const moves = { ArrowRight: i + 1, ArrowLeft: i - 1, Home: 0, End: tabs.length - 1 };
    if (!(event.key in moves)) return;
    event.preventDefault();
    event.stopPropagation();
    const next = tabs[(moves[event.key] + tabs.length) % tabs.length];
    this.select(next.dataset.tab);
  }

  async loadRaw(force) {
    const panel = this.pane.querySelector("#panel-raw");
    if (!panel || panel.dataset.loaded) return;
    const code = panel.querySelector("code");
    const bytes = Number(panel.dataset.size);
    if (bytes > RAW_LIMIT && !force) {
      const button = document.createElement("button");
      button.type = "button";
      button.className = "btn";
      button.dataset.action = "load-raw";
      button.textContent = `Show all ${size(bytes)} of source`;
      code.replaceChildren(`This message is ${size(bytes)}. `, button);
      return;
    }
    panel.dataset.loaded = "true";
    code.textContent = "Loading…";
    try {
      const { text } = await getText(panel.dataset.src);
      code.textContent = text;
    } catch (error) {
      code.textContent = `Could not load the source: ${error.message}`;
      delete panel.dataset.loaded;
    }
  }

  // -- preview --------------------------------------------------------------------------

  setWidth(width) {
    const stage = this.pane.querySelector(".stage");
    if (!stage) return;
    stage.dataset.width = width;
    for (const button of this.pane.querySelectorAll("[data-width]")) {
      if (button.tagName === "BUTTON") button.setAttribute("aria-pressed", String(button.dataset.width === width));
    }
  }

  loadRemote(button) {
    const frame = this.pane.querySelector("iframe.preview");
    if (!frame || button.getAttribute("aria-pressed") === "true") return;
    frame.src = `${frame.dataset.src}&remote=1`;
    button.setAttribute("aria-pressed", "true");
    button.disabled = true;
    button.textContent = "Remote content loaded";
    const note = button.closest(".remote-note");
    note.dataset.remote = "loaded";
    note.querySelector(".remote-text").textContent = "Remote images and styles are shown.";
  }

  // -- actions --------------------------------------------------------------------------

  click(event) {
    const target = event.target.closest("[data-action], [data-width], [role='tab']");
    if (!target) return;
    if (target.getAttribute("role") === "tab") {
      this.select(target.dataset.tab);
      return;
    }
    if (target.dataset.width) {
      if (target.tagName !== "BUTTON") return;
      this.setWidth(target.dataset.width);
      localStorage.setItem("mailsink-preview-width", target.dataset.width);
      return;
    }
    const action = target.dataset.action;
    if (!action) return;
    if (action === "load-remote") return this.loadRemote(target);
    if (action === "load-raw") return this.loadRaw(true);
    if (event.button !== 0 || event.metaKey || event.ctrlKey) return;
    event.preventDefault();
    this.onAction(action);
  }

  async toggleRead() {
    const id = this.id;
    if (!id) return null;
    const read = !this.read;
    await call("PUT", "api/v1/messages", { IDs: [id], Read: read });
    this.setRead(read);
    return read;
  }
}
