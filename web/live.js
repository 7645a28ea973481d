// What the running-query page draws from the live progress events: the
// numbers on each plan node and its colour (busy, backpressured), the
// event-time strip (watermark, open windows, late rows) and, for EMIT
// CHANGES, the changelog applied to a result table.

import { el, fmt, time } from './api.js';

const NS = 'http://www.w3.org/2000/svg';
const BUSY = 0.7;
const BACKPRESSURED = 0.5;

function svg(tag, attrs, ...children) {
  const e = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  for (const c of children) e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return e;
}

function pct(x) {
  return `${Math.round(Math.max(0, Math.min(1, x)) * 100)}%`;
}

function bytes(n) {
  if (n < 1024) return `${n} B`;
  if (n < 1 << 20) return `${(n / 1024).toFixed(1)} KiB`;
  return `${(n / (1 << 20)).toFixed(1)} MiB`;
}

// Per node of the plan graph: two lines of numbers and a state, from two
// successive progress samples (`before` may be null: rates since the start).
export function nodeStats(graph, before, now) {
  const out = new Map();
  const live = now.live;
  if (!live) return out;
  const prev = before && before.live ? before : { elapsed_ms: 0, records_in: 0, records_out: 0, live: { operators: [], source_blocked_ms: 0, sink_busy_ms: 0 } };
  const dt = Math.max(1, now.elapsed_ms - prev.elapsed_ms);
  const ops = new Map(live.operators.map((o) => [o.node, o]));
  const ops0 = new Map(prev.live.operators.map((o) => [o.node, o]));
  const rate = (a, b) => ((a - b) * 1000) / dt;
  for (const n of graph.nodes) {
    if (n.kind === 'Source') {
      const r = rate(now.records_in, prev.records_in);
      const bp = (live.source_blocked_ms - prev.live.source_blocked_ms) / dt;
      out.set(n.id, {
        lines: [`out ${fmt(now.records_in)} rows · ${fmt(r)}/s`, `backpressured ${pct(bp)}${now.malformed ? ` · malformed ${fmt(now.malformed)}` : ''}`],
        state: bp >= BACKPRESSURED ? 'backpressured' : r > 0 ? 'ok' : 'idle',
      });
    } else if (n.kind === 'Sink') {
      const r = rate(now.records_out, prev.records_out);
      const busy = (live.sink_busy_ms - prev.live.sink_busy_ms) / dt;
      out.set(n.id, {
        lines: [`in ${fmt(now.records_out)} rows · ${fmt(r)}/s`, `busy ${pct(busy)}`],
        state: busy >= BUSY ? 'busy' : r > 0 ? 'ok' : 'idle',
      });
    } else if (ops.has(n.id)) {
      const o = ops.get(n.id);
      const o0 = ops0.get(n.id) || { rows_in: 0, rows_out: 0, busy_ms: 0 };
      const busy = (o.busy_ms - o0.busy_ms) / dt / Math.max(1, live.workers);
      const r = rate(o.rows_in, o0.rows_in);
      const stateful = /window|aggregate|top|over/i.test(o.name);
      const extra = stateful ? ` · state ${fmt(live.open_windows)} windows, ${bytes(live.state_bytes)} · late ${fmt(now.late)}` : '';
      out.set(n.id, {
        lines: [`in ${fmt(o.rows_in)} · out ${fmt(o.rows_out)} · ${fmt(r)}/s`, `busy ${pct(busy)}${extra}`],
        state: busy >= BUSY ? 'busy' : r > 0 ? 'ok' : 'idle',
      });
    } else if (n.kind === 'Watermark') {
      // generated in the source stage, as each batch is read
      const ahead = live.event_time_max !== null && now.watermark !== null ? ` · ${((live.event_time_max - now.watermark) / 1000).toFixed(1)} s behind the latest event` : '';
      out.set(n.id, { lines: [`watermark ${time(now.watermark)}`, ahead.slice(3)], state: now.watermark !== null ? 'ok' : 'idle' });
    } else if (n.kind === 'Exchange') {
      out.set(n.id, { lines: [`routes rows by key to ${live.workers} worker${live.workers === 1 ? '' : 's'}`, ''], state: 'idle' });
    } else {
      out.set(n.id, { lines: ['', ''], state: 'idle' });
    }
  }
  return out;
}

const UNITS = { MILLISECOND: 1, SECOND: 1000, MINUTE: 60000, HOUR: 3600000, DAY: 86400000 };

// "10 SECOND" → 10000.
export function intervalMs(text) {
  const m = String(text || '').trim().match(/^(\d+(?:\.\d+)?)\s*([A-Z]+?)S?$/i);
  return m && UNITS[m[2].toUpperCase()] ? Number(m[1]) * UNITS[m[2].toUpperCase()] : null;
}

// The window of a plan: {kind, size, slide, gap} in ms, or null.
export function windowOf(graph) {
  for (const n of graph.nodes) {
    const p = n.params || {};
    if (p.gap) return { kind: 'session', gap: intervalMs(p.gap) };
    if (p.size && /window/i.test(n.kind)) {
      const size = intervalMs(p.size);
      return { kind: p.slide ? 'hop' : 'tumble', size, slide: intervalMs(p.slide) || size };
    }
  }
  return null;
}

// The event-time strip: a time axis around the watermark with the windows,
// the watermark, the latest event time and the late rows.
export class EventTimeStrip {
  constructor(graph) {
    this.window = windowOf(graph);
    this.late = [];
    this.lastLate = null;
    this.caption = el('div', { class: 'small', id: 'strip-caption' }, 'waiting for the first event…');
    this.box = el('div', { class: 'strip', id: 'strip' });
    this.root = el('div', {}, this.box, this.caption);
  }

  update(p) {
    const wm = p.watermark;
    const latest = p.live && p.live.event_time_max;
    if (this.lastLate !== null && p.late > this.lastLate && wm !== null) this.late.push({ at: wm, n: p.late - this.lastLate });
    this.lastLate = p.late;
    this.late = this.late.slice(-50);
    if (wm === null || wm === undefined || latest === null || latest === undefined) return;
    const w = this.window;
    const span = w ? (w.kind === 'session' ? 4 * w.gap : 2 * w.size) : 10000;
    const lo = wm - span * 0.75;
    const hi = Math.max(latest, wm) + span * 0.5;
    const W = 900, H = 74, X0 = 10, X1 = W - 10;
    const x = (t) => X0 + ((t - lo) / (hi - lo)) * (X1 - X0);
    const s = svg('svg', { viewBox: `0 0 ${W} ${H}`, role: 'img', 'aria-label': 'event time' });
    let open = p.live.open_windows;
    if (w && w.kind !== 'session' && w.size > 0 && w.slide > 0) {
      const lanes = Math.min(4, Math.ceil(w.size / w.slide));
      let count = 0;
      for (let start = Math.floor((lo - w.size) / w.slide) * w.slide; start < hi && count < 400; start += w.slide, count++) {
        const end = start + w.size;
        if (end < lo) continue;
        const lane = Math.round(start / w.slide) % lanes;
        const isOpen = end > wm && start <= latest;
        const a = Math.max(X0, x(start)), b = Math.min(X1, x(end));
        s.append(svg('rect', { class: `win${isOpen ? ' open' : ''}`, x: a, y: 8 + lane * (30 / lanes), width: Math.max(1, b - a - 1), height: 30 / lanes - 2 }));
      }
    } else if (w && w.kind === 'session') {
      s.append(svg('rect', { class: 'win open', x: x(wm), y: 8, width: Math.max(1, x(latest) - x(wm)), height: 28 }));
    }
    s.append(svg('line', { class: 'axis', x1: X0, x2: X1, y1: 44, y2: 44 }));
    s.append(svg('line', { class: 'wm', x1: x(wm), x2: x(wm), y1: 2, y2: 50 }));
    s.append(svg('line', { class: 'latest', x1: x(latest), x2: x(latest), y1: 2, y2: 50 }));
    for (const l of this.late) s.append(svg('circle', { class: 'late', cx: x(l.at) - 4, cy: 44, r: Math.min(6, 2 + Math.log2(1 + l.n)) }));
    s.append(svg('text', { x: X0, y: 66 }, time(lo)));
    s.append(svg('text', { x: X1, y: 66, 'text-anchor': 'end' }, time(hi)));
    s.append(svg('text', { x: Math.min(X1 - 120, x(wm) + 4), y: 60, class: 'wm-label' }, 'watermark'));
    this.box.replaceChildren(s);
    const ahead = ((latest - wm) / 1000).toFixed(1);
    const kind = w ? (w.kind === 'session' ? `session gap ${w.gap / 1000} s` : `${w.kind} ${w.size / 1000} s${w.kind === 'hop' ? ` every ${w.slide / 1000} s` : ''}`) : 'no window';
    this.caption.textContent = `watermark ${time(wm)} · latest event ${time(latest)} (${ahead} s ahead) · ${fmt(open)} open windows (${kind}) · late rows: ${fmt(p.late)} dropped, ${fmt(p.live.late_accepted)} accepted`;
  }
}

// EMIT CHANGES: the changes as they arrive (+ and −) and the result they
// build (an update's −U removes the old row, its +U adds the new one).
export class Changelog {
  constructor() {
    this.rows = new Map();
    this.columns = null;
    this.changes = el('tbody');
    this.current = el('tbody');
    this.head = el('thead');
    this.changeHead = el('thead');
    this.count = el('span', { class: 'muted' });
    this.root = el('div', { class: 'row changes' },
      el('div', { class: 'grow' }, el('h4', {}, 'Result, changes applied ', this.count), el('div', { class: 'results' }, el('table', { id: 'applied' }, this.head, this.current))),
      el('div', { class: 'grow' }, el('h4', {}, 'Changelog (newest first)'), el('div', { class: 'results' }, el('table', { id: 'changelog' }, this.changeHead, this.changes))));
  }

  apply(rows) {
    if (!rows.length) return;
    if (!this.columns) {
      this.columns = Object.keys(rows[0]).filter((c) => c !== '_op');
      this.head.replaceChildren(el('tr', {}, ...this.columns.map((c) => el('th', {}, c))));
      this.changeHead.replaceChildren(el('tr', {}, el('th', {}, ''), ...this.columns.map((c) => el('th', {}, c))));
    }
    const cell = (v) => (v === null ? 'NULL' : String(v));
    for (const r of rows) {
      const key = JSON.stringify(this.columns.map((c) => r[c]));
      const minus = r._op === '-U' || r._op === '-D';
      const n = this.rows.get(key) || 0;
      if (minus) {
        if (n <= 1) this.rows.delete(key);
        else this.rows.set(key, n - 1);
      } else {
        this.rows.set(key, n + 1);
      }
      this.changes.prepend(el('tr', { class: minus ? 'minus' : 'plus' }, el('td', { class: 'sign' }, minus ? '−' : '+'), ...this.columns.map((c) => el('td', {}, cell(r[c])))));
    }
    while (this.changes.children.length > 300) this.changes.lastChild.remove();
    const shown = [...this.rows.keys()].slice(-300);
    this.current.replaceChildren(...shown.map((k) => el('tr', {}, ...JSON.parse(k).map((v) => el('td', {}, cell(v))))));
    this.count.textContent = `(${fmt(this.rows.size)} rows)`;
  }
}
