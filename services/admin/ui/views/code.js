// One code: its definition, stats, actions and its redemptions over time.
import { api } from '../api.js';
import { h, clear, fmtTime, status, uid, options } from '../dom.js';
import { formatValue, formatMoney, fromBasisPoints } from '../units.js';
import { barChart, fillBuckets } from '../chart.js';

export async function codeView(root, ctx, codeName) {
  const code = await api.getCode(codeName);
  const note = h('div', { role: 'status', hidden: true });
  const chartBox = h('div', {});
  const bucketId = uid('bucket');
  const bucket = h('select', { id: bucketId }, options([['hour', 'Last 48 hours, per hour'], ['day', 'Last 30 days, per day']], 'hour'));
  const c = code.currency;

  const dd = [];
  const add = (k, v) => { if (v !== undefined && v !== null && v !== '' && !(Array.isArray(v) && !v.length)) dd.push(h('dt', {}, k), h('dd', {}, v)); };
  add('Status', h('span', { class: `badge ${code.status}` }, code.status));
  add('Description', code.description);
  add('Discount', `${formatValue(code)}${code.type === 'percentage' ? ' off' : ' off'}`);
  add('Currency', code.currency);
  add('Maximum discount', code.max_discount != null ? formatMoney(code.max_discount, c) : null);
  add('Minimum spend', code.min_spend != null ? formatMoney(code.min_spend, c) : null);
  add('Maximum spend', code.max_spend != null ? formatMoney(code.max_spend, c) : null);
  add('Starts', code.starts_at ? `${fmtTime(code.starts_at, code.timezone)} (${code.starts_at})` : 'at once');
  add('Expires', code.expires_at ? `${fmtTime(code.expires_at, code.timezone)} (${code.expires_at})` : 'never');
  add('Time zone', code.timezone);
  add('Total redemptions limit', code.usage_limit);
  add('Per-customer limit', code.per_customer_limit);
  add('Channels', (code.channels || []).join(', ') || 'all');
  add('Eligible tiers', (code.tiers || []).join(', '));
  add('Value per tier', Object.entries(code.tier_values || {}).map(([k, v]) =>
    `${k}: ${code.type === 'percentage' ? fromBasisPoints(v) + ' %' : formatMoney(v, c)}`).join(', '));
  add('Bound to customer', code.customer_id);
  const t = code.targets || {};
  add('Only SKUs', (t.skus || []).join(', '));
  add('Only categories', (t.categories || []).join(', '));
  add('Exclude SKUs', (t.exclude_skus || []).join(', '));
  add('Exclude categories', (t.exclude_categories || []).join(', '));
  add('Low stock at most', t.low_stock_max);
  add('Maximum margin', t.max_margin_bp != null ? `${fromBasisPoints(t.max_margin_bp)} %` : null);
  add('Combinable', code.combinable ? 'yes' : 'no');
  add('Priority', String(code.priority ?? 0));
  add('Version', code.version);
  add('Created', code.created_at ? `${fmtTime(code.created_at)} by ${code.created_by || '?'}` : null);
  add('Updated', code.updated_at ? `${fmtTime(code.updated_at)} by ${code.updated_by || '?'}` : null);

  async function act(action) {
    if (action === 'archive' && !confirm(`Archive ${code.code}?`)) return;
    try {
      await api.codeAction(code.code, action);
      ctx.go(location.hash);
    } catch (e) {
      status(note, e.message, 'error');
    }
  }
  const actions = ctx.can('write') ? h('div', { class: 'actions' },
    h('a', { class: 'button', href: `#/codes/${encodeURIComponent(code.code)}/edit` }, 'Edit'),
    code.status === 'active' ? h('button', { type: 'button', onclick: () => act('pause') }, 'Pause') : null,
    code.status === 'paused' ? h('button', { type: 'button', onclick: () => act('resume') }, 'Resume') : null,
    code.status !== 'archived' ? h('button', { type: 'button', class: 'danger', onclick: () => act('archive') }, 'Archive') : null) : null;

  const stats = code.stats || {};
  root.append(
    h('div', { class: 'row' }, h('h1', { class: 'mono' }, code.code), h('div', { style: 'margin-left:auto' }, actions)),
    note,
    h('div', { class: 'tiles' },
      h('div', { class: 'tile' }, h('div', { class: 'n', 'data-testid': 'redemptions' }, String(stats.redemptions ?? 0)), h('div', { class: 'l' }, 'redemptions')),
      h('div', { class: 'tile' }, h('div', { class: 'n' }, String(stats.rejections ?? 0)), h('div', { class: 'l' }, 'rejected attempts'))),
    h('div', { class: 'card' }, h('dl', { class: 'def' }, dd)),
    h('h2', {}, 'Redemptions over time'),
    h('div', { class: 'row' }, h('div', { class: 'field' }, h('label', { for: bucketId }, 'Period'), bucket),
      h('a', { href: `#/usage?code=${encodeURIComponent(code.code)}`, style: 'margin-left:auto' }, 'Every use of this code in the audit log →')),
    chartBox);

  async function chart() {
    const hours = bucket.value === 'hour' ? 48 : 24 * 30;
    const now = new Date();
    const from = new Date(now.getTime() - hours * 3600 * 1000);
    clear(chartBox);
    let data;
    try {
      data = await api.redemptions(code.code, { bucket: bucket.value, from: from.toISOString().replace(/\.\d+Z$/, 'Z'), to: now.toISOString().replace(/\.\d+Z$/, 'Z') });
    } catch (e) {
      chartBox.append(h('p', { class: 'notice error' }, `Redemptions: ${e.message}`));
      return;
    }
    const series = fillBuckets(data.series || [], bucket.value === 'hour' ? 3600e3 : 86400e3, from, now);
    const label = (ts) => {
      const d = new Date(ts);
      return bucket.value === 'hour'
        ? d.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' })
        : d.toLocaleDateString([], { month: 'short', day: 'numeric' });
    };
    const discount = series.reduce((a, p) => a + BigInt(p.discount || 0), 0n);
    chartBox.append(barChart(series, { title: `Redemptions of ${code.code}`, label }),
      h('p', { class: 'muted' }, `${series.reduce((a, p) => a + Number(p.applied || 0), 0)} applied, `,
        `${series.reduce((a, p) => a + Number(p.rejected || 0), 0)} rejected, discount granted ${c ? formatMoney(discount, c) : discount + ' (minor units)'} in this period.`));
  }
  bucket.addEventListener('change', chart);
  await chart();
}

