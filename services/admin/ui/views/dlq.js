// Dead letters of every stage, most costly first (priority), with replay.
import { api } from '../api.js';
import { h, clear, uid, options, fmtTime, status } from '../dom.js';

const PAGE = 50;
const STAGES = ['intake-normalizer', 'validator', 'calculator', 'audit-sink'];

export async function dlqView(root, ctx) {
  const id = uid('stage');
  const stage = h('select', { id }, options([['', 'All stages'], ...STAGES], ''));
  const note = h('div', { role: 'status', hidden: true });
  const tbody = h('tbody', {});
  const pager = h('div', { class: 'pager' });
  let offset = 0;
  root.append(
    h('h1', {}, 'Dead letters'),
    h('p', { class: 'muted' }, 'Orders and events a stage could not process, highest priority (order value, customer tier, channel) first. Fix the cause, then replay.'),
    h('div', { class: 'row' }, h('div', { class: 'field' }, h('label', { for: id }, 'Stage'), stage)),
    note,
    h('table', { 'aria-label': 'Dead letters' }, h('thead', {}, h('tr', {},
      ['Priority', 'Stage', 'Reason', 'Error', 'Attempts', 'Last failure', 'Source', ''].map((t) => h('th', {}, t)))), tbody),
    pager);

  async function replay(item, btn) {
    if (!confirm(`Replay ${item.source} to ${item.source_topic || 'its source topic'}?`)) return;
    btn.disabled = true;
    try {
      const r = await api.replay(item.source);
      status(note, `Replayed ${item.source} to ${r.topic || item.source_topic}.`, 'ok');
      await load();
    } catch (e) {
      btn.disabled = false;
      status(note, `Replay of ${item.source} failed: ${e.message}`, 'error');
    }
  }

  async function load() {
    let d;
    try {
      d = await api.dlq({ stage: stage.value, limit: PAGE, offset });
    } catch (e) {
      status(note, e.message, 'error');
      return;
    }
    if (!ctx.alive()) return;
    clear(tbody);
    for (const it of d.items || []) {
      let action = null;
      if (it.replayed_at) action = h('span', { class: 'muted' }, `replayed ${fmtTime(it.replayed_at)}`);
      else if (ctx.can('replay')) {
        const btn = h('button', { type: 'button', class: 'small', 'aria-label': `Replay ${it.source}` }, 'Replay');
        btn.addEventListener('click', () => replay(it, btn));
        action = btn;
      }
      tbody.append(h('tr', { 'data-source': it.source },
        h('td', { class: 'num', 'data-testid': 'priority' }, String(it.priority)),
        h('td', {}, it.stage), h('td', {}, it.reason), h('td', {}, it.error),
        h('td', { class: 'num' }, String(it.attempts)), h('td', {}, fmtTime(it.last_failure_at)),
        h('td', { class: 'mono' }, it.source), h('td', {}, action)));
    }
    if (!(d.items || []).length) tbody.append(h('tr', {}, h('td', { colspan: 8, class: 'muted' }, 'No dead letters.')));
    const total = d.total ?? (d.items || []).length;
    clear(pager).append(
      h('span', { class: 'muted' }, total ? `${offset + 1}–${offset + (d.items || []).length} of ${total}` : ''),
      h('button', { type: 'button', class: 'small', disabled: offset === 0, onclick: () => { offset = Math.max(0, offset - PAGE); load(); } }, 'Previous'),
      h('button', { type: 'button', class: 'small', disabled: offset + PAGE >= total, onclick: () => { offset += PAGE; load(); } }, 'Next'));
  }
  stage.addEventListener('change', () => { offset = 0; load(); });
  await load();
}
