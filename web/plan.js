// Draws a plan graph ({nodes: [{id, kind, params}], edges: [{from, to}]})
// as SVG: a layered DAG, sources at the top. Eddy's plans are chains today;
// the layering (longest path from a source) also places joins' branches.

import { el } from './api.js';

const NS = 'http://www.w3.org/2000/svg';
const W = 360, LINE = 16, PAD = 8, GAP = 28;

function svg(tag, attrs, ...children) {
  const e = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  for (const c of children) e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return e;
}

function shorten(s, n) {
  return s.length > n ? s.slice(0, n - 1) + '…' : s;
}

// Marks WebAssembly calls (the server lists them in `wasm`; EXPLAIN writes
// them `wasm:name(...)`).
function isWasm(node) {
  return !!node.wasm || Object.values(node.params || {}).some((v) => String(v).includes('wasm:'));
}

// Draws the graph. With `live`, each node keeps two lines for its live
// numbers; the returned element's `update(stats)` fills them
// (stats: Map id → {lines: [..], state: 'busy'|'backpressured'|'idle'|'ok'}).
export function drawPlan(graph, live) {
  const nodes = graph.nodes;
  const layer = new Map(nodes.map((n) => [n.id, 0]));
  for (let pass = 0; pass < nodes.length; pass++) {
    for (const e of graph.edges) layer.set(e.to, Math.max(layer.get(e.to), layer.get(e.from) + 1));
  }
  const layers = [];
  for (const n of nodes) (layers[layer.get(n.id)] ||= []).push(n);
  const boxes = new Map();
  const LIVE_LINES = live ? 2 : 0;
  let y = PAD;
  for (const row of layers) {
    let h = 0;
    row.forEach((n, i) => {
      const lines = [n.kind, ...Object.entries(n.params || {}).map(([k, v]) => `${k}: ${v}`),
        ...(n.wasm || []).map((c) => `wasm ${c.function}: module ${c.module}, sha256 ${c.sha256.slice(0, 12)}…`)];
      const height = (lines.length + LIVE_LINES) * LINE + 2 * PAD;
      boxes.set(n.id, { x: PAD + i * (W + PAD), y, w: W, h: height, lines, wasm: isWasm(n) });
      h = Math.max(h, height);
    });
    y += h + GAP;
  }
  const width = Math.max(...layers.map((r) => r.length)) * (W + PAD) + PAD;
  // drawn at its natural size, shrunk (never stretched) to fit its panel
  const root = svg('svg', { viewBox: `0 0 ${width} ${y}`, width, height: y, role: 'img', 'aria-label': 'query plan' });
  root.append(svg('defs', {}, svg('marker', { id: 'arrow', viewBox: '0 0 10 10', refX: 9, refY: 5, markerWidth: 6, markerHeight: 6, orient: 'auto-start-reverse' }, svg('path', { d: 'M 0 0 L 10 5 L 0 10 z', fill: '#8a93a6' }))));
  for (const e of graph.edges) {
    const a = boxes.get(e.from), b = boxes.get(e.to);
    root.append(svg('path', { class: 'edge', d: `M ${a.x + a.w / 2} ${a.y + a.h} L ${b.x + b.w / 2} ${b.y - 2}` }));
  }
  const liveText = new Map();
  const groups = new Map();
  for (const n of nodes) {
    const b = boxes.get(n.id);
    const g = svg('g', { class: 'node' + (b.wasm ? ' wasm' : ''), 'data-kind': n.kind, 'data-id': n.id, transform: `translate(${b.x},${b.y})` });
    g.append(svg('rect', { width: b.w, height: b.h }));
    // a shortened line keeps its whole text as a tooltip
    b.lines.forEach((t, i) => g.append(svg('text', { x: PAD, y: PAD + (i + 0.8) * LINE, class: i === 0 ? 'kind' : '' }, shorten(t, 52), ...(t.length > 52 ? [svg('title', {}, t)] : []))));
    if (b.wasm) g.append(svg('text', { x: b.w - PAD, y: PAD + 0.8 * LINE, 'text-anchor': 'end', class: 'wasm-badge' }, 'WASM'));
    if (live) {
      const texts = [0, 1].map((k) => svg('text', { x: PAD, y: PAD + (b.lines.length + k + 0.8) * LINE, class: 'live' }, ''));
      g.append(...texts);
      liveText.set(n.id, texts);
    }
    groups.set(n.id, g);
    root.append(g);
  }
  const out = el('div', { class: 'plan' }, root);
  out.update = (stats) => {
    for (const [id, s] of stats) {
      const texts = liveText.get(id);
      if (!texts) continue;
      texts.forEach((t, k) => { t.textContent = shorten(s.lines[k] || '', 56); });
      const g = groups.get(id);
      for (const st of ['busy', 'backpressured', 'idle', 'ok']) g.classList.toggle(`state-${st}`, s.state === st);
    }
  };
  return out;
}
