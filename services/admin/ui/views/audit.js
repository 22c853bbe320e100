// The audit log for compliance: admin changes (GET /v1/audit) and every code
// decision on orders (GET /v1/usage), with filters and CSV export.
import { api } from '../api.js';
import { h, clear, uid, options, fmtTime, downloadBlob, status } from '../dom.js';
import { formatMoney } from '../units.js';
import { CHANNELS } from './code-form.js';

const PAGE = 50;

const KINDS = {
  changes: {
    title: 'Admin changes', path: '/v1/audit', load: api.audit, file: 'admin-changes',
    filters: [
      ['actor', 'Actor', 'text'],
      ['action', 'Action', 'select', [['', 'Any'], 'create', 'update', 'pause', 'resume', 'archive',
        ['generate_bulk', 'bulk generation'], ['generate_vip', 'VIP generation'], 'replay', 'revoke']],
      ['entity', 'Entity', 'select', [['', 'Any'], 'code', ['code_batch', 'code batch'], 'token', ['dead_letter', 'dead letter']]],
      ['entity_id', 'Entity id', 'text'],
    ],
    cols: ['When', 'Actor', 'Action', 'Entity', 'Change'],
    row: (r) => [fmtTime(r.at), r.actor, r.action, h('span', {}, `${r.entity} `, h('span', { class: 'mono' }, r.entity_id)), change(r)],
  },
  usage: {
    title: 'Redemptions', path: '/v1/usage', load: api.usage, file: 'redemptions',
    filters: [
      ['code', 'Code', 'text'], ['channel', 'Channel', 'select', [['', 'Any'], ...CHANNELS]],
      ['outcome', 'Outcome', 'select', [['', 'Any'], 'applied', 'rejected']],
      ['customer_id', 'Customer id', 'text'],
    ],
    cols: ['Occurred', 'Channel', 'Code', 'Outcome', 'Reason', 'Discount', 'Order', 'Customer', 'Account'],
    row: (r) => [fmtTime(r.occurred_at), r.channel, r.code, h('span', { class: `badge ${r.outcome}` }, r.outcome),
      r.reason || '', r.outcome === 'applied' ? formatMoney(r.value_applied, r.currency) : '', r.order_id, r.customer_id || '', r.account],
  },
};

const NOISE = new Set(['version', 'updated_at', 'updated_by', 'created_at', 'created_by']);

function short(v) {
  if (v === undefined) return '—';
  const t = typeof v === 'string' ? v : JSON.stringify(v);
  return t.length > 60 ? t.slice(0, 57) + '…' : t;
}

// What changed, in one line per field; the full records folded below.
function change(r) {
  const b = r.before && typeof r.before === 'object' ? r.before : null;
  const a = r.after && typeof r.after === 'object' ? r.after : null;
  const lines = [];
  if (b && a) {
    for (const k of new Set([...Object.keys(b), ...Object.keys(a)])) {
      if (NOISE.has(k) || JSON.stringify(b[k]) === JSON.stringify(a[k])) continue;
      lines.push(`${k}: ${short(b[k])} → ${short(a[k])}`);
    }
  } else if (a || b) {
    const o = a || b;
    lines.push(Object.entries(o).filter(([k]) => !NOISE.has(k)).slice(0, 6)
      .map(([k, v]) => `${k}=${short(v)}`).join(', '));
  }
  const full = h('details', { class: 'plain' }, h('summary', {}, 'full record'),
    b ? h('div', {}, h('strong', {}, 'before '), h('pre', { class: 'json' }, JSON.stringify(b, null, 1))) : null,
    a ? h('div', {}, h('strong', {}, 'after '), h('pre', { class: 'json' }, JSON.stringify(a, null, 1))) : null);
  return h('div', {}, lines.map((l) => h('div', {}, l)), (a || b) ? full : null);
}

function isoFromLocal(v) {
  if (!v) return '';
  const d = new Date(v); // a datetime-local value is read in the browser's zone
  return Number.isNaN(d.getTime()) ? '' : d.toISOString().replace(/\.\d+Z$/, 'Z');
}

export async function auditView(root, ctx, which) {
  const kind = KINDS[which];
  const params = new URLSearchParams(location.hash.split('?')[1] || '');
  const inputs = {};
  const form = h('form', { class: 'card row', role: 'search' });
  for (const [name, label, t, opts] of kind.filters) {
    const id = uid(name);
    const el = t === 'select' ? h('select', { id }, options(opts, params.get(name) || ''))
      : h('input', { id, type: 'text', value: params.get(name) || '' });
    inputs[name] = el;
    form.append(h('div', { class: 'field' }, h('label', { for: id }, label), el));
  }
  for (const [name, label] of [['from', 'From'], ['to', 'To']]) {
    const id = uid(name);
    inputs[name] = h('input', { id, type: 'datetime-local', step: 1 });
    form.append(h('div', { class: 'field' }, h('label', { for: id }, label), inputs[name]));
  }
  const exportBtn = h('button', { type: 'button' }, 'Export CSV');
  form.append(h('button', { type: 'submit' }, 'Filter'), exportBtn);
  const note = h('div', { role: 'status', hidden: true });
  const tbody = h('tbody', {});
  const pager = h('div', { class: 'pager' });
  let offset = 0;

  root.append(
    h('h1', {}, 'Audit log'),
    h('nav', { class: 'actions', 'aria-label': 'Audit log', style: 'margin-bottom:1rem' },
      h('a', { class: 'button', href: '#/audit', 'aria-current': which === 'changes' ? 'page' : null }, 'Admin changes'),
      h('a', { class: 'button', href: '#/usage', 'aria-current': which === 'usage' ? 'page' : null }, 'Redemptions')),
    form, note,
    h('table', { 'aria-label': kind.title }, h('thead', {}, h('tr', {}, kind.cols.map((c) => h('th', {}, c)))), tbody),
    pager);

  function filters() {
    const p = {};
    for (const [name] of kind.filters) p[name] = inputs[name].value.trim();
    p.from = isoFromLocal(inputs.from.value);
    p.to = isoFromLocal(inputs.to.value);
    return p;
  }

  async function load() {
    let d;
    try {
      d = await kind.load({ ...filters(), limit: PAGE, offset });
    } catch (e) {
      status(note, e.message, 'error');
      return;
    }
    if (!ctx.alive()) return;
    note.hidden = true;
    clear(tbody);
    for (const r of d.items || []) {
      tbody.append(h('tr', {}, kind.row(r).map((c) => h('td', {}, c))));
    }
    if (!(d.items || []).length) tbody.append(h('tr', {}, h('td', { colspan: kind.cols.length, class: 'muted' }, 'Nothing matches.')));
    const total = d.total ?? (d.items || []).length;
    clear(pager).append(
      h('span', { class: 'muted' }, total ? `${offset + 1}–${offset + (d.items || []).length} of ${total}` : '0 rows'),
      h('button', { type: 'button', class: 'small', disabled: offset === 0, onclick: () => { offset = Math.max(0, offset - PAGE); load(); } }, 'Previous'),
      h('button', { type: 'button', class: 'small', disabled: offset + PAGE >= total, onclick: () => { offset += PAGE; load(); } }, 'Next'));
  }

  form.addEventListener('submit', (e) => { e.preventDefault(); offset = 0; load(); });
  for (const el of Object.values(inputs)) if (el.tagName === 'SELECT') el.addEventListener('change', () => { offset = 0; load(); });

  exportBtn.addEventListener('click', async () => {
    exportBtn.disabled = true;
    try {
      const res = await api.csv(kind.path, filters());
      const blob = await res.blob();
      const cd = res.headers.get('Content-Disposition') || '';
      const m = /filename="?([^";]+)"?/.exec(cd);
      const stamp = new Date().toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z');
      downloadBlob(blob, m ? m[1] : `${kind.file}-${stamp}.csv`);
      status(note, 'CSV exported.', 'ok');
    } catch (e) {
      status(note, `Export failed: ${e.message}`, 'error');
    } finally {
      exportBtn.disabled = false;
    }
  });
  await load();
}
