// Live redemptions across every channel: GET /v1/dashboard every 2 s.
import { api } from '../api.js';
import { h, clear, fmtTime, uid, options } from '../dom.js';
import { formatMoney } from '../units.js';
import { barChart, fillBuckets } from '../chart.js';

const EVERY_MS = 2000;

function money(value, currency) {
  if (value === undefined || value === null) return '0';
  return currency ? formatMoney(value, currency) : `${value} (minor units)`;
}

export function dashboardView(root) {
  const minutesId = uid('minutes');
  const minutes = h('select', { id: minutesId }, options([['15', '15 minutes'], ['60', '1 hour'], ['240', '4 hours'], ['1440', '24 hours']], '60'));
  const live = h('span', { class: 'muted', 'data-testid': 'live', 'aria-live': 'off' });
  const tiles = h('div', { class: 'tiles' });
  const chartBox = h('div', {});
  const chartTitle = h('h2', {}, 'Per minute, all channels');
  const channels = h('tbody', {});
  const recent = h('tbody', {});
  const err = h('p', { class: 'notice error', role: 'alert', hidden: true });
  root.append(
    h('div', { class: 'row' }, h('h1', {}, 'Live redemptions'),
      h('div', { class: 'field', style: 'margin-left:auto' }, h('label', { for: minutesId }, 'Window'), minutes)),
    h('p', {}, live), err, tiles,
    h('h2', {}, 'Per channel'),
    h('table', { 'aria-label': 'Per channel' }, h('thead', {}, h('tr', {},
      h('th', {}, 'Channel'), h('th', { class: 'num' }, 'Applied'), h('th', { class: 'num' }, 'Rejected'), h('th', { class: 'num' }, 'Discount'))), channels),
    chartTitle, chartBox,
    h('h2', {}, 'Recent events'),
    h('table', { 'aria-label': 'Recent events' }, h('thead', {}, h('tr', {},
      ['Time', 'Channel', 'Code', 'Outcome', 'Reason', 'Discount', 'Order', 'Customer'].map((t) => h('th', {}, t)))), recent));

  let timer = null;
  let stopped = false;
  let last = null;

  function tile(n, l, testid) {
    return h('div', { class: 'tile' }, h('div', { class: 'n', 'data-testid': testid }, n), h('div', { class: 'l' }, l));
  }

  function draw(d) {
    const rows = d.recent || [];
    const currencies = new Set(rows.map((r) => r.currency).filter(Boolean));
    const cur = d.totals?.currency || (currencies.size === 1 ? [...currencies][0] : '');
    clear(tiles).append(
      tile(String(d.totals?.applied ?? 0), 'codes applied', 'applied'),
      tile(String(d.totals?.rejected ?? 0), 'codes rejected', 'rejected'),
      tile(money(d.totals?.discount ?? 0, cur), 'discount granted', 'discount'));
    clear(channels);
    for (const c of d.by_channel || []) {
      channels.append(h('tr', { 'data-channel': c.channel }, h('td', {}, c.channel),
        h('td', { class: 'num' }, String(c.applied ?? 0)), h('td', { class: 'num' }, String(c.rejected ?? 0)),
        h('td', { class: 'num' }, money(c.discount ?? 0, cur))));
    }
    if (!(d.by_channel || []).length) channels.append(h('tr', {}, h('td', { colspan: 4, class: 'muted' }, 'Nothing in this window yet.')));
    // All channels together, in at most ~120 bars over the window.
    const mins = Number(minutes.value);
    const step = Math.max(1, Math.ceil(mins / 120));
    const to = new Date();
    const series = fillBuckets((d.series || []).map((p) => ({ t: p.t, applied: p.applied, rejected: p.rejected })),
      step * 60e3, new Date(to.getTime() - mins * 60e3), to);
    chartTitle.textContent = step === 1 ? 'Per minute, all channels' : `Per ${step} minutes, all channels`;
    clear(chartBox).append(barChart(series, {
      title: chartTitle.textContent, height: 160,
      label: (t) => new Date(t).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' }),
    }));
    clear(recent);
    for (const r of rows) {
      recent.append(h('tr', { 'data-code': r.code },
        h('td', {}, fmtTime(r.occurred_at)), h('td', {}, r.channel), h('td', { class: 'mono' }, r.code),
        h('td', {}, h('span', { class: `badge ${r.outcome}` }, r.outcome)), h('td', {}, r.reason || ''),
        h('td', { class: 'num' }, r.outcome === 'applied' ? formatMoney(r.value_applied, r.currency) : ''),
        h('td', { class: 'mono' }, r.order_id), h('td', {}, r.customer_id || '')));
    }
    if (!rows.length) recent.append(h('tr', {}, h('td', { colspan: 8, class: 'muted' }, 'No events yet.')));
  }

  let inflight = false;
  async function poll() {
    if (stopped) return;
    clearTimeout(timer);
    if (inflight) return; // the running one reschedules
    inflight = true;
    if (!document.hidden) {
      try {
        const d = await api.dashboard({ minutes: minutes.value });
        if (stopped) return;
        draw(d);
        last = new Date();
        err.hidden = true;
        clear(live).append(h('span', { class: 'live' }), `Live: updated every 2 s, last at ${last.toLocaleTimeString()}`);
      } catch (e) {
        if (stopped) return;
        err.textContent = `Cannot refresh: ${e.message}`;
        err.hidden = false;
        clear(live).append(h('span', { class: 'live stale' }), last ? `Stale since ${last.toLocaleTimeString()}` : 'Not loaded');
      }
    }
    inflight = false;
    if (!stopped) timer = setTimeout(poll, EVERY_MS);
  }
  minutes.addEventListener('change', () => poll());
  poll();
  return () => { stopped = true; clearTimeout(timer); };
}
