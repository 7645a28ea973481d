// WebAssembly modules: upload (drop or pick a .wasm), their functions with
// kind and signature, delete, and a try-it pane calling one function on
// values typed in (with the call's time and memory against the limits).

import { api, el, errorBox, curl, fmt } from '../api.js';

export async function udfsPage(root) {
  const list = el('div', { id: 'modules' });
  const message = el('div', { id: 'upload-result' });
  const cmd = el('pre', { class: 'cmd' }, curl('GET', '/api/udfs'));
  const render = async () => {
    const modules = await api.udfs();
    list.replaceChildren(...modules.map((m) => el('div', { class: 'panel module' },
      el('h3', {}, m.name, ' ', el('span', { class: 'badge' }, `${m.size.toLocaleString('en')} bytes`), ' ',
        el('button', { class: 'plain', onclick: async () => {
          cmd.textContent = `${curl('DELETE', `/api/udfs/${encodeURIComponent(m.name)}`)}\n# or, for the CLI's registry: eddy udf remove ${m.name}`;
          await api.removeUdf(m.name);
          await render();
        } }, 'Delete')),
      el('div', { class: 'muted' }, `sha256 ${m.sha256}, ABI v${m.abi_version}`),
      el('table', {}, el('tbody', {}, ...m.functions.map((f) => el('tr', { class: 'function' },
        el('td', {}, el('code', {}, f.signature)),
        el('td', {}, f.kind + (f.kind === 'aggregate' ? `, retract: ${f.retract === true ? 'yes' : f.retract === false ? 'no' : '?'}` : '')),
        el('td', {}, el('button', { class: 'plain', 'data-try': `${m.name}.${f.name}`, onclick: () => tryPane.open(m, f) }, 'Try')))))))));
    if (!modules.length) list.append(el('p', { class: 'muted' }, 'No modules yet.'));
  };
  const upload = async (file) => {
    const name = file.name.replace(/\.wasm$/, '').replace(/[^A-Za-z0-9_-]/g, '_');
    cmd.textContent = `curl -s -H "Authorization: Bearer $T" -H 'Content-Type: application/wasm' --data-binary @${file.name} ${location.origin}/api/udfs/${name}\n# or, for the CLI's registry: eddy udf register ${file.name}`;
    try {
      const m = await api.upload(name, await file.arrayBuffer());
      message.replaceChildren(el('span', { class: 'ok' }, `registered ${m.name}: ${m.functions.map((f) => f.signature).join(', ')}`));
      await render();
    } catch (e) {
      message.replaceChildren(errorBox(e));
    }
  };
  const picker = el('input', { type: 'file', accept: '.wasm', id: 'wasm-file', onchange: () => picker.files[0] && upload(picker.files[0]) });
  const drop = el('div', { class: 'drop', id: 'drop' }, 'Drop a .wasm built with the eddy-udf SDK here, or ', picker);
  drop.addEventListener('dragover', (e) => { e.preventDefault(); drop.classList.add('over'); });
  drop.addEventListener('dragleave', () => drop.classList.remove('over'));
  drop.addEventListener('drop', (e) => {
    e.preventDefault();
    drop.classList.remove('over');
    if (e.dataTransfer.files[0]) upload(e.dataTransfer.files[0]);
  });
  const tryPane = new TryPane(cmd);
  root.append(el('div', { class: 'panel' }, el('h2', {}, 'UDF modules'), drop, message, cmd), tryPane.root, list);
  await render();
  return null;
}

// Parses the rows typed in: one row per line, values separated by commas
// (numbers, true/false, null, or text; 'quoted' or "quoted" text may hold
// commas), or a JSON array per line.
export function parseRows(text) {
  return text.split('\n').map((l) => l.trim()).filter((l) => l).map((line) => {
    if (line.startsWith('[')) return JSON.parse(line);
    const out = [];
    const re = /\s*('(?:[^']|'')*'|"(?:[^"]|"")*"|[^,]*)\s*(?:,|$)/g;
    let m;
    while ((m = re.exec(line)) && m[0] !== '') {
      const v = m[1].trim();
      if (/^'.*'$/s.test(v)) out.push(v.slice(1, -1).replace(/''/g, "'"));
      else if (/^".*"$/s.test(v)) out.push(v.slice(1, -1).replace(/""/g, '"'));
      else if (/^(null|NULL)$/.test(v)) out.push(null);
      else if (/^(true|false)$/i.test(v)) out.push(v.toLowerCase() === 'true');
      else if (v !== '' && !Number.isNaN(Number(v))) out.push(Number(v));
      else out.push(v);
      if (re.lastIndex >= line.length) break;
    }
    return out;
  });
}

const EXAMPLES = { BIGINT: '7', DOUBLE: '2.5', BOOLEAN: 'true', VARCHAR: "'text'" };

// Calls one function on rows typed by the user.
class TryPane {
  constructor(cmd) {
    this.cmd = cmd;
    this.title = el('h3', {}, 'Try a function');
    this.hint = el('div', { class: 'muted small' });
    this.input = el('textarea', { id: 'try-rows', spellcheck: 'false' });
    this.result = el('div', { id: 'try-result' });
    this.button = el('button', { id: 'try-call', onclick: () => this.call() }, 'Call');
    this.root = el('div', { class: 'panel try', id: 'try', hidden: true }, this.title, this.hint, this.input, el('p', {}, this.button), this.result);
  }

  open(m, f) {
    this.module = m;
    this.fn = f;
    this.title.textContent = `Try ${f.signature} (${f.kind}, module ${m.name})`;
    const row = f.args.map((t) => EXAMPLES[t] || '1').join(', ');
    this.hint.textContent = f.kind === 'aggregate'
      ? 'One row of arguments per line; the aggregate runs over all of them as one group.'
      : 'One row of arguments per line; the function is called once over all rows, as in a query batch.';
    this.input.value = f.kind === 'aggregate' ? [1, 2, 3, 4, 10].map((v) => f.args.map((t) => (t === 'DOUBLE' || t === 'BIGINT' ? v : EXAMPLES[t])).join(', ')).join('\n') : row;
    this.result.replaceChildren();
    this.root.hidden = false;
    this.root.scrollIntoView({ block: 'nearest' });
  }

  async call() {
    let rows;
    try {
      rows = parseRows(this.input.value);
    } catch (e) {
      this.result.replaceChildren(el('div', { class: 'error' }, `a line is not valid JSON: ${e.message}`));
      return;
    }
    const path = `/api/udfs/${encodeURIComponent(this.module.name)}/${encodeURIComponent(this.fn.name)}/try`;
    this.cmd.textContent = curl('POST', path, { rows });
    try {
      const r = await api.tryUdf(this.module.name, this.fn.name, rows);
      const mib = (b) => `${(b / (1 << 20)).toFixed(1)} MiB`;
      const shown = this.fn.kind === 'aggregate' ? [[`all ${rows.length} rows`, r.results[0]]] : rows.map((row, i) => [row.map((v) => JSON.stringify(v)).join(', '), r.results[i]]);
      this.result.replaceChildren(
        el('table', {}, el('thead', {}, el('tr', {}, el('th', {}, 'arguments'), el('th', {}, this.fn.returns))),
          el('tbody', {}, ...shown.map(([a, v]) => el('tr', {}, el('td', {}, el('code', {}, a)), el('td', { class: 'try-value' }, v === null ? 'NULL' : String(v)))))),
        el('p', { class: 'muted', id: 'try-cost' }, `call took ${fmt(r.elapsed_us)} µs of its ${fmt(r.time_limit_ms)} ms limit; memory ${mib(r.memory_bytes)} of ${mib(r.memory_limit_bytes)}`));
    } catch (e) {
      this.result.replaceChildren(errorBox(e));
    }
  }
}
