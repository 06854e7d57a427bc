// The telemetry WebSocket: connects to ws(s)://<this host>/ws/telemetry, reconnects by
// itself with capped exponential backoff, and counts messages the server dropped for this
// client (gaps in `seq`). It reports its state through callbacks and knows nothing of the
// page.

const BACKOFF_FIRST_MS = 500;
const BACKOFF_MAX_MS = 10_000;
// Without a message for this many cadences the link is shown as stale (the server sends
// an update every cadence, so silence means a stuck connection, not a quiet market).
const STALE_CADENCES = 3;
// After this much silence the socket is given up and a fresh one opened: a half-open TCP
// connection would otherwise never deliver a close event.
const DEAD_CADENCES = 10;

/** The telemetry URL on the host that served this page. */
export function telemetryUrl(location) {
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  return `${scheme}//${location.host}/ws/telemetry`;
}

export class TelemetryConnection {
  /**
   * @param {string} url the WebSocket URL
   * @param {{onMessage: Function, onState: Function}} handlers onMessage(message) for each
   *   decoded message; onState({state, attempt, retryInMs, dropped, connections})
   */
  constructor(url, handlers) {
    this.url = url;
    this.handlers = handlers;
    this.socket = null;
    this.attempt = 0;
    this.connections = 0;
    this.dropped = 0;
    this.lastSeq = null;
    this.cadenceMs = 1000;
    this.lastMessageAt = 0;
    this.retryTimer = null;
    this.staleTimer = null;
    this.state = "connecting";
  }

  start() {
    this.open();
    this.staleTimer = setInterval(() => this.checkStale(), 500);
  }

  open() {
    this.setState("connecting");
    let socket;
    try {
      socket = new WebSocket(this.url);
    } catch (error) {
      this.scheduleRetry();
      return;
    }
    this.socket = socket;
    socket.addEventListener("open", () => {
      this.connections += 1;
      this.lastSeq = null; // seq counts per connection
      this.lastMessageAt = Date.now();
      this.setState("live");
    });
    socket.addEventListener("message", (event) => this.receive(event.data));
    socket.addEventListener("close", () => {
      if (this.socket === socket) {
        this.socket = null;
        this.scheduleRetry();
      }
    });
    // An error is always followed by close, which schedules the retry.
    socket.addEventListener("error", () => {});
  }

  receive(data) {
    let message;
    try {
      message = JSON.parse(data);
    } catch (error) {
      console.warn("telemetry: undecodable message ignored", error);
      return;
    }
    this.lastMessageAt = Date.now();
    if (typeof message.seq === "number") {
      if (this.lastSeq !== null && message.seq > this.lastSeq + 1) {
        this.dropped += message.seq - this.lastSeq - 1;
      }
      this.lastSeq = message.seq;
    }
    if (message.type === "init") {
      this.attempt = 0; // a real conversation: the next outage starts from a short wait
      if (typeof message.cadence_s === "number" && message.cadence_s > 0) {
        this.cadenceMs = message.cadence_s * 1000;
      }
    }
    if (this.state !== "live") this.setState("live");
    else this.report();
    this.handlers.onMessage(message);
  }

  scheduleRetry() {
    if (this.retryTimer !== null) return;
    const base = Math.min(BACKOFF_FIRST_MS * 2 ** this.attempt, BACKOFF_MAX_MS);
    // +-20 % jitter so many open dashboards do not reconnect in lockstep.
    const delay = Math.round(base * (0.8 + 0.4 * Math.random()));
    this.attempt += 1;
    this.setState("reconnecting", delay);
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      this.open();
    }, delay);
  }

  checkStale() {
    const silentMs = Date.now() - this.lastMessageAt;
    if ((this.state === "live" || this.state === "stale") && this.socket !== null
        && silentMs > DEAD_CADENCES * this.cadenceMs) {
      const socket = this.socket;
      this.socket = null;
      socket.close();
      this.scheduleRetry();
    } else if (this.state === "live" && silentMs > STALE_CADENCES * this.cadenceMs) {
      this.setState("stale");
    }
  }

  setState(state, retryInMs = null) {
    this.state = state;
    this.retryInMs = retryInMs;
    this.report();
  }

  report() {
    this.handlers.onState({
      state: this.state,
      attempt: this.attempt,
      retryInMs: this.retryInMs,
      dropped: this.dropped,
      connections: this.connections,
    });
  }
}
