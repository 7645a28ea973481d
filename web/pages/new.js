// Writing a query: the SQL with completion and errors marked as you type
// (a debounced check), the plan drawn on Explain, and Start.

import { api, el, errorBox, curl } from '../api.js';
import { drawPlan } from '../plan.js';
import { SqlEditor } from '../editor.js';

const EXAMPLE = `CREATE STREAM bids (auction BIGINT, price BIGINT, date_time TIMESTAMP,
  WATERMARK FOR date_time AS date_time - INTERVAL '1' SECOND)
WITH (connector = 'nexmark', events = '100000000', rate = '20000', realtime = 'true');

SELECT auction, window_start, COUNT(*) AS bids, MAX(price) AS top
FROM TUMBLE(bids, date_time, INTERVAL '10' SECOND)
GROUP BY auction, window_start, window_end;`;

export async function newQueryPage(root) {
  const editor = new SqlEditor(sessionStorage.getItem('eddy-sql') || EXAMPLE);
  const name = el('input', { type: 'text', id: 'name', placeholder: 'query name', value: 'q' + Date.now().toString(36) });
  const status = el('div', { id: 'check' });
  const plan = el('div', { id: 'plan' });
  const cmd = el('pre', { class: 'cmd' });
  let timer = null;
  const check = async () => {
    sessionStorage.setItem('eddy-sql', editor.value);
    if (!cmd.textContent || cmd.dataset.check) {
      cmd.textContent = `${curl('POST', '/api/queries/check', { sql: editor.value })}\n# or, with the SQL in q.sql:\neddy check q.sql`;
      cmd.dataset.check = '1';
    }
    try {
      const r = await api.check(editor.value);
      editor.setStreams(r.streams);
      editor.mark(null);
      status.replaceChildren(el('span', { class: 'ok' }, `ok: ${r.streams.length} streams, ${r.queries} queries`));
    } catch (e) {
      if (e.body && e.body.streams && e.body.streams.length) editor.setStreams(e.body.streams);
      editor.mark(e.line ? { line: e.line, column: e.column, message: e.message } : null);
      status.replaceChildren(errorBox(e));
    }
  };
  editor.input.addEventListener('input', () => {
    clearTimeout(timer);
    timer = setTimeout(check, 400);
  });
  api.functions().then((f) => editor.setFunctions(f)).catch(() => {});
  const explain = async () => {
    delete cmd.dataset.check;
    cmd.textContent = `${curl('POST', '/api/queries/explain', { sql: editor.value })}\n# the same from the command line, with the SQL in q.sql:\neddy explain q.sql`;
    try {
      const r = await api.explain(editor.value);
      plan.replaceChildren(drawPlan(r.graph));
    } catch (e) {
      plan.replaceChildren(errorBox(e));
    }
  };
  const start = async () => {
    delete cmd.dataset.check;
    cmd.textContent = `${curl('POST', '/api/queries', { name: name.value, sql: editor.value })}\n# or run it in this terminal, with the SQL in q.sql:\neddy run q.sql`;
    try {
      const q = await api.create(name.value, editor.value);
      location.hash = `#/query/${encodeURIComponent(q.name)}`;
    } catch (e) {
      status.replaceChildren(errorBox(e));
    }
  };
  root.append(
    el('div', { class: 'row' },
      el('div', { class: 'panel grow' },
        el('h2', {}, 'New query'),
        editor.root,
        el('div', { class: 'muted small' }, 'Ctrl+Space completes streams, columns and functions (built-in and uploaded).'),
        status,
        el('p', {}, name, ' ', el('button', { class: 'plain', id: 'explain', onclick: explain }, 'Explain'), ' ', el('button', { id: 'start', onclick: start }, 'Start')),
        cmd),
      el('div', { class: 'panel grow' }, el('h2', {}, 'Plan'), plan)));
  await check();
  return () => clearTimeout(timer);
}
