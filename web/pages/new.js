// Writing a query: the SQL with errors marked as you type (a debounced
// check), the plan drawn on Explain, and Start.

import { api, el, errorBox, curl } from '../api.js';
import { drawPlan } from '../plan.js';

const EXAMPLE = `CREATE STREAM bids (auction BIGINT, price BIGINT, date_time TIMESTAMP,
  WATERMARK FOR date_time AS date_time - INTERVAL '1' SECOND)
WITH (connector = 'nexmark', events = '100000000', rate = '20000', realtime = 'true');

SELECT auction, window_start, COUNT(*) AS bids, MAX(price) AS top
FROM TUMBLE(bids, date_time, INTERVAL '10' SECOND)
GROUP BY auction, window_start, window_end;`;

// The character offset of a 1-based line and column.
function offset(text, line, column) {
  const lines = text.split('\n');
  let at = 0;
  for (let i = 0; i < line - 1 && i < lines.length; i++) at += lines[i].length + 1;
  return at + Math.max(0, column - 1);
}

export async function newQueryPage(root) {
  const sql = el('textarea', { id: 'sql', spellcheck: 'false' });
  sql.value = sessionStorage.getItem('eddy-sql') || EXAMPLE;
  const name = el('input', { type: 'text', id: 'name', placeholder: 'query name', value: 'q' + Date.now().toString(36) });
  const status = el('div', { id: 'check' });
  const plan = el('div', { id: 'plan' });
  const cmd = el('pre', { class: 'cmd' });
  let timer = null;
  const check = async () => {
    sessionStorage.setItem('eddy-sql', sql.value);
    try {
      const r = await api.check(sql.value);
      status.replaceChildren(el('span', { class: 'ok' }, `ok: ${r.streams} streams, ${r.queries} queries`));
    } catch (e) {
      status.replaceChildren(errorBox(e));
      if (e.line) status.append(el('button', { class: 'plain', onclick: () => {
        const at = offset(sql.value, e.line, e.column);
        sql.focus();
        sql.setSelectionRange(at, at + 1);
      } }, 'show in the SQL'));
    }
  };
  sql.addEventListener('input', () => {
    clearTimeout(timer);
    timer = setTimeout(check, 400);
  });
  const explain = async () => {
    cmd.textContent = curl('POST', '/api/queries/explain', { sql: sql.value });
    try {
      const r = await api.explain(sql.value);
      plan.replaceChildren(drawPlan(r.graph));
    } catch (e) {
      plan.replaceChildren(errorBox(e));
    }
  };
  const start = async () => {
    cmd.textContent = curl('POST', '/api/queries', { name: name.value, sql: sql.value });
    try {
      const q = await api.create(name.value, sql.value);
      location.hash = `#/query/${encodeURIComponent(q.name)}`;
    } catch (e) {
      status.replaceChildren(errorBox(e));
    }
  };
  root.append(
    el('div', { class: 'row' },
      el('div', { class: 'panel grow' },
        el('h2', {}, 'New query'),
        sql,
        status,
        el('p', {}, name, ' ', el('button', { class: 'plain', id: 'explain', onclick: explain }, 'Explain'), ' ', el('button', { id: 'start', onclick: start }, 'Start')),
        cmd),
      el('div', { class: 'panel grow' }, el('h2', {}, 'Plan'), plan)));
  await check();
  return () => clearTimeout(timer);
}
