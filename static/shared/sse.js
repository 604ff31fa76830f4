// Live updates for the Spinpresso web apps, over server-sent events.
//
//   import { LiveStream } from "/shared/sse.js";
//   const live = new LiveStream("/api/shops/main/events/staff", {
//     onStatus: (status) => render(status),      // "connecting" | "live" | "reconnecting"
//     onReset: () => reloadEverything(),          // what we missed was trimmed: reload state
//   });
//   live.on("OrderManager.WaitingCompletion", (event) => addToQueue(event.data.order));
//   live.start();
//
// The server ends each response after ~25 s and the browser's EventSource
// reconnects with `Last-Event-ID`, so nothing is lost or repeated. When the
// connection breaks for longer (a restart, bad Wi-Fi), this module keeps
// retrying with a growing delay and resumes from the last event it saw.

const MAX_DELAY_MS = 10_000;

export class LiveStream {
  /**
   * @param {string} url  one of the `/api/shops/:shop/events/{staff,me,board}` streams
   * @param {{onStatus?: (s: string) => void, onReset?: () => void, lastEventId?: string}} options
   */
  constructor(url, options = {}) {
    this.url = url;
    this.onStatus = options.onStatus ?? (() => {});
    this.onReset = options.onReset ?? (() => {});
    this.lastEventId = options.lastEventId ?? null;
    this.handlers = new Map();
    this.source = null;
    this.retryTimer = null;
    this.failures = 0;
    this.status = "idle";
  }

  /** Calls `handler(event)` for each event of `type`; `"*"` receives every event. */
  on(type, handler) {
    if (!this.handlers.has(type)) this.handlers.set(type, []);
    this.handlers.get(type).push(handler);
    if (this.source && type !== "*") this.listen(this.source, type);
    return this;
  }

  start() {
    this.stop();
    this.setStatus(this.failures === 0 ? "connecting" : "reconnecting");
    const url = new URL(this.url, location.href);
    // A new EventSource cannot send `Last-Event-ID`: the query carries it.
    if (this.lastEventId !== null) url.searchParams.set("lastEventId", this.lastEventId);
    const source = new EventSource(url, { withCredentials: true });
    this.source = source;
    source.onopen = () => {
      this.failures = 0;
      this.setStatus("live");
    };
    source.onerror = () => {
      // CONNECTING: the browser retries by itself (normal at the end of each response).
      if (source.readyState === EventSource.CONNECTING) {
        this.setStatus("reconnecting");
        return;
      }
      // CLOSED: the browser gave up (e.g. an error status); retry ourselves, slower each time.
      this.failures += 1;
      this.setStatus("reconnecting");
      const delay = Math.min(MAX_DELAY_MS, 500 * 2 ** Math.min(this.failures, 5));
      this.retryTimer = setTimeout(() => this.start(), delay);
    };
    for (const type of this.handlers.keys()) {
      if (type !== "*") this.listen(source, type);
    }
    source.addEventListener("reset", (message) => {
      this.remember(message);
      this.onReset();
    });
    source.addEventListener("message", (message) => this.dispatch("message", message));
  }

  stop() {
    clearTimeout(this.retryTimer);
    if (this.source) this.source.close();
    this.source = null;
  }

  listen(source, type) {
    source.addEventListener(type, (message) => this.dispatch(type, message));
  }

  remember(message) {
    if (message.lastEventId) this.lastEventId = message.lastEventId;
  }

  dispatch(type, message) {
    this.remember(message);
    let event;
    try {
      event = JSON.parse(message.data);
    } catch {
      return; // not ours
    }
    for (const handler of [...(this.handlers.get(type) ?? []), ...(this.handlers.get("*") ?? [])]) {
      handler(event, type);
    }
  }

  setStatus(status) {
    if (status !== this.status) {
      this.status = status;
      this.onStatus(status);
    }
  }
}
