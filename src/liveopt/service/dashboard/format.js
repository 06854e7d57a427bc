// Number and time formatting for the dashboard. Telemetry sends plain numbers (never
// strings) and null for "not defined yet"; every formatter shows null as an em dash so an
// empty metric is never mistaken for zero.

export const MISSING = "—";

const groupedFormats = new Map();

function grouped(digits) {
  let format = groupedFormats.get(digits);
  if (format === undefined) {
    format = new Intl.NumberFormat("en-US", {
      minimumFractionDigits: digits,
      maximumFractionDigits: digits,
    });
    groupedFormats.set(digits, format);
  }
  return format;
}

function isNumber(value) {
  return typeof value === "number" && Number.isFinite(value);
}

/** A number with thousands separators and a fixed number of decimals. */
export function formatNumber(value, digits = 2) {
  return isNumber(value) ? grouped(digits).format(value) : MISSING;
}

/** An integer count with thousands separators. */
export function formatCount(value) {
  return isNumber(value) ? grouped(0).format(Math.round(value)) : MISSING;
}

/** A number with an explicit sign (PnL, ROI): "+12.50", "−3.00". */
export function formatSigned(value, digits = 2) {
  if (!isNumber(value)) return MISSING;
  const text = grouped(digits).format(Math.abs(value));
  if (text === grouped(digits).format(0)) return text;
  return (value < 0 ? "−" : "+") + text;
}

/** A fraction (0.53) shown as a percentage ("53.0 %"). */
export function formatFractionPct(value, digits = 1) {
  return isNumber(value) ? `${grouped(digits).format(value * 100)} %` : MISSING;
}

/** A value already in percent (roi_pct) with its sign: "+1.25 %". */
export function formatSignedPct(value, digits = 2) {
  return isNumber(value) ? `${formatSigned(value, digits)} %` : MISSING;
}

/** Milliseconds with a precision that suits their size. */
export function formatMs(value) {
  if (!isNumber(value)) return MISSING;
  if (value < 1) return `${grouped(3).format(value)} ms`;
  if (value < 100) return `${grouped(1).format(value)} ms`;
  return `${grouped(0).format(value)} ms`;
}

/** A duration in seconds as "2 d 3 h", "4 h 5 m", "6 m 7 s" or "8.2 s". */
export function formatDuration(seconds) {
  if (!isNumber(seconds)) return MISSING;
  const s = Math.max(0, seconds);
  if (s < 60) return `${grouped(1).format(s)} s`;
  const days = Math.floor(s / 86400);
  const hours = Math.floor((s % 86400) / 3600);
  const minutes = Math.floor((s % 3600) / 60);
  const secs = Math.floor(s % 60);
  if (days > 0) return `${days} d ${hours} h`;
  if (hours > 0) return `${hours} h ${minutes} m`;
  return `${minutes} m ${secs} s`;
}

/** An integer-nanosecond timestamp as local wall time "HH:MM:SS". */
export function formatClock(tsNs) {
  if (!isNumber(tsNs)) return MISSING;
  const date = new Date(tsNs / 1e6);
  return date.toLocaleTimeString("en-GB", { hour12: false });
}

/** "positive", "negative" or "zero": the CSS class that colours a signed value. */
export function signClass(value) {
  if (!isNumber(value) || value === 0) return "zero";
  return value > 0 ? "positive" : "negative";
}

/** A reason or kind identifier ("insufficient_evidence") as words. */
export function humanise(identifier) {
  return String(identifier).replaceAll("_", " ");
}
