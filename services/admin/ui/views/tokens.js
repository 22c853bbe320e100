// API tokens (admin only): list, create (shown once), revoke.
import { api } from '../api.js';
import { h, clear, uid, options, fmtTime, status } from '../dom.js';

export async function tokensView(root, ctx) {
  const nameId = uid('name');
  const roleId = uid('role');
  const name = h('input', { id: nameId, type: 'text', required: true, placeholder: 'jane-marketing' });
  const role = h('select', { id: roleId }, options(['marketer', 'analyst', 'checkout', 'admin'], 'marketer'));
  const note = h('div', { role: 'status', hidden: true });
  const tbody = h('tbody', {});
  const form = h('form', { class: 'card row' },
    h('div', { class: 'field' }, h('label', { for: nameId }, 'Name'), name),
    h('div', { class: 'field' }, h('label', { for: roleId }, 'Role'), role),
    h('button', { class: 'primary', type: 'submit' }, 'Create token'));
  root.append(h('h1', {}, 'API tokens'), form, note,
    h('table', { 'aria-label': 'Tokens' }, h('thead', {}, h('tr', {}, ['Name', 'Role', 'Created', 'Revoked', ''].map((t) => h('th', {}, t)))), tbody));

  async function load() {
    const d = await api.tokens();
    if (!ctx.alive()) return;
    clear(tbody);
    for (const t of d.items || []) {
      tbody.append(h('tr', {}, h('td', {}, t.name), h('td', {}, t.role), h('td', {}, fmtTime(t.created_at)),
        h('td', {}, t.revoked_at ? fmtTime(t.revoked_at) : ''),
        h('td', {}, t.revoked_at ? null : h('button', {
          type: 'button', class: 'small danger', 'aria-label': `Revoke ${t.name}`,
          onclick: async () => {
            if (!confirm(`Revoke the token “${t.name}”? Whoever uses it is locked out at once.`)) return;
            try { await api.revokeToken(t.id); await load(); } catch (e) { status(note, e.message, 'error'); }
          },
        }, 'Revoke'))));
    }
  }
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    try {
      const r = await api.createToken({ name: name.value.trim(), role: role.value });
      clear(note);
      note.className = 'notice ok';
      note.hidden = false;
      note.append(`Token for ${name.value.trim()} (${role.value}); copy it now, it is not shown again: `,
        h('code', { 'data-testid': 'new-token' }, r.token));
      name.value = '';
      await load();
    } catch (x) {
      status(note, x.message, 'error');
    }
  });
  await load();
}
