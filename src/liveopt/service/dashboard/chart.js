// The equity chart: one SVG path per curve on shared axes (time across, equity up), the
// main strategy drawn as the dashed baseline. Redrawn whole on each update: a handful of
// curves with bounded histories is cheap to rebuild and keeps the code obvious.

import { formatClock, formatNumber } from "./format.js";

const SVG_NS = "http://www.w3.org/2000/svg";
// Used until the chart has a laid-out size (the drawing is in CSS pixels, so text is never
// stretched when the screen is narrow).
const DEFAULT_WIDTH = 800;
const DEFAULT_HEIGHT = 300;
const MARGIN = { left: 64, right: 12, top: 12, bottom: 24 };
const PALETTE = ["#2f7de1", "#e0712c", "#2ca58d", "#b04fc9", "#d6b31f", "#d6455d", "#5a6fd6",
  "#6aa84f"];

function svg(name, attributes = {}) {
  const element = document.createElementNS(SVG_NS, name);
  for (const [key, value] of Object.entries(attributes)) element.setAttribute(key, String(value));
  return element;
}

// More points than horizontal pixels add nothing visible; the first and the newest point
// are always kept.
function thin(ts, equity, maxPoints) {
  const n = Math.min(ts.length, equity.length);
  if (n <= maxPoints) return Array.from({ length: n }, (_, i) => [ts[i], equity[i]]);
  const points = [];
  const stride = (n - 1) / (maxPoints - 1);
  for (let k = 0; k < maxPoints; k += 1) {
    const i = Math.round(k * stride);
    points.push([ts[i], equity[i]]);
  }
  return points;
}

function bounds(series) {
  let tMin = Infinity;
  let tMax = -Infinity;
  let yMin = Infinity;
  let yMax = -Infinity;
  for (const { points } of series) {
    for (const [t, y] of points) {
      if (!Number.isFinite(t) || !Number.isFinite(y)) continue;
      tMin = Math.min(tMin, t);
      tMax = Math.max(tMax, t);
      yMin = Math.min(yMin, y);
      yMax = Math.max(yMax, y);
    }
  }
  if (!Number.isFinite(tMin)) return null;
  if (tMax === tMin) tMax = tMin + 1;
  // A flat curve still gets a visible band around it.
  const pad = yMax === yMin ? Math.max(Math.abs(yMax) * 0.01, 1) : (yMax - yMin) * 0.05;
  return { tMin, tMax, yMin: yMin - pad, yMax: yMax + pad };
}

export class EquityChart {
  /**
   * @param {SVGSVGElement} root the chart's <svg>
   * @param {HTMLUListElement} legend the legend list
   */
  constructor(root, legend) {
    this.root = root;
    this.legend = legend;
    this.colours = new Map(); // variant id -> colour, stable while the id stays shown
    this.last = null; // the last curves drawn, redrawn when the chart is resized
    this.drawnWidth = 0;
    if (typeof ResizeObserver === "function") {
      new ResizeObserver(() => {
        const width = Math.round(this.root.clientWidth);
        if (this.last !== null && width > 0 && width !== this.drawnWidth) {
          this.render(...this.last);
        }
      }).observe(root);
    }
  }

  colourFor(id, isMain) {
    if (isMain) return "#f2f4f7";
    let colour = this.colours.get(id);
    if (colour === undefined) {
      const used = new Set(this.colours.values());
      colour = PALETTE.find((c) => !used.has(c)) ?? PALETTE[this.colours.size % PALETTE.length];
      this.colours.set(id, colour);
    }
    return colour;
  }

  /** Draw `curves` (EquityCurve list); `mainId` is the main strategy's variant id. */
  render(curves, mainId) {
    this.last = [curves, mainId];
    const width = Math.round(this.root.clientWidth) || DEFAULT_WIDTH;
    const height = Math.round(this.root.clientHeight) || DEFAULT_HEIGHT;
    this.drawnWidth = width;
    this.root.setAttribute("viewBox", `0 0 ${width} ${height}`);
    const maxPoints = Math.max(2, width - MARGIN.left - MARGIN.right);
    const series = curves.map((curve) => ({
      id: curve.variant_id,
      isMain: curve.variant_id === mainId,
      points: thin(curve.ts_ns, curve.equity, maxPoints),
    }));
    const shown = new Set(series.map((s) => s.id));
    for (const id of this.colours.keys()) if (!shown.has(id)) this.colours.delete(id);
    // Leaders first, the baseline last so it is drawn on top.
    series.sort((a, b) => Number(a.isMain) - Number(b.isMain));
    this.root.replaceChildren();
    this.legend.replaceChildren();
    const box = bounds(series);
    this.root.dataset.curves = String(series.length);
    if (box === null) {
      const empty = svg("text", { x: width / 2, y: height / 2, "text-anchor": "middle",
        class: "chart-empty" });
      empty.textContent = "No equity samples yet";
      this.root.append(empty);
      return;
    }
    const x = (t) => MARGIN.left + ((t - box.tMin) / (box.tMax - box.tMin))
      * (width - MARGIN.left - MARGIN.right);
    const y = (v) => MARGIN.top + (1 - (v - box.yMin) / (box.yMax - box.yMin))
      * (height - MARGIN.top - MARGIN.bottom);
    this.drawAxes(box, x, y, width, height);
    for (const s of series) {
      const colour = this.colourFor(s.id, s.isMain);
      const d = s.points
        .filter(([t, v]) => Number.isFinite(t) && Number.isFinite(v))
        .map(([t, v], i) => `${i === 0 ? "M" : "L"}${x(t).toFixed(1)} ${y(v).toFixed(1)}`)
        .join(" ");
      const path = svg("path", { d, stroke: colour, fill: "none",
        class: s.isMain ? "curve curve-main" : "curve" });
      path.dataset.variantId = String(s.id);
      path.dataset.points = String(s.points.length);
      const title = svg("title");
      title.textContent = `${s.isMain ? "main strategy" : "variant"} #${s.id}`;
      path.append(title);
      this.root.append(path);
      this.legend.append(this.legendItem(s, colour));
    }
  }

  drawAxes(box, x, y, width, height) {
    const axis = svg("g", { class: "axis" });
    const steps = 4;
    // Enough decimals that neighbouring labels differ: equity moves by cents early on,
    // and whole numbers then repeat the same label down the axis.
    const step = (box.yMax - box.yMin) / steps;
    const decimals = step > 0 ? Math.min(4, Math.max(0, Math.ceil(-Math.log10(step)))) : 0;
    for (let k = 0; k <= steps; k += 1) {
      const value = box.yMin + step * k;
      const py = y(value);
      axis.append(svg("line", { x1: MARGIN.left, x2: width - MARGIN.right, y1: py, y2: py,
        class: "grid-line" }));
      const label = svg("text", { x: MARGIN.left - 6, y: py + 4, "text-anchor": "end" });
      label.textContent = formatNumber(value, decimals);
      axis.append(label);
    }
    for (const [t, anchor] of [[box.tMin, "start"], [box.tMax, "end"]]) {
      const label = svg("text", { x: x(t), y: height - 6, "text-anchor": anchor });
      label.textContent = formatClock(t);
      axis.append(label);
    }
    this.root.append(axis);
  }

  legendItem(s, colour) {
    const item = document.createElement("li");
    item.dataset.variantId = String(s.id);
    const swatch = document.createElement("span");
    swatch.className = s.isMain ? "swatch swatch-main" : "swatch";
    swatch.setAttribute("aria-hidden", "true");
    // CSSOM writes are allowed under a strict style CSP (unlike style attributes).
    swatch.style.backgroundColor = colour;
    const last = s.points.length > 0 ? s.points[s.points.length - 1][1] : null;
    const label = document.createElement("span");
    label.textContent = `${s.isMain ? "main" : "variant"} #${s.id}: ${formatNumber(last, 2)}`;
    item.append(swatch, label);
    return item;
  }
}
