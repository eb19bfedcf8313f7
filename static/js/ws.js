// The page's one connection to the multiplexed stream endpoint /ws/ (README: WebSocket
// protocol). Subscriptions are remembered and sent again after a reconnect; handlers are
// called with each message of their stream. The session cookie authenticates the private
// channels (orders, balances): the ws server is on the same host, so the browser sends it.

const PING_MS = 20000;
const MAX_BACKOFF_MS = 15000;
const RESYNC_SPREAD_MS = 2000;

function endpoint() {
  const configured = document.querySelector('meta[name="ws-url"]')?.content;
  if (configured) return configured.replace(/\/+$/, "") + "/ws/";
  const port = document.querySelector('meta[name="ws-port"]')?.content || location.port;
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  return `${scheme}://${location.hostname}${port ? ":" + port : ""}/ws/`;
}

export function streamKey({ channel, symbol, interval }) {
  if (channel === "orders" || channel === "balances") return channel;
  return [channel, symbol, interval].filter(Boolean).join(":");
}

function setStatus(state) {
  const element = document.getElementById("ws-status");
  if (!element) return;
  element.hidden = false;
  element.dataset.state = state;
  const text = { live: "Live", connecting: "Connecting", reconnecting: "Reconnecting" }[state];
  element.querySelector(".label").textContent = text || "Offline";
  element.title = `Live data: ${text || "offline"}`;
}

export class StreamClient {
  constructor(url = endpoint()) {
    this.url = url;
    this.streams = new Map(); // key → { params, handlers: Set }
    this.resyncHandlers = new Map(); // key → Set of handlers
    this.errorHandlers = new Set();
    this.attempt = 0;
    this.opened = false;
    this.closing = false;
    window.addEventListener("pagehide", () => this.close());
    this.connect();
  }

  connect() {
    setStatus(this.opened ? "reconnecting" : "connecting");
    const socket = (this.socket = new WebSocket(this.url));
    socket.addEventListener("open", () => {
      this.opened = true;
      this.attempt = 0;
      setStatus("live");
      for (const { params } of this.streams.values()) this.send({ type: "subscribe", ...params });
      this.pinger = setInterval(() => this.send({ type: "ping" }), PING_MS);
      // Events sent while we were away are lost: each "subscribed" answer has the page read
      // that stream's state again (onResync).
    });
    socket.addEventListener("message", (event) => this.dispatch(event.data));
    socket.addEventListener("close", () => {
      clearInterval(this.pinger);
      if (this.closing) return;
      setStatus("reconnecting");
      const delay = Math.min(MAX_BACKOFF_MS, 500 * 2 ** this.attempt++);
      setTimeout(() => this.connect(), delay + Math.random() * 250);
    });
  }

  close() {
    this.closing = true;
    this.socket?.close();
  }

  send(message) {
    if (this.socket && this.socket.readyState === WebSocket.OPEN) {
      this.socket.send(JSON.stringify(message));
    }
  }

  subscribe(params, handler) {
    const key = streamKey(params);
    let stream = this.streams.get(key);
    if (!stream) {
      stream = { params, handlers: new Set() };
      this.streams.set(key, stream);
      this.send({ type: "subscribe", ...params });
    }
    stream.handlers.add(handler);
    return () => this.unsubscribe(params, handler);
  }

  unsubscribe(params, handler) {
    const key = streamKey(params);
    const stream = this.streams.get(key);
    if (!stream) return;
    stream.handlers.delete(handler);
    if (!stream.handlers.size) {
      this.streams.delete(key);
      this.send({ type: "unsubscribe", ...params });
    }
  }

  // Ask for a fresh start of one stream (an order book that saw a sequence gap).
  resubscribe(params) {
    this.send({ type: "unsubscribe", ...params });
    this.send({ type: "subscribe", ...params });
  }

  // Called whenever events of this stream may have been missed, so the page reads the
  // stream's state again over REST: each time the server confirms the subscription (on
  // connecting and after every reconnect; an event sent before that moment never reaches
  // the page, such as the one that followed an action taken right after the page loaded),
  // when the server says it lost some of the stream's messages (resync), and when it
  // dropped this connection's backlog (SLOW_CONSUMER).
  onResync(params, handler) {
    const key = streamKey(params);
    if (!this.resyncHandlers.has(key)) this.resyncHandlers.set(key, new Set());
    this.resyncHandlers.get(key).add(handler);
  }

  offResync(params, handler) {
    this.resyncHandlers.get(streamKey(params))?.delete(handler);
  }

  resynced(keys, { spread = false } = {}) {
    // Each handler once, however many of its streams are named.
    const handlers = new Set();
    for (const key of [...keys]) {
      for (const handler of this.resyncHandlers.get(key) ?? []) handlers.add(handler);
    }
    for (const handler of handlers) {
      const run = () => {
        try {
          handler();
        } catch (error) {
          console.error(error); // one page's failure must not stop the others' reads
        }
      };
      // A server-side loss reaches every page at once: spread their reads over two seconds.
      if (spread) setTimeout(run, Math.random() * RESYNC_SPREAD_MS);
      else run();
    }
  }

  onError(handler) {
    this.errorHandlers.add(handler);
  }

  dispatch(text) {
    let message;
    try {
      message = JSON.parse(text);
    } catch {
      return;
    }
    if (message.type === "error") {
      // Order books recover from the snapshots that follow; other streams read again.
      if (message.code === "SLOW_CONSUMER") this.resynced(this.resyncHandlers.keys());
      for (const handler of this.errorHandlers) handler(message);
      return;
    }
    if (message.type === "subscribed" || message.type === "resync") {
      // resync: the server lost messages of this stream on their way (trades, candles).
      this.resynced([streamKey(message)], { spread: message.type === "resync" });
      return;
    }
    if (!message.channel || message.type === "unsubscribed") return;
    const stream = this.streams.get(streamKey(message));
    if (!stream) return;
    for (const handler of stream.handlers) handler(message);
  }
}

let shared;
export function streams() {
  shared ??= new StreamClient();
  return shared;
}
