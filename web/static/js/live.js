// The live connection: Server-Sent Events from api/v1/events, reconnecting by itself.

import { url } from "./api.js";

const KINDS = ["hello", "new", "update", "read", "deleted", "stats", "reset"];

export class Live {
  /**
   * @param {Record<string, (data: any) => void>} handlers one per event kind, plus
   *   `reconnected()`, called when a stream opens after one was lost (events may be missed).
   * @param {HTMLElement} indicator the status pill
   */
  constructor(handlers, indicator) {
    this.handlers = handlers;
    this.indicator = indicator;
    this.greeted = false;
    this.delay = 1000;
    this.timer = null;
    this.connect();
    window.addEventListener("online", () => this.reconnectSoon(0));
  }

  connect() {
    clearTimeout(this.timer);
    if (this.source) this.source.close();
    const source = new EventSource(url("api/v1/events"));
    this.source = source;
    source.addEventListener("error", () => {
      this.show("down", "Reconnecting");
      // The browser retries on its own while the stream is CONNECTING; once it gives up
      // (CLOSED: a proxy said 502, say), we keep trying, backing off to 10 s.
      if (source.readyState === EventSource.CLOSED) this.reconnectSoon(this.delay);
    });
    for (const kind of KINDS) {
      source.addEventListener(kind, (event) => {
        let data;
        try {
          data = JSON.parse(event.data);
        } catch {
          return;
        }
        if (kind === "hello") {
          this.delay = 1000;
          this.show("live", "Live");
          if (this.greeted) this.handlers.reconnected?.();
          this.greeted = true;
        }
        this.handlers[kind]?.(data);
      });
    }
  }

  reconnectSoon(delay) {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.connect(), delay);
    this.delay = Math.min(this.delay * 2, 10000);
  }

  show(state, text) {
    this.indicator.dataset.state = state;
    const label = this.indicator.querySelector(".live-text");
    if (label) label.textContent = text;
    this.indicator.title =
      state === "live" ? "Live: new mail appears by itself" : "Connection lost: reconnecting…";
  }
}
