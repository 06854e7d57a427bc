// The smaller panels: the status strip, the promotion gate, system health, alerts and the
// event log. Each function takes one read model from the telemetry message and writes
// text only (textContent, never HTML), so nothing the server sends can inject markup.

import {
  MISSING,
  formatClock,
  formatCount,
  formatDuration,
  formatMs,
  formatNumber,
  formatSigned,
  humanise,
} from "./format.js";

const EVENT_LOG_LIMIT = 50;

function byId(id) {
  return document.getElementById(id);
}

function setText(id, text, state) {
  const element = byId(id);
  element.textContent = text;
  if (state !== undefined) element.dataset.state = state;
}

function cell(tag, text, className) {
  const element = document.createElement(tag);
  element.textContent = text;
  if (className) element.className = className;
  return element;
}

/** The header strip from OptimizerStatus. */
export function renderStatus(status) {
  let state = "stopped";
  if (status.halted) state = "halted";
  else if (status.running) state = "running";
  setText("status-state", state, state);
  setText("status-mode", status.mode, status.mode);
  setText("status-symbol", status.symbol);
  setText("status-variants", `${formatCount(status.variants_active)} / ${formatCount(status.variants)}`);
  setText("status-ticks", formatCount(status.ticks_processed));
  setText("status-trades", formatCount(status.trades_closed));
  setText("status-promotions", formatCount(status.promotions));
  setText("status-uptime", formatDuration(status.uptime_s));
}

/** The promotion-gate panel from GateSummary. */
export function renderGate(gate) {
  setText("gate-method", `${humanise(gate.test)}, ${humanise(gate.correction)} correction`);
  setText("gate-alpha", formatNumber(gate.alpha, 3));
  setText("gate-auto", gate.auto_promote ? "on" : "off", gate.auto_promote ? "on" : "off");
  setText("gate-evaluated", gate.evaluated_at_ns === null ? "not yet" : formatClock(gate.evaluated_at_ns));
  const candidates = gate.candidates.length === 0
    ? "none"
    : `${gate.candidates.length}: ${gate.candidates.map((id) => `#${id}`).join(", ")}`;
  setText("gate-candidates", candidates);
  const rows = Object.entries(gate.failed_by_reason)
    .sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]))
    .map(([reason, count]) => {
      const tr = document.createElement("tr");
      tr.dataset.reason = reason;
      tr.append(cell("td", humanise(reason)), cell("td", formatCount(count), "num"));
      return tr;
    });
  if (rows.length === 0) {
    const tr = document.createElement("tr");
    const td = cell("td", "no failures");
    td.colSpan = 2;
    tr.append(td);
    rows.push(tr);
  }
  byId("gate-failures").replaceChildren(...rows);
}

/** The health panel from Health. */
export function renderHealth(health) {
  setText("health-status", health.status, health.status);
  setText("health-tps", formatNumber(health.ticks_per_s, 1));
  setText("health-p50", formatMs(health.latency_p50_ms));
  setText("health-p99", formatMs(health.latency_p99_ms));
  const feed = health.feed;
  setText("health-feed", `${feed.state} (${feed.symbol})`, feed.state);
  setText("health-reconnects", formatCount(feed.reconnects));
  setText("health-feed-quality",
    `${formatCount(feed.gaps)} / ${formatCount(feed.duplicates)} / ${formatCount(feed.malformed)}`);
  setText("health-feed-age",
    feed.last_event_age_s === null ? "none yet" : `${formatDuration(feed.last_event_age_s)} ago`);
  setText("health-memory",
    `${formatNumber(health.memory_rss_mb, 1)} MB (${formatNumber(health.memory_pct, 1)} %)`,
    health.memory_pct >= 80 ? "high" : "ok");
  setText("health-errors", `${formatCount(health.errors)} / ${formatCount(health.variant_crashes)}`);
  const rows = health.budget.map((pool) => {
    const tr = document.createElement("tr");
    tr.dataset.pool = pool.pool;
    const tokens = document.createElement("td");
    const meter = document.createElement("meter");
    meter.min = 0;
    meter.max = pool.capacity > 0 ? pool.capacity : 1;
    meter.value = pool.tokens;
    meter.setAttribute("aria-label", `${pool.pool} tokens left`);
    tokens.append(meter, ` ${formatNumber(pool.tokens, 0)} / ${formatNumber(pool.capacity, 0)}`);
    tr.append(cell("th", pool.pool), tokens,
      cell("td", `${formatNumber(pool.target_utilisation * 100, 0)} %`, "num"),
      cell("td", formatCount(pool.rate_limited), pool.rate_limited > 0 ? "num warn" : "num"));
    tr.firstChild.scope = "row";
    return tr;
  });
  byId("health-budget").replaceChildren(...rows);
  renderAlerts(health.alerts);
}

function alertItem(alert, tag) {
  const item = document.createElement(tag);
  item.className = `alert alert-${alert.severity}`;
  item.dataset.kind = alert.kind;
  item.dataset.severity = alert.severity;
  item.append(cell("strong", `${alert.severity} · ${humanise(alert.kind)}`), ` ${alert.message} `,
    cell("time", formatClock(alert.ts_ns)));
  return item;
}

/** Active alerts in the banner, resolved ones in the side list. */
export function renderAlerts(alerts) {
  const active = alerts.filter((a) => a.active);
  // Critical first, then newest first.
  active.sort((a, b) => (a.severity === "critical" ? 0 : 1) - (b.severity === "critical" ? 0 : 1)
    || b.ts_ns - a.ts_ns);
  const banner = byId("alerts-active");
  banner.replaceChildren(...active.map((a) => alertItem(a, "div")));
  banner.hidden = active.length === 0;
  const resolved = alerts.filter((a) => !a.active).sort((a, b) => b.ts_ns - a.ts_ns);
  byId("alerts-inactive").replaceChildren(...resolved.map((a) => alertItem(a, "li")));
}

function describeEvent(event) {
  switch (event.type) {
    case "VariantStarted":
      return `variant #${event.variant_id} started`;
    case "VariantStopped":
      return `variant #${event.variant_id} stopped: ${event.reason}`;
    case "TradeExecuted": {
      const who = event.main ? "main strategy" : `variant #${event.trade.variant_id}`;
      return `${who} closed a ${event.trade.side}: ${formatSigned(event.trade.net_pnl)} `
        + `(${humanise(event.trade.exit_reason)})`;
    }
    case "MetricsUpdated":
      return null; // every cadence: would drown the log, and the panels already show it
    case "PromotionCandidate":
      return `variant #${event.variant_id} passed the promotion gate`;
    case "PromotionApplied":
      return `${event.record.action} of variant #${event.record.variant_id} applied `
        + `(${event.record.source})`;
    case "EmergencyStop":
      return `EMERGENCY STOP (${event.source}${event.flatten ? ", flatten" : ""})`;
    case "AlertRaised":
      return `alert: ${humanise(event.alert.kind)}: ${event.alert.message}`;
    default:
      return `${event.type ?? "unknown event"}`;
  }
}

function eventTime(event) {
  return event.ts_ns ?? event.alert?.ts_ns ?? null;
}

/** Prepend a ServiceEvent to the bounded event log. */
export function logEvent(event) {
  const text = describeEvent(event);
  if (text === null) return;
  const log = byId("events-log");
  const item = document.createElement("li");
  item.dataset.type = event.type ?? "";
  const ts = eventTime(event);
  item.append(cell("time", ts === null ? MISSING : formatClock(ts)), ` ${text}`);
  if (event.type === "EmergencyStop" || event.type === "AlertRaised") item.className = "important";
  log.prepend(item);
  while (log.children.length > EVENT_LOG_LIMIT) log.lastElementChild.remove();
}
