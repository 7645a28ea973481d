// A running query: its plan with live numbers per node (the bottleneck
// coloured), the event-time strip, progress, and its rows as they arrive
// (server-sent events) — as a table, or for EMIT CHANGES as a changelog
// applied to a result; pause, and stop.

import { api, el, errorBox, fmt, time, curl } from '../api.js';
import { drawPlan } from '../plan.js';
import { nodeStats, EventTimeStrip, Changelog } from '../live.js';

const KEEP = 500;

export async function queryPage(root, name) {
  const q = await api.query(name);
  const path = `/api/queries/${encodeURIComponent(name)}`;
  const head = el('div', {});
  const progress = el('div', { id: 'progress' });
  const planBox = el('div', { id: 'plan' });
  const thead = el('thead');
  const tbody = el('tbody');
  const note = el('div', { class: 'muted', id: 'skipped' });
  const cmd = el('pre', { class: 'cmd' }, `${curl('GET', path)}\n${curl('GET', `${path}/events`)}`);
  let paused = false;
  let columns = null;
  let changelog = null;
  const table = el('div', { class: 'results' }, el('table', { id: 'results' }, thead, tbody));
  const rowsBox = el('div', {}, table);
  const pause = el('button', { class: 'plain', id: 'pause', onclick: () => {
    paused = !paused;
    pause.textContent = paused ? 'Resume' : 'Pause';
  } }, 'Pause');
  const title = (r) => el('h2', {}, `${r.name} `, el('span', { class: `status-${r.status}`, id: 'status' }, r.status), r.error ? el('div', { class: 'error' }, r.error) : null);
  const stop = el('button', { id: 'stop', onclick: async () => {
    cmd.textContent = `${curl('POST', `${path}/stop`, {})}\n# a query started with eddy run stops on Ctrl-C (sinks flushed)`;
    try {
      const r = await api.stop(name);
      head.replaceChildren(title(r));
    } catch (e) {
      head.append(errorBox(e));
    }
  } }, 'Stop');
  head.append(title(q));
  let graph = null;
  let plan = null;
  let strip = null;
  try {
    graph = (await api.explain(q.sql)).graph;
    plan = drawPlan(graph, true);
    planBox.append(plan);
    strip = new EventTimeStrip(graph);
  } catch (e) {
    planBox.append(errorBox(e));
  }
  let last = null;
  const showProgress = (p) => {
    const cells = [['records in', fmt(p.records_in)], ['records out', fmt(p.records_out)], ['rate (rec/s)', fmt(p.rate)],
      ['watermark', time(p.watermark)], ['lag', p.lag_ms === null || p.lag_ms === undefined ? '–' : `${(p.lag_ms / 1000).toFixed(1)} s`], ['late rows', fmt(p.late)], ['malformed', fmt(p.malformed)],
      ['uptime', `${Math.round((p.elapsed_ms || 0) / 1000)} s`]];
    // with --checkpoint-dir: the last durable checkpoint and the one the run resumed from
    const c = p.checkpoints;
    const saved = [];
    if (c && c.last) saved.push(`last checkpoint #${c.last.id}, ${(c.last.age_ms / 1000).toFixed(1)} s ago (${fmt(c.last.bytes)} bytes, ${c.last.duration_ms} ms)`);
    if (c && c.restored) saved.push(`resumed from checkpoint #${c.restored.id} (restored in ${c.restored.recovery_ms} ms)`);
    progress.replaceChildren(el('table', { class: 'stats' },
      el('thead', {}, el('tr', {}, ...cells.map(([k]) => el('th', {}, k)))),
      el('tbody', {}, el('tr', {}, ...cells.map(([, v]) => el('td', {}, v))))),
      ...(saved.length ? [el('p', { id: 'checkpoint', class: 'muted' }, saved.join(' · '))] : []));
    if (p.skipped) note.textContent = `${fmt(p.skipped)} rows were skipped: this page could not keep up (the query did not wait).`;
    if (graph && p.live) {
      plan.update(nodeStats(graph, last, p));
      strip.update(p);
      last = p;
    }
  };
  if (q.progress) showProgress(q.progress);
  // run as this server's share of a fleet (eddy serve --instance-id): the
  // tasks it runs and its rebalances; the rows are in the output topic
  if (q.instance) {
    const i = q.instance;
    progress.replaceChildren(
      el('p', { id: 'instance' }, `instance ${i.id}: ${i.tasks.length} tasks here · ${fmt(i.rebalances)} rebalances`
        + (i.last_rebalance_ms === null ? '' : `, the last took ${(i.last_rebalance_ms / 1000).toFixed(1)} s`)),
      el('table', { class: 'stats', id: 'tasks' },
        el('thead', {}, el('tr', {}, ...['task', 'stage', 'records in', 'records out'].map((k) => el('th', {}, k)))),
        el('tbody', {}, ...i.tasks.map((t) => el('tr', {}, el('td', {}, t.name), el('td', {}, String(t.stage)),
          el('td', {}, fmt(t.records_in)), el('td', {}, fmt(t.records_out)))))));
    note.textContent = 'Each server of the fleet writes its share of the results to the query\'s output topic: read them there.';
  }
  const addRows = (rows) => {
    if (paused || !rows.length) return;
    if ('_op' in rows[0]) {
      if (!changelog) {
        changelog = new Changelog();
        rowsBox.replaceChildren(changelog.root);
      }
      changelog.apply(rows);
      return;
    }
    if (!columns) {
      columns = Object.keys(rows[0]);
      thead.replaceChildren(el('tr', {}, ...columns.map((c) => el('th', {}, c))));
    }
    for (const r of rows) {
      tbody.prepend(el('tr', {}, ...columns.map((c) => el('td', {}, r[c] === null ? 'NULL' : String(r[c])))));
    }
    while (tbody.children.length > KEEP) tbody.lastChild.remove();
  };
  let source = null;
  if (q.status === 'running' && !q.instance) {
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
      el('div', { class: 'panel plan-panel' }, el('h3', {}, 'Plan'), planBox,
        el('div', { class: 'legend' }, el('span', { class: 'busy' }, 'busy ≥ 70% (the bottleneck)'), el('span', { class: 'backpressured' }, 'waiting on the next stage ≥ 50%'), el('span', { class: 'ok' }, 'flowing'))),
      el('div', { class: 'grow' },
        el('div', { class: 'panel' }, el('h3', {}, 'Event time'), strip ? strip.root : el('div', { class: 'muted' }, 'no plan')),
        el('div', { class: 'panel' }, el('h3', {}, 'Progress'), progress),
        el('div', { class: 'panel' }, el('h3', {}, 'Results (newest first)'), note, rowsBox, cmd))));
  return () => source && source.close();
}
