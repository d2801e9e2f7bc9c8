import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseDuration, parseSize } from '../../src/config/units.js';

test('sizes: binary and decimal units, plain numbers', () => {
  const cases: [unknown, number][] = [
    [0, 0],
    [65536, 65536],
    ['512', 512],
    ['100B', 100],
    ['4KiB', 4096],
    ['4MiB', 4 * 2 ** 20],
    ['1GiB', 2 ** 30],
    ['1.5MiB', 1.5 * 2 ** 20],
    ['4k', 4000],
    ['4M', 4_000_000],
    ['2 MiB', 2 * 2 ** 20],
    ['4mib', 4 * 2 ** 20],
  ];
  for (const [input, bytes] of cases) assert.deepEqual(parseSize(input), { ok: true, value: bytes }, String(input));
});

test('sizes: bad input says why', () => {
  assert.deepEqual(parseSize('4XB'), { ok: false, reason: "'4XB' is not a size" });
  assert.deepEqual(parseSize('MiB'), { ok: false, reason: "'MiB' is not a size" });
  assert.deepEqual(parseSize(-1), { ok: false, reason: '-1 is not a whole number of bytes' });
  assert.deepEqual(parseSize('1.1B'), { ok: false, reason: "'1.1B' is not a whole number of bytes" });
});

test('durations: units and compounds', () => {
  const cases: [unknown, number][] = [
    [0, 0],
    ['0', 0],
    ['250ms', 250],
    ['5s', 5000],
    ['1.5s', 1500],
    ['10m', 600_000],
    ['1h', 3_600_000],
    ['1m30s', 90_000],
  ];
  for (const [input, ms] of cases) assert.deepEqual(parseDuration(input), { ok: true, value: ms }, String(input));
});

test('durations: bad input says why', () => {
  assert.deepEqual(parseDuration(5), { ok: false, reason: '5 has no unit' });
  assert.deepEqual(parseDuration('5 sec'), { ok: false, reason: "'5 sec' is not a duration" });
  assert.deepEqual(parseDuration('s'), { ok: false, reason: "'s' is not a duration" });
  assert.deepEqual(parseDuration(''), { ok: false, reason: "'' is not a duration" });
});
