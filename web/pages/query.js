// A running query: its plan, live progress, and its rows as they arrive
// (server-sent events); pause, and stop.

import { api, el, errorBox, fmt, time, curl } from '../api.js';
import { drawPlan } from '../plan.js';

const KEEP = 500;

export async function queryPage(root, name) {
  const q = await api.query(name);
  const head = el('div', {});
  const progress = el('div', { id: 'progress' });
  const planBox = el('div', { id: 'plan' });
  const thead = el('thead');
  const tbody = el('tbody');
  const note = el('div', { class: 'muted', id: 'skipped' });
  const cmd = el('pre', { class: 'cmd' }, curl('GET', `/api/queries/${encodeURIComponent(name)}/events`));
  let paused = false;
  let columns = null;
  const pause = el('button', { class: 'plain', onclick: () => {
    paused = !paused;
    pause.textContent = paused ? 'Resume' : 'Pause';
  } }, 'Pause');
  const stop = el('button', { id: 'stop', onclick: async () => {
    cmd.textContent = curl('POST', `/api/queries/${encodeURIComponent(name)}/stop`, {});
    try {
      const r = await api.stop(name);
      head.replaceChildren(title(r));
    } catch (e) {
      head.append(errorBox(e));
    }
  } }, 'Stop');
  const title = (r) => el('h2', {}, `${r.name} `, el('span', { class: `status-${r.status}` }, r.status), r.error ? el('div', { class: 'error' }, r.error) : null);
  head.append(title(q));
  try {
    const plan = await api.explain(q.sql);
    planBox.append(drawPlan(plan.graph));
  } catch (e) {
    planBox.append(errorBox(e));
  }
  const showProgress = (p) => {
    progress.replaceChildren(el('table', {}, el('tbody', {},
      ...[['records in', fmt(p.records_in)], ['records out', fmt(p.records_out)], ['rate (rec/s)', fmt(p.rate)],
        ['watermark', time(p.watermark)], ['late rows', fmt(p.late)], ['malformed', fmt(p.malformed)]]
        .map(([k, v]) => el('tr', {}, el('th', {}, k), el('td', {}, v))))));
    if (p.skipped) note.textContent = `${fmt(p.skipped)} rows were skipped: this page could not keep up (the query did not wait).`;
  };
  if (q.progress) showProgress(q.progress);
  const addRows = (rows) => {
    if (paused || !rows.length) return;
    if (!columns) {
      columns = Object.keys(rows[0]);
      thead.replaceChildren(el('tr', {}, ...columns.map((c) => el('th', {}, c))));
    }
    for (const r of rows) {
      const op = r._op;
      tbody.prepend(el('tr', { class: op === '-U' || op === '-D' ? 'minus' : '' }, ...columns.map((c) => el('td', {}, r[c] === null ? 'NULL' : String(r[c])))));
    }
    while (tbody.children.length > KEEP) tbody.lastChild.remove();
  };
  let source = null;
  if (q.status === 'running') {
    source = api.events(name);
    source.addEventListener('rows', (e) => addRows(JSON.parse(e.data)));
    source.addEventListener('progress', (e) => showProgress(JSON.parse(e.data)));
    source.addEventListener('status', (e) => {
      const s = JSON.parse(e.data);
      head.replaceChildren(title({ name, status: s.status, error: s.error }));
      if (s.status !== 'running' && s.status !== 'stopping') source.close();
    });
  }
  root.append(
    el('div', { class: 'panel' }, head, el('p', {}, pause, ' ', stop)),
    el('div', { class: 'row' },
      el('div', { class: 'panel grow' }, el('h3', {}, 'Plan'), planBox),
      el('div', { class: 'panel' }, el('h3', {}, 'Progress'), progress)),
    el('div', { class: 'panel' }, el('h3', {}, 'Results (newest first)'), note,
      el('div', { class: 'results' }, el('table', { id: 'results' }, thead, tbody)), cmd));
  return () => source && source.close();
}
