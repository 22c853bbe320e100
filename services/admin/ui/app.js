// The admin UI shell: sign-in, role, navigation and a hash router.
import { api, can, getToken, setToken, setUnauthorizedHandler, ApiError } from './api.js';
import { h, clear, uid } from './dom.js';
import { codesView } from './views/codes.js';
import { codeFormView } from './views/code-form.js';
import { codeView } from './views/code.js';
import { dashboardView } from './views/dashboard.js';
import { auditView } from './views/audit.js';
import { dlqView } from './views/dlq.js';
import { generateView } from './views/generate.js';
import { tokensView } from './views/tokens.js';

const main = document.getElementById('main');
const nav = document.getElementById('nav');
const who = document.getElementById('who');
let me = null;
let cleanup = null;

const NAV = [
  ['#/codes', 'Codes', 'read'],
  ['#/codes/new', 'New code', 'write'],
  ['#/generate', 'Bulk & VIP', 'write'],
  ['#/dashboard', 'Live dashboard', 'read'],
  ['#/audit', 'Audit log', 'read'],
  ['#/dlq', 'Dead letters', 'read'],
  ['#/tokens', 'Tokens', 'tokens'],
];

function routes(path) {
  const parts = path.split('/').filter(Boolean).map(decodeURIComponent);
  if (parts.length === 0) return [codesView];
  if (parts[0] === 'codes') {
    if (parts.length === 1) return [codesView];
    if (parts[1] === 'new') return [codeFormView, null, 'write'];
    if (parts.length === 3 && parts[2] === 'edit') return [codeFormView, parts[1], 'write'];
    return [codeView, parts[1]];
  }
  const simple = {
    dashboard: [dashboardView], audit: [auditView, 'changes'], usage: [auditView, 'usage'],
    dlq: [dlqView], generate: [generateView, null, 'write'], tokens: [tokensView, null, 'tokens'],
  };
  return simple[parts[0]] || [null];
}

let pendingMessage = '';
function navigate(hash) {
  if (location.hash === hash) render();
  else location.hash = hash; // the hashchange event renders
}

function signOut(message) {
  setToken('');
  me = null;
  pendingMessage = message || '';
  navigate('#/signin');
}

setUnauthorizedHandler(() => signOut('Your token was refused (expired or revoked). Sign in again.'));

function renderShell() {
  clear(nav);
  clear(who);
  nav.hidden = !me;
  who.hidden = !me;
  if (!me) return;
  for (const [href, label, need] of NAV) {
    if (!can(me.role, need)) continue;
    nav.append(h('a', { href }, label));
  }
  who.append(
    h('span', {}, 'Signed in as ', h('strong', {}, me.name)),
    h('span', { class: 'role', 'data-testid': 'role' }, me.role),
    h('button', { class: 'small', type: 'button', onclick: () => signOut() }, 'Sign out'));
}

function markNav(hash) {
  let best = null;
  for (const a of nav.querySelectorAll('a')) {
    a.removeAttribute('aria-current');
    const href = a.getAttribute('href');
    if (hash === href || hash.startsWith(href + '/')) {
      if (!best || href.length > best.getAttribute('href').length) best = a;
    }
  }
  if (best && !(best.getAttribute('href') === '#/codes' && hash === '#/codes/new')) {
    best.setAttribute('aria-current', 'page');
  }
}

function signInView(message) {
  const id = uid('token');
  const err = h('p', { class: 'notice error', role: 'alert', hidden: !message }, message || '');
  const input = h('input', {
    id, type: 'password', autocomplete: 'off', spellcheck: 'false', required: true,
    placeholder: 'po_…',
  });
  const form = h('form', { class: 'card signin' },
    h('h1', {}, 'Sign in'),
    h('p', { class: 'muted' },
      'Paste the API token you were given. It is kept in this browser tab only (session storage) and sent with every request.'),
    h('div', { class: 'field' }, h('label', { for: id }, 'API token'), input),
    err,
    h('p', {}, h('button', { class: 'primary', type: 'submit' }, 'Sign in')));
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const token = input.value.trim();
    if (!token) return;
    err.hidden = true;
    try {
      const who = await api.me(token);
      setToken(token);
      me = who;
      const deep = location.hash && !['#/signin', '#/', '#'].includes(location.hash);
      navigate(deep ? location.hash : (can(who.role, 'write') ? '#/codes' : '#/dashboard'));
    } catch (x) {
      err.textContent = x instanceof ApiError && x.status === 401
        ? 'This token is not valid (or was revoked).' : `Sign-in failed: ${x.message}`;
      err.hidden = false;
    }
  });
  main.append(form);
  input.focus();
}

let generation = 0;
async function render() {
  const gen = ++generation;
  const message = pendingMessage;
  pendingMessage = '';
  if (cleanup) {
    try { cleanup(); } catch (e) { /* ignore */ }
    cleanup = null;
  }
  clear(main);
  if (!me && getToken()) {
    try {
      me = await api.me();
    } catch (e) {
      if (!(e instanceof ApiError && e.status === 401)) {
        main.append(h('p', { class: 'notice error', role: 'alert' }, e.message));
        return;
      }
      setToken('');
      me = null;
    }
    if (gen !== generation) return;
    clear(main);
  }
  renderShell();
  if (!me) {
    signInView(message);
    return;
  }
  const hash = location.hash || '#/';
  if (me.role === 'checkout' || !can(me.role, 'read')) {
    main.append(h('div', { class: 'card' }, h('h1', {}, 'Nothing to manage here'),
      h('p', {}, `The role “${me.role}” can only validate codes at checkout (POST /v1/validate). Sign in with a marketer, analyst or admin token to use this admin.`)));
    return;
  }
  const path = hash.replace(/^#/, '').split('?')[0];
  if (path === '/signin' || path === '/' || path === '') {
    navigate(can(me.role, 'write') ? '#/codes' : '#/dashboard');
    return;
  }
  const [view, arg, need] = routes(path);
  markNav(hash);
  if (!view) {
    main.append(h('p', { class: 'notice error' }, 'No such page.'));
    return;
  }
  if (need && !can(me.role, need)) {
    main.append(h('div', { class: 'card', 'data-testid': 'forbidden' }, h('h1', {}, 'Read-only access'),
      h('p', {}, `Your role (${me.role}) cannot do this. Ask an admin for a marketer token if you need to.`)));
    return;
  }
  const ctx = { me, can: (what) => can(me.role, what), go: navigate, alive: () => gen === generation };
  const viewMain = h('div', {});
  main.append(viewMain);
  try {
    const done = (await view(viewMain, ctx, arg)) || null;
    if (gen === generation) cleanup = done;
    else if (done) done();
  } catch (e) {
    viewMain.append(h('p', { class: 'notice error', role: 'alert' }, e.message));
  }
}

window.addEventListener('hashchange', () => render());
render();
