// The UI's unit conversions (services/admin/ui/units.js) in Node: human
// input to the API's integers, exactly, and back. No browser needed.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

// The UI ships plain ES modules with a .js name and no package.json around
// them; load the file as a module from its text.
const src = readFileSync(fileURLToPath(new URL('../../services/admin/ui/units.js', import.meta.url)), 'utf8');
const u = await import('data:text/javascript;base64,' + Buffer.from(src).toString('base64'));

test('money is parsed as a string into exact minor units', () => {
  assert.equal(u.toMinor('5.00', 'USD'), 500n);
  assert.equal(u.toMinor('5', 'USD'), 500n);
  assert.equal(u.toMinor('5.5', 'USD'), 550n);
  assert.equal(u.toMinor('0.07', 'USD'), 7n);
  assert.equal(u.toMinor('19.99', 'EUR'), 1999n);
  assert.equal(u.toMinor('5,00', 'EUR'), 500n);
  assert.equal(u.toMinor('1,234.56', 'USD'), 123456n);
  assert.equal(u.toMinor('1.234,56', 'EUR'), 123456n);
  assert.equal(u.toMinor(' 1 234,56 ', 'EUR'), 123456n);
  assert.equal(u.toMinor('0.29', 'USD'), 29n); // 0.29 * 100 is 28.999999999999996 in floating point
  assert.equal(u.toMinor('500', 'JPY'), 500n);
  assert.equal(u.toMinor('1.234', 'KWD'), 1234n);
  assert.equal(u.toMinor('5.000', 'USD'), 500n); // zeros beyond the precision are harmless
  assert.equal(u.toMinor('10000000000000.00', 'USD'), 10n ** 15n);
  assert.equal(u.toMinor('90071992547409.93', 'USD'), 9007199254740993n); // beyond 2^53, still exact
});

test('bad money input is refused with a message, never rounded', () => {
  for (const [s, cur] of [['1.005', 'USD'], ['5.5', 'JPY'], ['-1', 'USD'], ['abc', 'USD'], ['1.2.3', 'USD'],
    ['1,23,4', 'USD'], ['', 'USD'], ['1e3', 'USD'], ['0x10', 'USD']]) {
    assert.throws(() => u.toMinor(s, cur), u.UnitError, `${s} ${cur}`);
  }
});

test('percentages become basis points exactly', () => {
  assert.equal(u.toBasisPoints('10'), 1000n);
  assert.equal(u.toBasisPoints('12.5'), 1250n);
  assert.equal(u.toBasisPoints('12,5'), 1250n);
  assert.equal(u.toBasisPoints('0.01'), 1n);
  assert.equal(u.toBasisPoints('100'), 10000n);
  assert.equal(u.toBasisPoints('150'), 15000n); // out of range is the server's 422 to give
  assert.equal(u.toBasisPoints('33.33'), 3333n);
  assert.throws(() => u.toBasisPoints('33.333'), u.UnitError);
});

test('integers, and display back in human units', () => {
  assert.equal(u.toInteger('1000'), 1000n);
  assert.throws(() => u.toInteger('1.5'), u.UnitError);
  assert.throws(() => u.toInteger('-1'), u.UnitError);
  assert.equal(u.fromMinor(500, 'USD'), '5.00');
  assert.equal(u.fromMinor(7, 'USD'), '0.07');
  assert.equal(u.fromMinor(500, 'JPY'), '500');
  assert.equal(u.fromMinor(1234, 'KWD'), '1.234');
  assert.equal(u.fromBasisPoints(1250), '12.5');
  assert.equal(u.fromBasisPoints(1000), '10');
  assert.equal(u.fromBasisPoints(1), '0.01');
  assert.equal(u.formatMoney(123456789, 'USD'), '1,234,567.89 USD');
  assert.equal(u.formatValue({ type: 'percentage', value: 1250 }), '12.5 %');
  assert.equal(u.formatValue({ type: 'fixed', value: 500, currency: 'EUR' }), '5.00 EUR');
});

test('request bodies carry big integers as exact JSON numbers', () => {
  assert.equal(u.stringify({ value: 9007199254740993n, s: 'x', n: [1n] }), '{"value":9007199254740993,"s":"x","n":[1]}');
});

test('the preselected currency follows the browser locale', () => {
  assert.equal(u.currencyForLocale('en-US'), 'USD');
  assert.equal(u.currencyForLocale('fr-FR'), 'EUR');
  assert.equal(u.currencyForLocale('en-GB'), 'GBP');
  assert.equal(u.currencyForLocale('ja-JP'), 'JPY');
  assert.equal(u.currencyForLocale('en'), 'USD');
});
