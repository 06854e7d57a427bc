// Entry point of the liveopt dashboard: connects the telemetry WebSocket to the panels.
// Messages are the typed telemetry messages of liveopt.service.telemetry_messages
// ("init", "update", "event"); see docs/dashboard.md.

import { EquityChart } from "./chart.js";
import { TelemetryConnection, telemetryUrl } from "./connection.js";
import { formatCount } from "./format.js";
import { Leaderboard } from "./leaderboard.js";
import { logEvent, renderGate, renderHealth, renderStatus } from "./panels.js";
import { EmergencyStop } from "./stop.js";

const CONNECTION_TEXT = {
  connecting: () => "connecting…",
  live: () => "live",
  stale: () => "stale: no data",
  reconnecting: (s) => `reconnecting in ${Math.max(1, Math.round(s.retryInMs / 1000))} s`
    + (s.attempt > 1 ? ` (attempt ${s.attempt})` : ""),
};

function showConnection(s) {
  const box = document.getElementById("connection");
  box.dataset.state = s.state;
  box.dataset.connections = String(s.connections);
  box.dataset.dropped = String(s.dropped);
  document.getElementById("connection-text").textContent = (CONNECTION_TEXT[s.state]
    ?? (() => s.state))(s);
  const dropped = document.getElementById("connection-dropped");
  dropped.hidden = s.dropped === 0;
  dropped.textContent = `dropped ${formatCount(s.dropped)}`;
}

function main() {
  const leaderboard = new Leaderboard(document.getElementById("leaderboard-body"));
  const chart = new EquityChart(document.getElementById("equity-chart"),
    document.getElementById("equity-legend"));
  new EmergencyStop();
  let mainVariantId = 0;

  function showSnapshot(message) {
    renderStatus(message.status);
    leaderboard.render(message.leaderboard);
    const mainRow = message.leaderboard.find((row) => row.is_main);
    if (mainRow !== undefined) mainVariantId = mainRow.variant_id;
    chart.render(message.equity, mainVariantId);
    renderGate(message.gate);
    renderHealth(message.health);
    document.body.dataset.updates = String(Number(document.body.dataset.updates ?? 0) + 1);
  }

  function onMessage(message) {
    // One bad message must not stop the next ones from being shown.
    try {
      switch (message.type) {
        case "init":
          mainVariantId = message.main_variant_id;
          showSnapshot(message);
          break;
        case "update":
          showSnapshot(message);
          break;
        case "event":
          logEvent(message.event);
          break;
        default:
          console.warn("telemetry: unknown message type", message.type);
      }
    } catch (error) {
      console.error("telemetry: could not show message", message.type, error);
    }
  }

  new TelemetryConnection(telemetryUrl(window.location), { onMessage, onState: showConnection })
    .start();
}

main();
