// The codes list: search, filters (status, type, channel), paging and the
// pause / resume / archive actions.
import { api } from '../api.js';
import { h, clear, uid, options, fmtTime, status } from '../dom.js';
import { formatValue } from '../units.js';
import { CHANNELS } from './code-form.js';

const PAGE = 50;

export async function codesView(root, ctx) {
  const params = new URLSearchParams(location.hash.split('?')[1] || '');
  const state = {
    q: params.get('q') || '', status: params.get('status') || '', type: params.get('type') || '',
    channel: params.get('channel') || '', offset: Number(params.get('offset')) || 0,
  };
  const ids = { q: uid('q'), status: uid('st'), type: uid('ty'), channel: uid('ch') };
  const q = h('input', { id: ids.q, type: 'search', value: state.q, placeholder: 'code or description' });
  const st = h('select', { id: ids.status }, options([['', 'Any'], 'active', 'paused', 'archived'], state.status));
  const ty = h('select', { id: ids.type }, options([['', 'Any'], ['percentage', 'Percentage'], ['fixed', 'Fixed amount']], state.type));
  const ch = h('select', { id: ids.channel }, options([['', 'Any'], ...CHANNELS], state.channel));
  const note = h('div', { role: 'status', hidden: true });
  const tbody = h('tbody', {});
  const pager = h('div', { class: 'pager' });

  root.append(
    h('div', { class: 'row' }, h('h1', {}, 'Codes'),
      ctx.can('write') ? h('a', { class: 'button', href: '#/codes/new', style: 'margin-left:auto' }, '+ New code') : null),
    h('form', { class: 'card row', role: 'search', onsubmit: (e) => { e.preventDefault(); state.offset = 0; load(); } },
      h('div', { class: 'field' }, h('label', { for: ids.q }, 'Search'), q),
      h('div', { class: 'field' }, h('label', { for: ids.status }, 'Status'), st),
      h('div', { class: 'field' }, h('label', { for: ids.type }, 'Type'), ty),
      h('div', { class: 'field' }, h('label', { for: ids.channel }, 'Channel'), ch),
      h('button', { type: 'submit' }, 'Search')),
    note,
    h('table', { 'aria-label': 'Codes' },
      h('thead', {}, h('tr', {}, ['Code', 'Description', 'Discount', 'Status', 'Valid', 'Channels', ''].map((t) => h('th', {}, t)))),
      tbody),
    pager);

  for (const el of [st, ty, ch]) el.addEventListener('change', () => { state.offset = 0; load(); });
  let timer = null;
  q.addEventListener('input', () => {
    clearTimeout(timer);
    timer = setTimeout(() => { state.offset = 0; load(); }, 250);
  });

  async function act(code, action) {
    if (action === 'archive' && !confirm(`Archive ${code}? It will stop applying and leave the active list.`)) return;
    try {
      await api.codeAction(code, action);
      status(note, `${code}: ${action === 'pause' ? 'paused' : action === 'resume' ? 'resumed' : 'archived'}.`, 'ok');
      await load();
    } catch (e) {
      status(note, `${code}: ${e.message}`, 'error');
    }
  }

  function actions(c) {
    if (!ctx.can('write')) return null;
    const b = (label, action, cls) => h('button', {
      type: 'button', class: `small ${cls || ''}`, 'aria-label': `${label} ${c.code}`,
      onclick: () => act(c.code, action),
    }, label);
    return h('div', { class: 'actions' },
      c.status === 'active' ? b('Pause', 'pause') : null,
      c.status === 'paused' ? b('Resume', 'resume') : null,
      c.status !== 'archived' ? b('Archive', 'archive', 'danger') : null);
  }

  function window_(c) {
    if (!c.starts_at && !c.expires_at) return 'always';
    return `${c.starts_at ? fmtTime(c.starts_at, c.timezone) : '…'} → ${c.expires_at ? fmtTime(c.expires_at, c.timezone) : '…'}`;
  }

  async function load() {
    state.q = q.value.trim();
    state.status = st.value;
    state.type = ty.value;
    state.channel = ch.value;
    const shown = new URLSearchParams();
    for (const k of ['q', 'status', 'type', 'channel']) if (state[k]) shown.set(k, state[k]);
    if (state.offset) shown.set('offset', state.offset);
    history.replaceState(null, '', `#/codes${shown.toString() ? '?' + shown : ''}`);
    let data;
    try {
      data = await api.listCodes({ q: state.q, status: state.status, type: state.type, channel: state.channel, limit: PAGE, offset: state.offset });
    } catch (e) {
      status(note, e.message, 'error');
      return;
    }
    if (!ctx.alive()) return;
    clear(tbody);
    for (const c of data.items || []) {
      tbody.append(h('tr', { 'data-code': c.code },
        h('td', {}, h('a', { href: `#/codes/${encodeURIComponent(c.code)}`, class: 'mono' }, c.code)),
        h('td', {}, c.description || ''),
        h('td', {}, formatValue(c)),
        h('td', {}, h('span', { class: `badge ${c.status}` }, c.status)),
        h('td', { class: 'muted' }, window_(c)),
        h('td', {}, (c.channels || []).join(', ') || 'all'),
        h('td', {}, actions(c))));
    }
    if (!(data.items || []).length) tbody.append(h('tr', {}, h('td', { colspan: 7, class: 'muted' }, 'No codes match.')));
    clear(pager);
    const total = data.total ?? (data.items || []).length;
    pager.append(
      h('span', { class: 'muted' }, total ? `${state.offset + 1}–${state.offset + (data.items || []).length} of ${total}` : '0 codes'),
      h('button', { type: 'button', class: 'small', disabled: state.offset === 0, onclick: () => { state.offset = Math.max(0, state.offset - PAGE); load(); } }, 'Previous'),
      h('button', { type: 'button', class: 'small', disabled: state.offset + PAGE >= total, onclick: () => { state.offset += PAGE; load(); } }, 'Next'));
  }
  await load();
  return () => clearTimeout(timer);
}
