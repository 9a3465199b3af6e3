// Every URL is resolved against the document's <base href>: the one place the base path lives.

/** The UI's base URL (ends with a slash). */
export const base = new URL(document.baseURI);

/** An absolute URL for a path relative to the base, with query parameters (empty ones left out). */
export function url(path, params = {}) {
  const u = new URL(path, base);
  for (const [key, value] of Object.entries(params)) {
    if (value !== undefined && value !== null && value !== "" && value !== 0) {
      u.searchParams.set(key, String(value));
    }
  }
  return u;
}

/** The current location's path relative to the base ("" for the inbox, "view/ID" ...). */
export function route() {
  const path = location.pathname;
  return path.startsWith(base.pathname) ? path.slice(base.pathname.length) : path.replace(/^\//, "");
}

export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

async function check(response) {
  if (response.ok) return response;
  let message = `${response.status} ${response.statusText}`;
  // Mailpit's paths say what is wrong in plain text, mailsink's own in {"Error": ...}.
  const text = (await response.text().catch(() => "")).trim();
  try {
    const body = JSON.parse(text);
    if (body && body.Error) message = body.Error;
  } catch {
    if (text && !text.startsWith("<")) message = text.slice(0, 300);
  }
  throw new ApiError(response.status, message);
}

/** GET a JSON document. */
export async function getJSON(path, params, signal) {
  const response = await fetch(url(path, params), { headers: { Accept: "application/json" }, signal });
  return (await check(response)).json();
}

/** GET a text document (or HTML fragment); resolves to the response, checked. */
export async function getText(path, params, signal) {
  const response = await fetch(url(path, params), { signal });
  if (response.status === 404) return { status: 404, text: await response.text() };
  await check(response);
  return { status: response.status, text: await response.text() };
}

/** A write to the JSON API; `path` may be a URL from url() when it needs parameters. */
export async function call(method, path, body) {
  const init = { method, headers: {} };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  return check(await fetch(path instanceof URL ? path : url(path), init));
}
