// The emergency stop: a dialog asks for the API token (kept in sessionStorage only when the
// user ticks "remember for this tab", never in localStorage or a cookie), then sends
// POST /api/optimizer/stop with the bearer token and shows what happened.

import { formatClock } from "./format.js";

export const TOKEN_KEY = "liveopt.apiToken";
const STOP_PATH = "/api/optimizer/stop";

function storage() {
  try {
    return window.sessionStorage;
  } catch (error) {
    return null; // storage disabled: the token is simply not remembered
  }
}

/** The error text of a failed response body: JSON error fields or the raw text. */
export function errorText(body) {
  try {
    const parsed = JSON.parse(body);
    if (parsed && typeof parsed === "object") {
      for (const key of ["detail", "message", "error", "reason"]) {
        if (typeof parsed[key] === "string" && parsed[key] !== "") return parsed[key];
      }
    }
  } catch (error) {
    // not JSON: fall through to the raw text
  }
  return body.trim();
}

function describeReport(report) {
  const parts = [`Optimizer stopped at ${formatClock(report.stopped_at_ns)}.`];
  if (report.flatten) {
    parts.push(`Orders cancelled: ${report.orders_cancelled}.`);
    parts.push(report.position_closed ? "Position closed." : "No position was closed.");
  }
  if (report.errors.length > 0) parts.push(`Errors: ${report.errors.join("; ")}`);
  return parts.join(" ");
}

function describeFailure(status, detail) {
  switch (status) {
    case 401:
      return `401 Unauthorized: the API token was rejected. Nothing was stopped.${detail ? ` (${detail})` : ""}`;
    case 403:
      return `403 Forbidden: this token may not stop the optimizer. Nothing was stopped.`;
    case 409:
      return `409 Conflict: ${detail || "the optimizer is not running"}.`;
    case 422:
      return `422 Invalid request: ${detail || "the server refused the request body"}.`;
    default:
      return `Stop failed with HTTP ${status}${detail ? `: ${detail}` : ""}.`;
  }
}

export class EmergencyStop {
  constructor() {
    this.dialog = document.getElementById("stop-dialog");
    this.form = document.getElementById("stop-form");
    this.token = document.getElementById("stop-token");
    this.remember = document.getElementById("stop-remember");
    this.flatten = document.getElementById("stop-flatten");
    this.confirm = document.getElementById("stop-confirm");
    this.result = document.getElementById("stop-result");
    document.getElementById("stop-open").addEventListener("click", () => this.open());
    document.getElementById("stop-cancel").addEventListener("click", () => this.dialog.close());
    this.form.addEventListener("submit", (event) => {
      event.preventDefault();
      this.submit();
    });
  }

  open() {
    const remembered = storage()?.getItem(TOKEN_KEY) ?? null;
    this.token.value = remembered ?? "";
    this.remember.checked = remembered !== null;
    this.flatten.checked = false;
    this.confirm.disabled = false;
    this.dialog.showModal();
    this.token.focus();
  }

  async submit() {
    const token = this.token.value.trim();
    if (token === "") {
      this.token.focus();
      return;
    }
    const store = storage();
    if (this.remember.checked) store?.setItem(TOKEN_KEY, token);
    else store?.removeItem(TOKEN_KEY);
    const flatten = this.flatten.checked;
    this.confirm.disabled = true;
    this.show("pending", "Sending the emergency stop…");
    try {
      const response = await fetch(STOP_PATH, {
        method: "POST",
        headers: { "Authorization": `Bearer ${token}`, "Content-Type": "application/json" },
        body: JSON.stringify({ flatten }),
        cache: "no-store",
      });
      const body = await response.text();
      if (response.ok) {
        this.dialog.close();
        this.show("ok", describeReport(JSON.parse(body)));
      } else {
        // A rejected token must not be offered again next time.
        if (response.status === 401) store?.removeItem(TOKEN_KEY);
        // A 401 keeps the dialog open so the token can be corrected at once.
        if (response.status !== 401) this.dialog.close();
        this.show("error", describeFailure(response.status, errorText(body)), response.status);
      }
    } catch (error) {
      this.show("error", `Could not reach the server: ${error.message}. Nothing is known to be stopped.`);
    } finally {
      this.confirm.disabled = false;
    }
  }

  show(state, text, httpStatus = null) {
    this.result.hidden = false;
    this.result.dataset.state = state;
    if (httpStatus === null) delete this.result.dataset.httpStatus;
    else this.result.dataset.httpStatus = String(httpStatus);
    const message = document.createElement("span");
    message.className = "stop-result-text";
    message.textContent = text;
    const dismiss = document.createElement("button");
    dismiss.type = "button";
    dismiss.textContent = "Dismiss";
    dismiss.setAttribute("aria-label", "Dismiss the stop result");
    dismiss.addEventListener("click", () => { this.result.hidden = true; });
    this.result.replaceChildren(message, dismiss);
    // Inside the open modal dialog the message is visible next to the token field.
    (this.dialog.open ? this.form : document.body).append(this.result);
  }
}
