// Bulk generation (many unique codes sharing one definition) and VIP codes
// (one code per top customer, bound to them).
import { api, ApiError } from '../api.js';
import { h, clear, uid, status, downloadBlob } from '../dom.js';
import { toInteger, UnitError } from '../units.js';
import { codeFields } from './code-form.js';

function numField(label, value, hint) {
  const id = uid('n');
  const input = h('input', { id, type: 'text', inputmode: 'numeric', value });
  const err = h('span', { class: 'ferr', hidden: true });
  return { input, err, row: h('div', { class: 'field' }, h('label', { for: id }, label), input, hint ? h('span', { class: 'hint' }, hint) : null, err) };
}
function textField(label, value, hint) {
  const id = uid('t');
  const input = h('input', { id, type: 'text', value, style: 'text-transform:uppercase' });
  const err = h('span', { class: 'ferr', hidden: true });
  return { input, err, row: h('div', { class: 'field' }, h('label', { for: id }, label), input, hint ? h('span', { class: 'hint' }, hint) : null, err) };
}

function generator(root, { kind, title, intro, own, submitLabel, call, show }) {
  const form = h('form', { class: 'card', novalidate: true, 'aria-label': title });
  const result = h('div', { role: 'status', 'aria-live': 'polite' });
  const submit = h('button', { class: 'primary', type: 'submit' }, submitLabel);
  form.append(h('h2', {}, title), h('p', { class: 'muted' }, intro),
    h('div', { class: 'grid' }, Object.values(own).map((x) => x.row)));
  const tplBox = h('div', {});
  form.append(h('h3', {}, 'Definition shared by every generated code'), tplBox);
  const tpl = codeFields(tplBox, { template: true, vip: kind === 'vip' });
  form.append(h('div', { class: 'actions' }, submit), result);
  root.append(form);

  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    status(result, '');
    for (const x of Object.values(own)) { x.err.hidden = true; x.input.removeAttribute('aria-invalid'); }
    const errs = [];
    const body = {};
    for (const [name, x] of Object.entries(own)) {
      if (x.input.inputMode === 'numeric') {
        try {
          body[name] = toInteger(x.input.value);
        } catch (err) {
          if (!(err instanceof UnitError)) throw err;
          errs.push([x, err.message]);
        }
      } else {
        body[name] = x.input.value.trim().toUpperCase();
      }
    }
    let template;
    try {
      template = tpl.collect();
    } catch (err) {
      if (!err.fields) throw err;
      tpl.showErrors(err.fields);
    }
    for (const [x, m] of errs) { x.err.textContent = m; x.err.hidden = false; x.input.setAttribute('aria-invalid', 'true'); }
    if (errs.length || !template) return;
    tpl.clearErrors();
    body.template = template;
    submit.disabled = true;
    status(result, 'Generating…', 'info');
    try {
      const r = await call(body);
      clear(result);
      result.className = 'notice ok';
      show(result, r);
    } catch (err) {
      status(result, '');
      if (err instanceof ApiError && err.status === 422) {
        const mine = [];
        for (const fe of err.fields) {
          if (own[fe.field]) {
            own[fe.field].err.textContent = fe.message;
            own[fe.field].err.hidden = false;
            own[fe.field].input.setAttribute('aria-invalid', 'true');
          } else mine.push(fe);
        }
        tpl.showErrors(mine, mine.length ? err.message : '', true);
      } else {
        status(result, err.message, 'error');
      }
    } finally {
      submit.disabled = false;
    }
  });
}

function csvDownload(name, header, rows) {
  const esc = (v) => (/[",\n]/.test(String(v)) ? `"${String(v).replace(/"/g, '""')}"` : String(v));
  const text = [header, ...rows].map((r) => r.map(esc).join(',')).join('\r\n') + '\r\n';
  downloadBlob(new Blob([text], { type: 'text/csv' }), name);
}

export function generateView(root) {
  root.append(h('h1', {}, 'Bulk and VIP codes'));
  const bulkOwn = {
    prefix: textField('Prefix', 'XMAS-', 'Letters, digits, - and _'),
    length: numField('Random part length', '10', 'Characters after the prefix (no 0/O/1/I/L)'),
    count: numField('Number of codes', '1000', 'Up to 100,000 at once'),
  };
  generator(root, {
    kind: 'bulk', title: 'Bulk codes', own: bulkOwn, submitLabel: 'Generate codes',
    intro: 'Many unique single codes with the same definition, e.g. for a mailing. Each code gets its own random part.',
    call: (body) => api.bulk(body),
    show: (el, r) => {
      const codes = r.codes || [];
      el.append(h('p', {}, `${r.count ?? codes.length} codes generated.`),
        h('p', {}, h('button', { type: 'button', onclick: () => csvDownload('codes.csv', ['code'], codes.map((c) => [c])) }, 'Download as CSV')),
        h('p', { class: 'mono' }, codes.slice(0, 20).join(' '), codes.length > 20 ? ' …' : ''));
    },
  });
  const vipOwn = {
    top: numField('Top customers', '50', 'Scored on recency, frequency, spend and engagement'),
    prefix: textField('Prefix', 'VIP-'),
    length: numField('Random part length', '8'),
  };
  generator(root, {
    kind: 'vip', title: 'VIP codes', own: vipOwn, submitLabel: 'Generate VIP codes',
    intro: 'One code per top customer, bound to that customer (nobody else can use it).',
    call: (body) => api.vip(body),
    show: (el, r) => {
      const codes = r.codes || [];
      el.append(h('p', {}, `${codes.length} VIP codes generated.`),
        h('p', {}, h('button', { type: 'button', onclick: () => csvDownload('vip-codes.csv', ['code', 'customer_id', 'score'], codes.map((c) => [c.code, c.customer_id, c.score])) }, 'Download as CSV')),
        h('table', { 'aria-label': 'VIP codes' }, h('thead', {}, h('tr', {}, h('th', {}, 'Code'), h('th', {}, 'Customer'), h('th', { class: 'num' }, 'Score'))),
          h('tbody', {}, codes.slice(0, 100).map((c) => h('tr', {}, h('td', { class: 'mono' }, c.code), h('td', {}, c.customer_id), h('td', { class: 'num' }, String(c.score)))))));
    },
  });
}
