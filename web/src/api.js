// api.js — the fetch wrapper for the JSON API at /api/v1 (schemas/openapi.yaml).
//
// api(method, path, {query, body}) resolves to the parsed JSON answer (null
// for 204) or throws an ApiError {status, message, retryAfter}. Every write
// carries the session's CSRF token (X-CSRF-Token). A 401 on any route but
// /login forgets the session and goes to the login page.
import Alpine from 'alpinejs';

export class ApiError extends Error {
  constructor(status, message, retryAfter) {
    super(message);
    this.status = status;        // HTTP status, 0 when the network failed
    this.retryAfter = retryAfter; // seconds (429, 503), or 0
  }
}

let onUnauthorized = () => {};
// setUnauthorizedHandler(fn): fn() runs when the API answers 401 (session gone).
export function setUnauthorizedHandler(fn) { onUnauthorized = fn; }

// Builds "/api/v1<path>?k=v", leaving out empty values.
export function apiUrl(path, query) {
  const qs = new URLSearchParams();
  for (const [k, v] of Object.entries(query || {})) {
    if (v !== undefined && v !== null && v !== '') qs.set(k, String(v));
  }
  const s = qs.toString();
  return '/api/v1' + path + (s ? '?' + s : '');
}

export async function api(method, path, { query, body } = {}) {
  const headers = { Accept: 'application/json' };
  const init = { method, headers, credentials: 'same-origin' };
  if (body !== undefined) {
    headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  const csrf = Alpine.store('session').csrf;
  if (method !== 'GET' && method !== 'HEAD' && csrf) headers['X-CSRF-Token'] = csrf;

  let res;
  try {
    res = await fetch(apiUrl(path, query), init);
  } catch (e) {
    throw new ApiError(0, 'network', 0);
  }
  let data = null;
  if (res.status !== 204) {
    const text = await res.text();
    if (text) {
      try { data = JSON.parse(text); } catch (e) { data = null; }
    }
  }
  if (res.ok) return data;

  const retryAfter = parseInt(res.headers.get('Retry-After') || '0', 10) || 0;
  const message = (data && typeof data.error === 'string') ? data.error : res.statusText || 'error';
  if (res.status === 401 && path !== '/login') onUnauthorized();
  throw new ApiError(res.status, message, retryAfter);
}

export const get = (path, query) => api('GET', path, { query });
export const post = (path, body) => api('POST', path, { body: body ?? {} });
export const put = (path, body) => api('PUT', path, { body });
export const patch = (path, body) => api('PATCH', path, { body });
