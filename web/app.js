// Eddy's web UI: a small router over the pages in pages/.

import { api, el } from './api.js';
import { queriesPage } from './pages/queries.js';
import { newQueryPage } from './pages/new.js';
import { queryPage } from './pages/query.js';
import { udfsPage } from './pages/udfs.js';

let leave = null;

async function route() {
  if (leave) leave();
  leave = null;
  const [, page, arg] = (location.hash || '#/queries').split('/');
  document.querySelectorAll('nav a').forEach((a) => a.classList.toggle('active', a.dataset.nav === page));
  const root = document.getElementById('page');
  root.replaceChildren();
  try {
    if (page === 'new') leave = await newQueryPage(root);
    else if (page === 'query' && arg) leave = await queryPage(root, decodeURIComponent(arg));
    else if (page === 'udfs') leave = await udfsPage(root);
    else leave = await queriesPage(root);
  } catch (e) {
    if (e.status === 401) {
      root.replaceChildren(el('div', { class: 'panel error' }, 'Not logged in: open the login URL that eddy serve printed at start.'));
    } else {
      root.replaceChildren(el('div', { class: 'panel error' }, e.message));
    }
  }
}

async function health() {
  try {
    const h = await api.health();
    document.getElementById('health').textContent = `server ${h.status}, ${h.queries} queries`;
  } catch {
    document.getElementById('health').textContent = 'server unreachable';
  }
}

window.addEventListener('hashchange', route);
route();
health();
setInterval(health, 5000);
