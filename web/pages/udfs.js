// WebAssembly modules: upload (drop or pick a .wasm), their functions with
// kind and signature, delete.

import { api, el, errorBox, curl } from '../api.js';

export async function udfsPage(root) {
  const list = el('div', { id: 'modules' });
  const message = el('div', { id: 'upload-result' });
  const cmd = el('pre', { class: 'cmd' }, curl('GET', '/api/udfs'));
  const render = async () => {
    const modules = await api.udfs();
    list.replaceChildren(...modules.map((m) => el('div', { class: 'panel module' },
      el('h3', {}, m.name, ' ', el('span', { class: 'badge' }, `${m.size.toLocaleString('en')} bytes`), ' ',
        el('button', { class: 'plain', onclick: async () => {
          cmd.textContent = curl('DELETE', `/api/udfs/${encodeURIComponent(m.name)}`);
          await api.removeUdf(m.name);
          await render();
        } }, 'Delete')),
      el('div', { class: 'muted' }, `sha256 ${m.sha256}, ABI v${m.abi_version}`),
      el('table', {}, el('tbody', {}, ...m.functions.map((f) => el('tr', {}, el('td', {}, el('code', {}, f.signature)), el('td', {}, f.kind))))))));
    if (!modules.length) list.append(el('p', { class: 'muted' }, 'No modules yet.'));
  };
  const upload = async (file) => {
    const name = file.name.replace(/\.wasm$/, '').replace(/[^A-Za-z0-9_-]/g, '_');
    cmd.textContent = `curl -s -H "Authorization: Bearer $T" -H 'Content-Type: application/wasm' --data-binary @${file.name} ${location.origin}/api/udfs/${name}`;
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
  root.append(el('div', { class: 'panel' }, el('h2', {}, 'UDF modules'), drop, message, cmd), list);
  await render();
  return null;
}
