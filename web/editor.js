// The SQL editor: a plain textarea (it keeps the browser's own editing,
// undo and accessibility) over a highlighted copy of its text, with
// completion of streams, columns, functions and keywords, and the check's
// error marked at its line and column. Written for Eddy's needs instead of
// vendoring an editor framework: no build step, nothing inline (the CSP
// allows only this server's scripts), about 250 lines.

import { el } from './api.js';

const KEYWORDS = [
  'SELECT', 'FROM', 'WHERE', 'GROUP', 'BY', 'HAVING', 'ORDER', 'LIMIT', 'AS', 'AND', 'OR', 'NOT', 'IN', 'IS',
  'NULL', 'TRUE', 'FALSE', 'CASE', 'WHEN', 'THEN', 'ELSE', 'END', 'CAST', 'INTERVAL', 'SECOND', 'SECONDS',
  'MINUTE', 'HOUR', 'DAY', 'MILLISECOND', 'CREATE', 'STREAM', 'WITH', 'WATERMARK', 'FOR', 'INSERT', 'INTO',
  'EXPLAIN', 'EMIT', 'FINAL', 'CHANGES', 'TUMBLE', 'HOP', 'SESSION', 'SLIDING', 'OVER', 'PARTITION', 'ROWS',
  'BETWEEN', 'PRECEDING', 'CURRENT', 'ROW', 'DISTINCT', 'DESCRIPTOR', 'TABLE', 'BIGINT', 'INT', 'DOUBLE',
  'VARCHAR', 'BOOLEAN', 'TIMESTAMP', 'LIKE', 'ASC', 'DESC', 'UNION', 'ALL',
];
const KEYWORD_SET = new Set(KEYWORDS);
const MAX_SHOWN = 12;

function escape(s) {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

// Splits SQL into tokens: [kind, text].
export function tokenize(text) {
  const out = [];
  const re = /(--[^\n]*)|('(?:[^']|'')*'?)|("(?:[^"]|"")*"?)|(\d+(?:\.\d+)?)|([A-Za-z_][A-Za-z0-9_]*)|(\s+)|(.)/gs;
  let m;
  while ((m = re.exec(text))) {
    if (m[1]) out.push(['comment', m[1]]);
    else if (m[2]) out.push(['string', m[2]]);
    else if (m[3]) out.push(['ident', m[3]]);
    else if (m[4]) out.push(['number', m[4]]);
    else if (m[5]) {
      const next = text.slice(re.lastIndex).match(/^\s*\(/);
      out.push([KEYWORD_SET.has(m[5].toUpperCase()) ? 'kw' : next ? 'fn' : 'ident', m[5]]);
    } else out.push(['plain', m[0]]);
  }
  return out;
}

// The character offset of a 1-based line and column.
export function offsetOf(text, line, column) {
  const lines = text.split('\n');
  let at = 0;
  for (let i = 0; i < line - 1 && i < lines.length; i++) at += lines[i].length + 1;
  return Math.min(text.length, at + Math.max(0, column - 1));
}

export class SqlEditor {
  constructor(value) {
    this.input = el('textarea', { class: 'editor-input', id: 'sql', spellcheck: 'false', autocomplete: 'off', 'aria-label': 'SQL' });
    this.input.value = value;
    this.layer = el('pre', { class: 'editor-layer', 'aria-hidden': 'true' });
    this.menu = el('ul', { class: 'completions', id: 'completions', role: 'listbox', hidden: true });
    this.root = el('div', { class: 'editor' }, this.layer, this.input, this.menu);
    this.error = null;
    this.streams = [];
    this.functions = [];
    this.items = [];
    this.chosen = 0;
    this.input.addEventListener('input', (e) => {
      this.error = null;
      this.render();
      // complete while a word is typed, not on deletions or pastes
      if (e.inputType === 'insertText' && /[A-Za-z0-9_.]/.test(e.data || '')) this.complete(false);
      else this.close();
    });
    this.input.addEventListener('scroll', () => this.sync());
    this.input.addEventListener('keydown', (e) => this.key(e));
    this.input.addEventListener('blur', () => setTimeout(() => this.close(), 150));
    this.render();
  }

  get value() {
    return this.input.value;
  }

  // What completion offers besides keywords: [{name, columns: [{name, type}]}]
  // and [{name, kind, signature?, module?}].
  setStreams(streams) {
    this.streams = streams || [];
  }

  setFunctions(functions) {
    this.functions = functions || [];
  }

  // Marks an error ({line, column, message}) or clears the mark (null).
  mark(error) {
    this.error = error;
    this.render();
  }

  // Draws the text with its tokens coloured, the error underlined and (for
  // placing the menu) a marker at the caret.
  render(caret) {
    const text = this.input.value;
    let errAt = -1, errEnd = -1;
    if (this.error && this.error.line) {
      errAt = offsetOf(text, this.error.line, this.error.column);
      const word = text.slice(errAt).match(/^[A-Za-z0-9_]+|^./s);
      errEnd = errAt + (word ? word[0].length : 1);
    }
    let html = '';
    let pos = 0;
    const cut = (kind, s) => {
      // splits a token at the error mark and the caret
      let i = 0;
      while (i < s.length) {
        const here = pos + i;
        let stop = s.length;
        for (const b of [errAt, errEnd, caret]) if (b !== undefined && b > here && b < pos + s.length) stop = Math.min(stop, b - pos);
        const part = s.slice(i, stop);
        if (caret === here) html += '<span class="caret-mark"></span>';
        const inErr = here >= errAt && here < errEnd;
        const cls = `t-${kind}${inErr ? ' err' : ''}`;
        html += `<span class="${cls}"${inErr ? ` title="${escape(this.error.message).replace(/"/g, '&quot;')}"` : ''}>${escape(part)}</span>`;
        i = stop;
      }
      pos += s.length;
    };
    for (const [kind, s] of tokenize(text)) cut(kind, s);
    if (caret === text.length) html += '<span class="caret-mark"></span>';
    if (errAt >= text.length && this.error) html += `<span class="err eof" title="${escape(this.error.message)}"> </span>`;
    // a trailing newline needs a character after it to take up its line
    this.layer.innerHTML = html + '\n';
    this.sync();
  }

  sync() {
    this.layer.scrollTop = this.input.scrollTop;
    this.layer.scrollLeft = this.input.scrollLeft;
  }

  // The candidates for the word before the caret.
  candidates(word, qualifier) {
    const w = word.toLowerCase();
    const seen = new Set();
    const out = [];
    const add = (name, kind, detail) => {
      const key = `${kind}:${name.toLowerCase()}`;
      if (seen.has(key) || !name.toLowerCase().startsWith(w)) return;
      seen.add(key);
      out.push({ name, kind, detail });
    };
    if (qualifier) {
      const s = this.streams.find((x) => x.name.toLowerCase() === qualifier.toLowerCase());
      for (const c of (s ? s.columns : this.streams.flatMap((x) => x.columns))) add(c.name, 'column', c.type);
      return out;
    }
    for (const s of this.streams) for (const c of s.columns) add(c.name, 'column', `${c.type} · ${s.name}`);
    for (const f of this.functions) add(f.name, 'function', f.signature ? `${f.signature} · ${f.kind}${f.module ? ` · wasm ${f.module}` : ''}` : f.kind);
    for (const s of this.streams) add(s.name, 'stream', s.connector);
    for (const k of KEYWORDS) add(k, 'keyword', '');
    return out.filter((c) => c.name.toLowerCase() !== w || c.kind === 'function');
  }

  // Opens the menu for the word before the caret (`force`: even for an empty word).
  complete(force) {
    const at = this.input.selectionStart;
    const before = this.input.value.slice(0, at);
    const m = before.match(/(?:([A-Za-z_][A-Za-z0-9_]*)\.)?([A-Za-z_][A-Za-z0-9_]*)?$/);
    const word = (m && m[2]) || '';
    const qualifier = m && m[1];
    if (!word && !qualifier && !force) return this.close();
    this.items = this.candidates(word, qualifier).slice(0, MAX_SHOWN);
    this.word = { start: at - word.length, end: at };
    if (!this.items.length) return this.close();
    this.chosen = 0;
    this.render(at);
    const mark = this.layer.querySelector('.caret-mark');
    this.menu.replaceChildren(...this.items.map((c, i) => el('li', {
      role: 'option', class: `kind-${c.kind}`, 'data-name': c.name,
      onmousedown: (e) => { e.preventDefault(); this.chosen = i; this.accept(); },
    }, el('span', { class: 'name' }, c.name), el('span', { class: 'detail' }, c.detail || c.kind))));
    this.menu.hidden = false;
    this.highlight();
    if (mark) {
      const lineHeight = parseFloat(getComputedStyle(this.input).lineHeight) || 18;
      this.menu.style.left = `${Math.min(mark.offsetLeft, this.root.clientWidth - 260)}px`;
      this.menu.style.top = `${mark.offsetTop - this.input.scrollTop + lineHeight + 4}px`;
    }
  }

  highlight() {
    [...this.menu.children].forEach((li, i) => li.classList.toggle('chosen', i === this.chosen));
  }

  close() {
    if (!this.menu.hidden) this.menu.hidden = true;
    this.items = [];
  }

  accept() {
    const c = this.items[this.chosen];
    if (!c) return;
    const after = this.input.value.slice(this.word.end);
    const call = c.kind === 'function' && !after.startsWith('(');
    this.input.setRangeText(c.name + (call ? '(' : ''), this.word.start, this.word.end, 'end');
    this.close();
    this.input.dispatchEvent(new Event('input'));
    this.input.focus();
  }

  key(e) {
    if (e.key === ' ' && e.ctrlKey) {
      e.preventDefault();
      return this.complete(true);
    }
    if (this.menu.hidden) return;
    if (e.key === 'ArrowDown' || e.key === 'ArrowUp') {
      e.preventDefault();
      const n = this.items.length;
      this.chosen = (this.chosen + (e.key === 'ArrowDown' ? 1 : n - 1)) % n;
      this.highlight();
    } else if (e.key === 'Enter' || e.key === 'Tab') {
      e.preventDefault();
      this.accept();
    } else if (e.key === 'Escape') {
      e.preventDefault();
      this.close();
    }
  }
}
