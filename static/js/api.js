// Requests to the app: same-origin fetch with the CSRF token on writes, and errors as ApiError
// with the server's message. Every answer tells the store-status hook whether the store is up.

const csrfMeta = document.querySelector('meta[name="csrf-token"]');
const csrfToken = csrfMeta ? csrfMeta.content : "";

export class ApiError extends Error {
  constructor(status, message, fields) {
    super(message);
    this.status = status;
    this.fields = fields || null;
  }
}

async function errorFrom(response) {
  let message = `The server answered ${response.status} ${response.statusText}.`;
  let fields = null;
  try {
    const data = await response.json();
    if (data && data.error) {
      message = data.error.message || message;
      fields = data.error.fields || null;
    }
  } catch {
    // not JSON: keep the status line
  }
  return new ApiError(response.status, message, fields);
}

// What to tell the visitor about a failed request.
export function describe(error) {
  if (error instanceof ApiError) return error.message;
  return "The network request failed; check your connection and try again.";
}

let storeStatus = () => {};

// hook(ok): called with false on a 503, with true on any successful answer.
export function onStoreStatus(hook) {
  storeStatus = hook;
}

export async function request(url, options = {}) {
  const headers = { Accept: "application/json", ...(options.headers || {}) };
  if (options.method && options.method !== "GET") headers["X-CSRFToken"] = csrfToken;
  const response = await fetch(url, { credentials: "same-origin", ...options, headers });
  if (response.status === 503) storeStatus(false);
  if (!response.ok) throw await errorFrom(response);
  storeStatus(true);
  return response;
}

export async function requestJSON(url, options) {
  return (await request(url, options)).json();
}
