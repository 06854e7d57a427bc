// The leaderboard table: one <tr> per variant, keyed by variant id, so an update moves and
// rewrites existing rows instead of rebuilding the table (a trader reading a row does not
// see it flicker). Every row element carries data-variant-id.

import {
  MISSING,
  formatCount,
  formatFractionPct,
  formatNumber,
  formatSigned,
  formatSignedPct,
  humanise,
  signClass,
} from "./format.js";

const COLUMNS = [
  { key: "rank", numeric: true, text: (row) => formatCount(row.rank) },
  { key: "variant", numeric: false, text: variantLabel },
  { key: "trades", numeric: true, text: (row) => formatCount(row.trades) },
  { key: "win_rate", numeric: true, text: (row) => formatFractionPct(row.win_rate) },
  { key: "net_pnl", numeric: true, text: (row) => formatSigned(row.net_pnl),
    signed: (row) => row.net_pnl },
  { key: "roi_pct", numeric: true, text: (row) => formatSignedPct(row.roi_pct),
    signed: (row) => row.roi_pct },
  { key: "sharpe", numeric: true, text: (row) => formatNumber(row.sharpe, 2),
    signed: (row) => row.sharpe },
  { key: "max_drawdown", numeric: true, text: (row) => formatFractionPct(row.max_drawdown) },
  { key: "gate", numeric: false, text: gateLabel },
  { key: "reasons", numeric: false, text: reasonsLabel },
];

function variantLabel(row) {
  const label = `#${row.variant_id}`;
  if (row.is_main) return `${label} main`;
  if (!row.active && row.stop_reason) return `${label} stopped`;
  return label;
}

function gateLabel(row) {
  if (row.is_main) return "baseline";
  if (row.gate === null || row.gate === undefined) return MISSING;
  return row.gate.promoted ? "pass" : "fail";
}

function reasonsLabel(row) {
  const parts = [];
  if (row.gate && row.gate.reasons.length > 0) parts.push(row.gate.reasons.map(humanise).join(", "));
  if (!row.active && row.stop_reason) parts.push(`stopped: ${row.stop_reason}`);
  return parts.length > 0 ? parts.join("; ") : MISSING;
}

const reducedMotion = window.matchMedia?.("(prefers-reduced-motion: reduce)");

// A changed value flashes once so the eye finds what moved (the Web Animations API needs
// no forced reflow, unlike restarting a CSS animation).
function flash(cell) {
  if (reducedMotion?.matches || typeof cell.animate !== "function") return;
  // One keyframe: it fades back to the cell's own background (the pinned main row's is
  // opaque, so rows scrolling under it never show through).
  cell.animate([{ backgroundColor: "#2b3b52", offset: 0 }], { duration: 800, easing: "ease-out" });
}

function placeholderRow(text) {
  const tr = document.createElement("tr");
  tr.className = "placeholder";
  const td = document.createElement("td");
  td.colSpan = COLUMNS.length;
  td.textContent = text;
  tr.append(td);
  return tr;
}

export class Leaderboard {
  /** @param {HTMLTableSectionElement} body the table's <tbody> */
  constructor(body) {
    this.body = body;
    this.rows = new Map(); // variant id -> <tr>
  }

  /** Show `results` (VariantResult list, best first) in this order. */
  render(results) {
    const seen = new Set();
    const placeholder = this.body.querySelector("tr.placeholder");
    if (placeholder) placeholder.remove();
    results.forEach((row, index) => {
      const id = String(row.variant_id);
      seen.add(id);
      let tr = this.rows.get(id);
      if (tr === undefined) {
        tr = this.createRow(id);
        this.rows.set(id, tr);
      }
      this.fill(tr, row);
      // Re-append only when out of place: moving a row resets its hover and selection.
      if (this.body.children[index] !== tr) this.body.insertBefore(tr, this.body.children[index] ?? null);
    });
    for (const [id, tr] of this.rows) {
      if (!seen.has(id)) {
        tr.remove();
        this.rows.delete(id);
      }
    }
    if (results.length === 0) this.body.append(placeholderRow("No variants yet"));
  }

  createRow(id) {
    const tr = document.createElement("tr");
    tr.dataset.variantId = id;
    for (const column of COLUMNS) {
      const cell = document.createElement(column.key === "variant" ? "th" : "td");
      if (column.key === "variant") cell.scope = "row";
      cell.dataset.variantId = id;
      cell.dataset.column = column.key;
      if (column.numeric) cell.classList.add("num");
      tr.append(cell);
    }
    return tr;
  }

  fill(tr, row) {
    tr.classList.toggle("main-row", Boolean(row.is_main));
    tr.classList.toggle("inactive-row", !row.active);
    tr.dataset.main = row.is_main ? "true" : "false";
    COLUMNS.forEach((column, i) => {
      const cell = tr.children[i];
      const text = column.text(row);
      if (cell.textContent !== text) {
        cell.textContent = text;
        flash(cell);
      }
      if (column.signed) {
        cell.classList.remove("positive", "negative", "zero");
        cell.classList.add(signClass(column.signed(row)));
      }
      if (column.key === "gate") {
        cell.classList.toggle("gate-pass", text === "pass");
        cell.classList.toggle("gate-fail", text === "fail");
      }
    });
    const variantCell = tr.children[1];
    if (row.is_main && !variantCell.querySelector(".badge")) {
      variantCell.textContent = `#${row.variant_id} `;
      const badge = document.createElement("span");
      badge.className = "badge";
      badge.dataset.variantId = String(row.variant_id);
      badge.textContent = "main";
      variantCell.append(badge);
    }
  }
}
