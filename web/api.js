// The JSON API (docs/http-api.md). The login cookie authenticates every
// call; a same-origin fetch sends this server's Origin on changes.

export class ApiError extends Error {
  constructor(status, body) {
    super(body && body.error ? body.error : `HTTP ${status}`);
    this.status = status;
    this.hint = body && body.hint;
    this.line = body && body.line;
    this.column = body && body.column;
    this.body = body;
  }
}

async function call(method, path, body, type) {
  const init = { method, credentials: 'same-origin', headers: {} };
  if (body !== undefined) {
    init.headers['Content-Type'] = type || 'application/json';
    init.body = type ? body : JSON.stringify(body);
  }
  const r = await fetch(path, init);
  const text = await r.text();
  const json = text ? JSON.parse(text) : null;
  if (!r.ok) throw new ApiError(r.status, json);
  return json;
}

export const api = {
  health: () => call('GET', '/healthz'),
  queries: () => call('GET', '/api/queries'),
  query: (name) => call('GET', `/api/queries/${encodeURIComponent(name)}`),
  check: (sql) => call('POST', '/api/queries/check', { sql }),
  explain: (sql) => call('POST', '/api/queries/explain', { sql }),
  create: (name, sql) => call('POST', '/api/queries', { name, sql }),
  stop: (name) => call('POST', `/api/queries/${encodeURIComponent(name)}/stop`, {}),
  start: (name) => call('POST', `/api/queries/${encodeURIComponent(name)}/start`, {}),
  remove: (name) => call('DELETE', `/api/queries/${encodeURIComponent(name)}`),
  functions: () => call('GET', '/api/functions'),
  udfs: () => call('GET', '/api/udfs'),
  tryUdf: (module, fn, rows) => call('POST', `/api/udfs/${encodeURIComponent(module)}/${encodeURIComponent(fn)}/try`, { rows }),
  upload: (name, bytes) => call('POST', `/api/udfs/${encodeURIComponent(name)}`, bytes, 'application/wasm'),
  removeUdf: (name) => call('DELETE', `/api/udfs/${encodeURIComponent(name)}`),
  events: (name) => new EventSource(`/api/queries/${encodeURIComponent(name)}/events`),
};

// The equivalent command, shown under each action.
export function curl(method, path, body) {
  const data = body === undefined ? '' : ` -H 'Content-Type: application/json' -d '${JSON.stringify(body).replace(/'/g, "'\\''")}'`;
  const m = method === 'GET' ? '' : ` -X ${method}`;
  return `curl -s${m} -H "Authorization: Bearer $T"${data} ${location.origin}${path}`;
}

// Creates an element: el('div', {class: 'x'}, child, 'text', ...).
export function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
    else if (v !== undefined && v !== null && v !== false) e.setAttribute(k, v === true ? '' : v);
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return e;
}

export function errorBox(e) {
  const parts = [e.message];
  if (e.line) parts.push(` (line ${e.line}, column ${e.column})`);
  return el('div', { class: 'error' }, parts.join(''), e.hint ? el('div', { class: 'muted' }, 'hint: ' + e.hint) : null);
}

export function fmt(n) {
  if (n === null || n === undefined) return '–';
  return Math.round(n).toLocaleString('en');
}

export function time(ms) {
  return ms === null || ms === undefined ? '–' : new Date(ms).toISOString().replace('.000Z', 'Z');
}
