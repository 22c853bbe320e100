// The create / edit form of a code (PRICING_SPEC section 3), and the same
// fields as a template for bulk and VIP generation. Values are typed in human
// units and converted exactly (units.js); the API's 422 field errors are shown
// next to their field.
import { api, ApiError } from '../api.js';
import { h, uid, options, status, toLocalInput } from '../dom.js';
import {
  CURRENCIES, currencyForLocale, currencyDigits, toMinor, toBasisPoints, toInteger,
  fromMinor, fromBasisPoints, formatMoney, UnitError,
} from '../units.js';

export const CHANNELS = ['web', 'pos', 'marketplace', 'mobile'];
const CURRENCY_KEY = 'promo-admin-currency';

function browserZone() {
  try {
    return Intl.DateTimeFormat().resolvedOptions().timeZone || 'UTC';
  } catch (e) {
    return 'UTC';
  }
}

function zones() {
  let list = [];
  try {
    list = Intl.supportedValuesOf('timeZone');
  } catch (e) {
    list = [];
  }
  const z = browserZone();
  if (!list.includes('UTC')) list = ['UTC', ...list];
  if (!list.includes(z)) list = [z, ...list];
  return list;
}

function defaultCurrency() {
  return localStorage.getItem(CURRENCY_KEY) || currencyForLocale(navigator.language);
}

function splitList(text) {
  return String(text || '').split(/[,\n]/).map((s) => s.trim()).filter(Boolean);
}

// Builds the fields into `root`. opts.template: no code, description or
// customer binding (bulk/VIP generation). opts.vip: no customer binding.
export function codeFields(root, opts = {}) {
  const f = {}; // API field name -> {input, err, row}
  const general = h('div', { class: 'notice error', role: 'alert', hidden: true });

  function field(name, label, input, { hint, unit, inline } = {}) {
    const id = input.id || uid(name.replace(/\W/g, '-'));
    input.id = id;
    input.dataset.field = name;
    const err = h('span', { class: 'ferr', id: `${id}-err`, hidden: true, 'data-error-for': name });
    const hintEl = hint !== undefined ? h('span', { class: 'hint', id: `${id}-hint` }, hint) : null;
    input.setAttribute('aria-describedby', [hintEl && hintEl.id, err.id].filter(Boolean).join(' '));
    const lab = h('label', { for: id }, label);
    let control = input;
    let unitEl = null;
    if (unit !== undefined) {
      unitEl = h('span', { 'aria-hidden': 'true' }, unit);
      control = h('div', { class: 'unit' }, input, unitEl);
    }
    const row = inline
      ? h('div', { class: 'field inline' }, input, lab, err)
      : h('div', { class: 'field' }, lab, control, hintEl, err);
    f[name] = { input, err, row, unitEl };
    return row;
  }

  const text = (attrs = {}) => h('input', { type: 'text', autocomplete: 'off', ...attrs });
  const num = (attrs = {}) => h('input', { type: 'text', inputmode: 'decimal', autocomplete: 'off', ...attrs });

  const cur = defaultCurrency();
  const currency = h('select', {}, options(CURRENCIES.includes(cur) ? CURRENCIES : [cur, ...CURRENCIES], cur));
  const type = h('select', {}, options([['percentage', 'Percentage off'], ['fixed', 'Fixed amount off']], 'percentage'));
  const tz = h('select', {}, options(zones(), browserZone()));
  const restrict = h('input', { type: 'checkbox' });

  const sections = [];
  if (!opts.template) {
    sections.push(h('fieldset', {}, h('legend', {}, 'Code'),
      h('div', { class: 'grid' },
        field('code', 'Code', text({ required: true, maxlength: 64, placeholder: 'SAVE10', style: 'text-transform:uppercase' }),
          { hint: '3–64 characters: letters, digits, - and _' }),
        field('description', 'Description', text({ placeholder: 'Black Friday newsletter' }),
          { hint: 'For people: shown in lists and search' }),
        field('status', 'Status', h('select', {}, options([['active', 'Active'], ['paused', 'Paused'], ['archived', 'Archived']], 'active'))))));
  } else {
    sections.push(h('fieldset', {}, h('legend', {}, 'Codes'),
      h('div', { class: 'grid' },
        field('description', 'Description', text({ placeholder: 'Xmas mailing' })),
        field('status', 'Status', h('select', {}, options([['active', 'Active'], ['paused', 'Paused']], 'active'))))));
  }
  sections.push(h('fieldset', {}, h('legend', {}, 'Discount'),
    h('div', { class: 'grid' },
      field('type', 'Type', type),
      field('value', 'Discount value', num({ required: true, placeholder: '10' }), { unit: '%', hint: '' }),
      field('currency', 'Currency', currency, { hint: 'For fixed amounts and spend limits' }),
      field('max_discount', 'Maximum discount', num({ placeholder: 'no cap' }), { unit: cur, hint: 'Optional cap per order' }))));
  sections.push(h('fieldset', {}, h('legend', {}, 'Validity'),
    h('div', { class: 'grid' },
      field('starts_at', 'Starts', h('input', { type: 'datetime-local', step: 60 }), { hint: 'Empty: valid at once' }),
      field('expires_at', 'Expires', h('input', { type: 'datetime-local', step: 60 }), { hint: 'Empty: never expires' }),
      field('timezone', 'Time zone', tz, { hint: 'Starts and expires are wall-clock times in this zone' }))));
  sections.push(h('fieldset', {}, h('legend', {}, 'Limits'),
    h('div', { class: 'grid' },
      field('usage_limit', 'Total redemptions limit', num({ inputmode: 'numeric', placeholder: 'unlimited' })),
      field('per_customer_limit', 'Redemptions per customer', num({ inputmode: 'numeric', placeholder: 'unlimited' })),
      field('min_spend', 'Minimum spend', num({ placeholder: 'none' }), { unit: cur, hint: 'Cart subtotal before discounts' }),
      field('max_spend', 'Maximum spend', num({ placeholder: 'none' }), { unit: cur }))));

  const channelBoxes = CHANNELS.map((c) => {
    const id = uid(`ch-${c}`);
    return { c, box: h('input', { type: 'checkbox', id, value: c, dataset: { field: 'channels' } }), id };
  });
  const channelsErr = h('span', { class: 'ferr', hidden: true, 'data-error-for': 'channels' });
  f.channels = { input: channelBoxes[0].box, err: channelsErr };

  const advanced = h('details', { class: 'advanced' },
    h('summary', {}, 'Advanced: channels, customers, targeting, stacking'),
    h('fieldset', {}, h('legend', {}, 'Channels'),
      h('p', { class: 'hint' }, 'None ticked: accepted on every channel.'),
      h('div', { class: 'row' }, channelBoxes.map(({ c, box, id }) =>
        h('div', { class: 'field inline' }, box, h('label', { for: id }, `Channel ${c}`)))),
      channelsErr),
    h('fieldset', {}, h('legend', {}, 'Customers'),
      h('div', { class: 'grid' },
        field('tiers', 'Eligible tiers', text({ placeholder: 'gold, platinum' }), { hint: 'Comma-separated; empty: everyone' }),
        field('tier_values', 'Value per tier', text({ placeholder: 'gold=15, platinum=20' }),
          { hint: 'tier=value in the same unit as the discount value' }),
        opts.template ? null : field('customer_id', 'Bound to customer id', text({ placeholder: 'c-17' }),
          { hint: 'A unique code for one customer' }),
        field('restrict_currency', 'Only for carts in this currency', restrict, { inline: true }))),
    h('fieldset', {}, h('legend', {}, 'Targeting'),
      h('div', { class: 'grid' },
        field('targets.skus', 'Only SKUs', text({ placeholder: 'all' }), { hint: 'Comma-separated' }),
        field('targets.categories', 'Only categories', text({ placeholder: 'all' })),
        field('targets.exclude_skus', 'Exclude SKUs', text()),
        field('targets.exclude_categories', 'Exclude categories', text()),
        field('targets.low_stock_max', 'Low stock: at most (units)', num({ inputmode: 'numeric', placeholder: 'any stock' }),
          { hint: 'Only lines whose stock is known and at most this' }),
        field('targets.max_margin_bp', 'Maximum margin', num({ placeholder: 'any margin' }),
          { unit: '%', hint: 'Only lines whose margin is known and at most this' }))),
    h('fieldset', {}, h('legend', {}, 'Stacking'),
      h('div', { class: 'grid' },
        field('combinable', 'Combinable with other codes', h('input', { type: 'checkbox' }), { inline: true }),
        field('priority', 'Priority', num({ inputmode: 'numeric', value: '0' }), { hint: 'Higher applies first' }))));

  const summary = h('p', { class: 'summary', 'aria-live': 'polite', 'data-testid': 'summary' });
  root.append(general, ...sections, advanced, summary);

  function units() {
    const c = currency.value;
    const pct = type.value === 'percentage';
    f.value.unitEl.textContent = pct ? '%' : c;
    for (const n of ['max_discount', 'min_spend', 'max_spend']) f[n].unitEl.textContent = c;
    const hintEl = f.value.row.querySelector('.hint');
    if (hintEl) {
      hintEl.textContent = pct ? 'Percent off, e.g. 10 or 12.5'
        : `Amount off in ${c}, e.g. ${fromMinor(500n * 10n ** BigInt(currencyDigits(c)) / 100n, c)}`;
    }
    f.restrict_currency.row.hidden = !pct;
  }
  type.addEventListener('change', units);
  currency.addEventListener('change', () => {
    localStorage.setItem(CURRENCY_KEY, currency.value);
    units();
  });
  if (f.code) {
    f.code.input.addEventListener('input', () => {
      const el = f.code.input;
      const at = el.selectionStart;
      el.value = el.value.toUpperCase();
      el.setSelectionRange(at, at);
    });
  }
  units();

  function clearErrors() {
    general.hidden = true;
    general.textContent = '';
    for (const { input, err } of Object.values(f)) {
      err.hidden = true;
      err.textContent = '';
      input.removeAttribute('aria-invalid');
    }
    for (const { box } of channelBoxes) box.removeAttribute('aria-invalid');
  }

  // Maps an API field name ("value", "targets.skus[2]", "tier_values.gold",
  // "starts_at_local") to our field; unknown ones go to the general box.
  function fieldFor(name) {
    let n = String(name || '').replace(/\[\d+\]/g, '').replace(/^template\./, '');
    n = n.replace(/_local$/, '');
    if (n === 'targets.max_margin') n = 'targets.max_margin_bp';
    while (n) {
      if (f[n]) return f[n];
      const dot = n.lastIndexOf('.');
      if (dot < 0) break;
      n = n.slice(0, dot);
    }
    return null;
  }

  // The API speaks basis points and minor units; say it in the units typed.
  function humanize(name, msg) {
    const n = String(name).replace(/\[\d+\]/g, '').replace(/^template\./, '');
    const pct = type.value === 'percentage';
    let conv = null;
    if ((pct && (n === 'value' || n.startsWith('tier_values'))) || n === 'targets.max_margin_bp') {
      conv = (v) => `${fromBasisPoints(v)} %`;
    } else if (['max_discount', 'min_spend', 'max_spend'].includes(n) || (!pct && (n === 'value' || n.startsWith('tier_values')))) {
      conv = (v) => `${fromMinor(v, currency.value)} ${currency.value}`;
    }
    if (!conv) return msg;
    return String(msg).replace(/(<=|>=|<|>)\s*(\d+)(?![\d.])/g, (m, op, v) => `${op} ${conv(v)}`);
  }

  function showErrors(fields, message, fromServer = false) {
    clearErrors();
    const rest = [];
    let first = null;
    for (const { field: name, message: msg } of fields) {
      const t = fieldFor(name);
      if (!t) {
        rest.push(`${name}: ${msg}`);
        continue;
      }
      const human = fromServer ? humanize(name, msg) : msg;
      t.err.textContent = t.err.textContent ? `${t.err.textContent}; ${human}` : human;
      if (human !== msg) t.err.title = msg;
      t.err.hidden = false;
      t.input.setAttribute('aria-invalid', 'true');
      if (name === 'channels' || /^channels/.test(name)) {
        for (const { box } of channelBoxes) box.setAttribute('aria-invalid', 'true');
      }
      first = first || t;
    }
    if (rest.length || (!fields.length && message)) {
      general.textContent = [message || 'Please correct the fields marked below.', ...rest].join(' — ');
      general.hidden = false;
    }
    if (first) {
      const det = first.input.closest('details');
      if (det) det.open = true;
      first.input.focus();
    } else if (!general.hidden) {
      general.scrollIntoView({ block: 'center' });
    }
  }

  // Reads the form into the API's input object. Throws {fields} when a value
  // cannot be converted; ranges are the server's to check.
  function collect() {
    const errs = [];
    const out = {};
    const val = (n) => (f[n] ? f[n].input.value.trim() : '');
    const conv = (n, fn) => {
      const s = val(n);
      if (s === '') return undefined;
      try {
        return fn(s);
      } catch (e) {
        if (!(e instanceof UnitError)) throw e;
        errs.push({ field: n, message: e.message });
        return undefined;
      }
    };
    const c = currency.value;
    const pct = type.value === 'percentage';
    if (f.code) {
      const code = val('code').toUpperCase();
      if (!code) errs.push({ field: 'code', message: 'required' });
      out.code = code;
    }
    if (val('description')) out.description = val('description');
    out.status = f.status.input.value;
    out.type = type.value;
    const v = conv('value', pct ? toBasisPoints : (s) => toMinor(s, c));
    if (val('value') === '') errs.push({ field: 'value', message: 'required' });
    out.value = v;
    const money = {};
    for (const n of ['max_discount', 'min_spend', 'max_spend']) {
      const m = conv(n, (s) => toMinor(s, c));
      if (m !== undefined) money[n] = m;
    }
    if (!pct || Object.keys(money).length || restrict.checked) out.currency = c;
    Object.assign(out, money);
    out.timezone = tz.value;
    if (val('starts_at')) out.starts_at_local = val('starts_at');
    if (val('expires_at')) out.expires_at_local = val('expires_at');
    for (const n of ['usage_limit', 'per_customer_limit']) {
      const m = conv(n, (s) => toInteger(s));
      if (m !== undefined) out[n] = m;
    }
    const channels = channelBoxes.filter((x) => x.box.checked).map((x) => x.c);
    if (channels.length) out.channels = channels;
    const tiers = splitList(val('tiers'));
    if (tiers.length) out.tiers = tiers;
    const tv = splitList(val('tier_values'));
    if (tv.length) {
      out.tier_values = {};
      for (const pair of tv) {
        const m = /^([^=:]+)[=:](.*)$/.exec(pair);
        if (!m || !m[1].trim()) {
          errs.push({ field: 'tier_values', message: `“${pair}” is not tier=value` });
          continue;
        }
        try {
          out.tier_values[m[1].trim()] = pct ? toBasisPoints(m[2]) : toMinor(m[2], c);
        } catch (e) {
          if (!(e instanceof UnitError)) throw e;
          errs.push({ field: 'tier_values', message: `${m[1].trim()}: ${e.message}` });
        }
      }
    }
    if (f.customer_id && val('customer_id')) out.customer_id = val('customer_id');
    const targets = {};
    for (const n of ['skus', 'categories', 'exclude_skus', 'exclude_categories']) {
      const l = splitList(val(`targets.${n}`));
      if (l.length) targets[n] = l;
    }
    const low = conv('targets.low_stock_max', (s) => toInteger(s));
    if (low !== undefined) targets.low_stock_max = low;
    const margin = conv('targets.max_margin_bp', toBasisPoints);
    if (margin !== undefined) targets.max_margin_bp = margin;
    if (Object.keys(targets).length) out.targets = targets;
    out.combinable = f.combinable.input.checked;
    const prio = val('priority') === '' ? 0n : conv('priority', (s) => toInteger(s));
    out.priority = prio === undefined ? 0n : prio;
    if (errs.length) {
      const e = new Error('invalid');
      e.fields = errs;
      throw e;
    }
    return out;
  }

  // Fills the fields from a Code object of the API (editing).
  function fill(code) {
    const set = (n, v) => {
      if (f[n] && v !== undefined && v !== null) f[n].input.value = String(v);
    };
    set('code', code.code);
    if (f.code) f.code.input.readOnly = true;
    set('description', code.description);
    set('status', code.status);
    type.value = code.type;
    if (code.currency) {
      if (![...currency.options].some((o) => o.value === code.currency)) {
        currency.append(h('option', { value: code.currency }, code.currency));
      }
      currency.value = code.currency;
    }
    const c = currency.value;
    const pct = code.type === 'percentage';
    set('value', pct ? fromBasisPoints(code.value) : fromMinor(code.value, c));
    for (const n of ['max_discount', 'min_spend', 'max_spend']) {
      if (code[n] !== undefined && code[n] !== null) set(n, fromMinor(code[n], c));
    }
    restrict.checked = pct && Boolean(code.currency) &&
      ['max_discount', 'min_spend', 'max_spend'].every((n) => code[n] === undefined || code[n] === null);
    const zone = code.timezone || 'UTC';
    if (![...tz.options].some((o) => o.value === zone)) tz.append(h('option', { value: zone }, zone));
    tz.value = zone;
    set('starts_at', toLocalInput(code.starts_at, zone));
    set('expires_at', toLocalInput(code.expires_at, zone));
    set('usage_limit', code.usage_limit);
    set('per_customer_limit', code.per_customer_limit);
    for (const { c: ch, box } of channelBoxes) box.checked = (code.channels || []).includes(ch);
    set('tiers', (code.tiers || []).join(', '));
    set('tier_values', Object.entries(code.tier_values || {})
      .map(([k, v]) => `${k}=${pct ? fromBasisPoints(v) : fromMinor(v, c)}`).join(', '));
    set('customer_id', code.customer_id);
    const t = code.targets || {};
    for (const n of ['skus', 'categories', 'exclude_skus', 'exclude_categories']) set(`targets.${n}`, (t[n] || []).join(', '));
    set('targets.low_stock_max', t.low_stock_max);
    if (t.max_margin_bp !== undefined && t.max_margin_bp !== null) set('targets.max_margin_bp', fromBasisPoints(t.max_margin_bp));
    f.combinable.input.checked = Boolean(code.combinable);
    set('priority', code.priority ?? 0);
    const adv = ['channels', 'tiers', 'tier_values', 'customer_id', 'targets'].some((n) => code[n] && Object.keys(code[n]).length) ||
      code.combinable || (code.priority && Number(code.priority) !== 0);
    advanced.open = Boolean(adv);
    units();
  }

  // One sentence saying what the code will do, updated as the form changes.
  function describe() {
    let b;
    try {
      b = collect();
    } catch (e) {
      summary.textContent = '';
      return;
    }
    if (b.value === undefined) {
      summary.textContent = '';
      return;
    }
    const c = b.currency || currency.value;
    const money = (v) => formatMoney(v, c);
    const parts = [];
    parts.push(b.type === 'percentage' ? `${fromBasisPoints(b.value)} % off` : `${money(b.value)} off`);
    if (b.tier_values) parts.push(`(${Object.entries(b.tier_values).map(([t, v]) => `${t}: ${b.type === 'percentage' ? fromBasisPoints(v) + ' %' : money(v)}`).join(', ')})`);
    if (b.max_discount !== undefined) parts.push(`at most ${money(b.max_discount)}`);
    if (b.min_spend !== undefined) parts.push(`on orders from ${money(b.min_spend)}`);
    if (b.max_spend !== undefined) parts.push(`up to ${money(b.max_spend)}`);
    if (b.targets) parts.push('on targeted items only');
    parts.push(b.channels ? `on ${b.channels.join(', ')}` : 'on every channel');
    if (b.customer_id) parts.push(`for customer ${b.customer_id} only`);
    else if (b.tiers) parts.push(`for ${b.tiers.join(', ')} customers`);
    if (b.starts_at_local || b.expires_at_local) {
      parts.push(`${b.starts_at_local ? 'from ' + b.starts_at_local.replace('T', ' ') : 'from now'}` +
        `${b.expires_at_local ? ' until ' + b.expires_at_local.replace('T', ' ') : ''} (${b.timezone})`);
    }
    if (b.usage_limit !== undefined) parts.push(`${b.usage_limit} uses in total`);
    if (b.per_customer_limit !== undefined) parts.push(`${b.per_customer_limit} per customer`);
    if (b.combinable) parts.push('combinable with other codes');
    const who = b.code ? `${b.code}: ` : '';
    summary.textContent = `${who}${parts.join(', ')}${b.status !== 'active' ? ` — created ${b.status}` : ''}.`;
  }
  root.addEventListener('input', describe);
  root.addEventListener('change', describe);

  return { collect, showErrors, clearErrors, fill: (code) => { fill(code); describe(); }, fields: f };
}

export async function codeFormView(root, ctx, editCode) {
  const editing = Boolean(editCode);
  let current = null;
  if (editing) current = await api.getCode(editCode);
  const done = h('div', { role: 'status', 'aria-live': 'polite' });
  const submit = h('button', { class: 'primary', type: 'submit' }, editing ? 'Save changes' : 'Create code');
  const form = h('form', { novalidate: true, 'aria-label': editing ? 'Edit code' : 'Create a code' });
  root.append(h('h1', {}, editing ? `Edit ${editCode}` : 'New code'), done, form);
  const fields = codeFields(form, {});
  form.append(h('div', { class: 'actions' }, submit,
    h('a', { class: 'button', href: editing ? `#/codes/${encodeURIComponent(editCode)}` : '#/codes' }, 'Cancel')));
  if (current) fields.fill(current);
  else fields.fields.code.input.focus();

  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    status(done, '');
    let body;
    try {
      body = fields.collect();
    } catch (x) {
      if (!x.fields) throw x;
      fields.showErrors(x.fields);
      return;
    }
    fields.clearErrors();
    submit.disabled = true;
    try {
      let saved;
      if (editing) {
        body.version = current.version;
        saved = await api.updateCode(editCode, body);
        current = saved;
      } else {
        saved = await api.createCode(body);
      }
      const link = h('a', { href: `#/codes/${encodeURIComponent(saved.code)}` }, saved.code);
      clearNotice(done);
      done.className = 'notice ok';
      done.dataset.testid = 'saved';
      done.append(editing ? 'Saved ' : 'Created ', link, editing ? ` (version ${saved.version}).` : '. ');
      if (!editing) {
        done.append(h('a', { href: '#/codes/new', onclick: (ev) => { ev.preventDefault(); ctx.go('#/codes/new'); } },
          'Create another'));
        fields.fields.code.input.value = '';
      }
      done.hidden = false;
      done.scrollIntoView({ block: 'center' });
    } catch (x) {
      if (x instanceof ApiError && x.status === 422) {
        fields.showErrors(x.fields, x.message, true);
      } else if (x instanceof ApiError && x.status === 409) {
        fields.showErrors(editing ? [] : [{ field: 'code', message: 'this code already exists' }],
          editing ? 'Someone changed this code since you opened it. Reload the page to edit the latest version.' : x.message);
      } else {
        fields.showErrors([], x.message);
      }
    } finally {
      submit.disabled = false;
    }
  });
}

function clearNotice(el) {
  while (el.firstChild) el.removeChild(el.firstChild);
}
