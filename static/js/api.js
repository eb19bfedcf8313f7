// Calls to the exchange's REST API with the page's session and CSRF token (DRF's
// SessionAuthentication enforces CSRF on writes). Errors come back in one shape,
// {"error": {"code", "message", "details"}}, and are thrown as ApiError for pages to show.

export class ApiError extends Error {
  constructor(status, code, message, details) {
    super(message);
    this.status = status;
    this.code = code;
    this.details = details || {};
  }

  // One line a person can read: the message, then what the details add.
  describe() {
    const parts = [];
    for (const [key, value] of Object.entries(this.details)) {
      if (Array.isArray(value)) {
        const field = key === "non_field_errors" ? "" : `${key.replace(/_/g, " ")}: `;
        parts.push(field + value.join(" "));
      } else if (value !== null && typeof value !== "object" && !this.message.includes(value)) {
        parts.push(`${key.replace(/_/g, " ")} ${value}`);
      }
    }
    return parts.length ? `${this.message} (${parts.join("; ")})` : this.message;
  }
}

function csrfToken() {
  const meta = document.querySelector('meta[name="csrf-token"]');
  return meta ? meta.content : "";
}

export async function api(method, path, body) {
  const headers = { Accept: "application/json" };
  const init = { method, headers, credentials: "same-origin" };
  if (method !== "GET") headers["X-CSRFToken"] = csrfToken();
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(path, init);
  } catch {
    throw new ApiError(0, "NETWORK", "The exchange cannot be reached. Check your connection.");
  }
  if (response.status === 204) return null;
  let data = null;
  const type = response.headers.get("Content-Type") || "";
  if (type.includes("application/json")) {
    try {
      data = await response.json();
    } catch {
      data = null;
    }
  }
  if (!response.ok) {
    const error = data && data.error;
    if (error && error.message) {
      throw new ApiError(response.status, error.code, error.message, error.details);
    }
    // Never show a server's raw body (it could be an HTML page or a trace).
    throw new ApiError(
      response.status,
      "HTTP_" + response.status,
      `The request failed (HTTP ${response.status}). Please try again.`,
    );
  }
  return data;
}

export const get = (path) => api("GET", path);
export const post = (path, body) => api("POST", path, body);
export const del = (path) => api("DELETE", path);

// A read over REST can be older than one started after it (or than an event that arrived
// while it was on its way): only the newest read's answer is used. Each call of the returned
// function starts a read and gives a check that is true while no newer read has started.
export function newestRead() {
  let started = 0;
  return () => {
    const mine = ++started;
    return () => mine === started;
  };
}
