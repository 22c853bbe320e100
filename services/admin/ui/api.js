// The admin API client: bearer token from sessionStorage, JSON in and out,
// errors as ApiError {status, code, message, fields}.
import { stringify } from './units.js';

const KEY = 'promo-admin-token';

export function getToken() {
  return sessionStorage.getItem(KEY) || '';
}
export function setToken(t) {
  if (t) sessionStorage.setItem(KEY, t);
  else sessionStorage.removeItem(KEY);
}

export class ApiError extends Error {
  constructor(status, body, fallback) {
    super((body && body.message) || fallback || `HTTP ${status}`);
    this.status = status;
    this.code = (body && body.error) || '';
    this.fields = (body && Array.isArray(body.fields) && body.fields) || [];
    this.retryAfter = null;
  }
}

let onUnauthorized = () => {};
export function setUnauthorizedHandler(fn) {
  onUnauthorized = fn;
}

function query(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params || {})) {
    if (v !== undefined && v !== null && v !== '') q.set(k, String(v));
  }
  const s = q.toString();
  return s ? `?${s}` : '';
}

export async function request(method, path, { params, body, raw = false, token } = {}) {
  const headers = { Authorization: `Bearer ${token ?? getToken()}` };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  let res;
  try {
    res = await fetch(path + query(params), {
      method, headers, body: body === undefined ? undefined : stringify(body), cache: 'no-store',
    });
  } catch (e) {
    throw new ApiError(0, null, 'The admin server cannot be reached.');
  }
  if (res.ok && raw) return res;
  const text = await res.text();
  let data = null;
  if (text) {
    try {
      data = JSON.parse(text);
    } catch (e) {
      data = null;
    }
  }
  if (!res.ok) {
    const err = new ApiError(res.status, data, text.slice(0, 200) || res.statusText);
    err.retryAfter = res.headers.get('Retry-After');
    if (res.status === 401 && token === undefined) onUnauthorized(err);
    throw err;
  }
  return data;
}

export const api = {
  me: (token) => request('GET', '/v1/me', { token }),
  listCodes: (params) => request('GET', '/v1/codes', { params }),
  getCode: (code) => request('GET', `/v1/codes/${encodeURIComponent(code)}`),
  createCode: (body) => request('POST', '/v1/codes', { body }),
  updateCode: (code, body) => request('PUT', `/v1/codes/${encodeURIComponent(code)}`, { body }),
  codeAction: (code, action) => request('POST', `/v1/codes/${encodeURIComponent(code)}/${action}`),
  redemptions: (code, params) =>
    request('GET', `/v1/codes/${encodeURIComponent(code)}/redemptions`, { params }),
  bulk: (body) => request('POST', '/v1/codes/bulk', { body }),
  vip: (body) => request('POST', '/v1/codes/vip', { body }),
  dashboard: (params) => request('GET', '/v1/dashboard', { params }),
  usage: (params) => request('GET', '/v1/usage', { params }),
  audit: (params) => request('GET', '/v1/audit', { params }),
  csv: (path, params) => request('GET', path, { params: { ...params, format: 'csv' }, raw: true }),
  dlq: (params) => request('GET', '/v1/dlq', { params }),
  replay: (source) => request('POST', '/v1/dlq/replay', { body: { source } }),
  tokens: () => request('GET', '/v1/tokens'),
  createToken: (body) => request('POST', '/v1/tokens', { body }),
  revokeToken: (id) => request('DELETE', `/v1/tokens/${encodeURIComponent(id)}`),
};

// What each role may do (GET /v1/me gives the role; the server enforces it
// anyway, the UI only hides what would be refused).
export function can(role, what) {
  const rules = {
    read: ['admin', 'marketer', 'analyst'],
    write: ['admin', 'marketer'],
    replay: ['admin', 'marketer'],
    tokens: ['admin'],
  };
  return (rules[what] || []).includes(role);
}
