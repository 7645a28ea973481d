// The queries list: status, uptime, rate, errors.

import { api, el, fmt, curl } from '../api.js';

export async function queriesPage(root) {
  const table = el('tbody');
  const render = async () => {
    const list = await api.queries();
    table.replaceChildren(
      ...list.map((q) => {
        const p = q.progress || {};
        return el('tr', {},
          el('td', {}, el('a', { href: `#/query/${encodeURIComponent(q.name)}` }, q.name)),
          el('td', { class: `status-${q.status}` }, q.status),
          el('td', {}, p.elapsed_ms !== undefined ? `${Math.round(p.elapsed_ms / 1000)} s` : '–'),
          el('td', {}, fmt(p.rate)),
          el('td', {}, fmt(p.records_in)),
          el('td', {}, fmt(p.records_out)),
          el('td', { class: 'error' }, q.error || ''));
      }));
    if (!list.length) table.append(el('tr', {}, el('td', { colspan: 7, class: 'muted' }, 'No queries yet: write one under “New query”.')));
  };
  root.append(
    el('div', { class: 'panel' },
      el('h2', {}, 'Queries'),
      el('table', { id: 'queries' },
        el('thead', {}, el('tr', {}, ...['name', 'status', 'uptime', 'rate (rec/s)', 'records in', 'records out', 'error'].map((h) => el('th', {}, h)))),
        table),
      el('pre', { class: 'cmd' }, curl('GET', '/api/queries'))));
  await render();
  const timer = setInterval(() => render().catch(() => {}), 1000);
  return () => clearInterval(timer);
}
