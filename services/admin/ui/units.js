// Human units <-> the API's integers, exactly. Money and percentages are
// parsed as strings into BigInt: no floating point ever touches them.
//   money:       "5.00" USD -> 500 minor units ("5" and "5,00" too)
//   percentage:  "12.5" %   -> 1250 basis points
// Pure functions (no DOM): the browser tests also import this module in Node.

// ISO 4217 minor-unit exponents that are not 2.
const DIGITS = {
  BIF: 0, CLP: 0, DJF: 0, GNF: 0, ISK: 0, JPY: 0, KMF: 0, KRW: 0, PYG: 0,
  RWF: 0, UGX: 0, UYI: 0, VND: 0, VUV: 0, XAF: 0, XOF: 0, XPF: 0,
  BHD: 3, IQD: 3, JOD: 3, KWD: 3, LYD: 3, OMR: 3, TND: 3,
  CLF: 4, UYW: 4,
};

export const CURRENCIES = [
  'USD', 'EUR', 'GBP', 'CAD', 'AUD', 'NZD', 'CHF', 'JPY', 'CNY', 'HKD', 'SGD',
  'INR', 'SEK', 'NOK', 'DKK', 'PLN', 'CZK', 'HUF', 'RON', 'BRL', 'MXN', 'ZAR',
  'AED', 'SAR', 'TRY', 'KRW', 'ILS', 'KWD', 'BHD',
];

// Region of the browser's locale -> its currency (the preselected one).
const REGION_CURRENCY = {
  US: 'USD', GB: 'GBP', CA: 'CAD', AU: 'AUD', NZ: 'NZD', CH: 'CHF', JP: 'JPY',
  CN: 'CNY', HK: 'HKD', SG: 'SGD', IN: 'INR', SE: 'SEK', NO: 'NOK', DK: 'DKK',
  PL: 'PLN', CZ: 'CZK', HU: 'HUF', RO: 'RON', BR: 'BRL', MX: 'MXN', ZA: 'ZAR',
  AE: 'AED', SA: 'SAR', TR: 'TRY', KR: 'KRW', IL: 'ILS', KW: 'KWD', BH: 'BHD',
  AT: 'EUR', BE: 'EUR', CY: 'EUR', DE: 'EUR', EE: 'EUR', ES: 'EUR', FI: 'EUR',
  FR: 'EUR', GR: 'EUR', HR: 'EUR', IE: 'EUR', IT: 'EUR', LT: 'EUR', LU: 'EUR',
  LV: 'EUR', MT: 'EUR', NL: 'EUR', PT: 'EUR', SI: 'EUR', SK: 'EUR',
};

export const MAX_VALUE = 10n ** 15n; // PRICING_SPEC section 3

export function currencyDigits(currency) {
  const c = String(currency || '').toUpperCase();
  return Object.prototype.hasOwnProperty.call(DIGITS, c) ? DIGITS[c] : 2;
}

export function currencyForLocale(locale) {
  const m = /[-_]([A-Za-z]{2})(?:$|[-_])/.exec(String(locale || ''));
  return (m && REGION_CURRENCY[m[1].toUpperCase()]) || 'USD';
}

export class UnitError extends Error {}

// Parses a non-negative decimal written by a person into an integer scaled by
// 10^digits. Accepts "1234.5", "1,234.50", "1.234,50", "5,00", " 5 ".
// Throws UnitError with a message fit for the field.
export function parseScaled(text, digits, what = 'a number') {
  let s = String(text ?? '').trim().replace(/[\s\u00a0\u202f_']/g, '');
  if (s === '') throw new UnitError('required');
  if (s.startsWith('+')) s = s.slice(1);
  if (s.startsWith('-')) throw new UnitError(`must not be negative`);
  if (!/^[0-9.,]+$/.test(s)) throw new UnitError(`must be ${what}, e.g. ${example(digits)}`);
  const dots = (s.match(/\./g) || []).length;
  const commas = (s.match(/,/g) || []).length;
  let intPart = s;
  let frac = '';
  let decimal = null;
  if (dots && commas) {
    decimal = s.lastIndexOf('.') > s.lastIndexOf(',') ? '.' : ',';
  } else if (dots === 1) {
    decimal = '.';
  } else if (commas === 1) {
    decimal = ',';
  }
  if (decimal !== null && (decimal === '.' ? dots : commas) !== 1) {
    throw new UnitError(`must be ${what}, e.g. ${example(digits)}`);
  }
  if (decimal !== null) {
    const at = s.lastIndexOf(decimal);
    intPart = s.slice(0, at);
    frac = s.slice(at + 1);
    if (!/^[0-9]*$/.test(frac)) throw new UnitError(`must be ${what}, e.g. ${example(digits)}`);
  }
  const group = decimal === ',' ? '.' : ',';
  if (intPart.includes(group) || (decimal === null && (dots || commas))) {
    // Thousands grouping: 1,234,567 (groups of three after the first).
    if (!/^[0-9]{1,3}([.,][0-9]{3})+$/.test(intPart)) {
      throw new UnitError(`must be ${what}, e.g. ${example(digits)}`);
    }
    intPart = intPart.replace(/[.,]/g, '');
  }
  if (intPart === '' && frac === '') throw new UnitError(`must be ${what}, e.g. ${example(digits)}`);
  if (frac.length > digits) {
    // Trailing zeros beyond the precision are harmless ("5.000" USD).
    if (/^0*$/.test(frac.slice(digits))) {
      frac = frac.slice(0, digits);
    } else {
      throw new UnitError(
        digits === 0 ? 'takes no decimals' : `takes at most ${digits} decimal${digits > 1 ? 's' : ''}`);
    }
  }
  return BigInt(intPart || '0') * 10n ** BigInt(digits) + BigInt((frac + '0'.repeat(digits)).slice(0, digits) || '0');
}

function example(digits) {
  return digits === 0 ? '500' : '5.' + '0'.repeat(digits);
}

// "5.00" in USD -> 500n
export function toMinor(text, currency) {
  return parseScaled(text, currencyDigits(currency), 'an amount');
}

// "12.5" (%) -> 1250n basis points
export function toBasisPoints(text) {
  return parseScaled(text, 2, 'a percentage');
}

// A whole number (limits, counts, priority). Negative only when allowed.
export function toInteger(text, { negative = false } = {}) {
  const s = String(text ?? '').trim().replace(/[\s_]/g, '');
  if (s === '') throw new UnitError('required');
  if (!/^[+-]?[0-9]+$/.test(s)) throw new UnitError('must be a whole number');
  const n = BigInt(s);
  if (n < 0n && !negative) throw new UnitError('must not be negative');
  return n;
}

function scaledToText(value, digits, trim) {
  let n = BigInt(value);
  const neg = n < 0n;
  if (neg) n = -n;
  const base = 10n ** BigInt(digits);
  const int = (n / base).toString();
  let frac = digits ? (n % base).toString().padStart(digits, '0') : '';
  if (trim) frac = frac.replace(/0+$/, '');
  return (neg ? '-' : '') + int + (frac ? '.' + frac : '');
}

// 500 (USD) -> "5.00"; 5 (JPY) -> "5"
export function fromMinor(value, currency) {
  return scaledToText(value, currencyDigits(currency), false);
}

// 1250 -> "12.5"; 1000 -> "10"
export function fromBasisPoints(value) {
  return scaledToText(value, 2, true);
}

// For display: 123456 USD -> "1,234.56 USD"
export function formatMoney(value, currency) {
  if (value === null || value === undefined || value === '') return '';
  const t = fromMinor(value, currency);
  const [i, f] = t.split('.');
  const grouped = i.replace(/\B(?=(\d{3})+(?!\d))/g, ',');
  return grouped + (f ? '.' + f : '') + (currency ? ' ' + currency : '');
}

export function formatValue(code) {
  if (!code) return '';
  if (code.type === 'percentage') return fromBasisPoints(code.value) + ' %';
  return formatMoney(code.value, code.currency);
}

// JSON.stringify that writes BigInt as a plain JSON integer (exact at any size).
export function stringify(obj) {
  const marks = [];
  const s = JSON.stringify(obj, (k, v) => {
    if (typeof v === 'bigint') {
      marks.push(v.toString());
      return `\u0000bigint${marks.length - 1}\u0000`;
    }
    return v;
  });
  return s.replace(/"\\u0000bigint(\d+)\\u0000"/g, (m, i) => marks[Number(i)]);
}
