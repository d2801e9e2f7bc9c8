import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createLogger } from '../../src/log.js';

const now = () => new Date('2026-01-02T03:04:05.000Z');

test('text lines: time, level, message, key=value (quoted when needed)', () => {
  const lines: string[] = [];
  const log = createLogger({ format: 'text', write: (l) => lines.push(l), now });
  log.info('closed', { rule: 'web', reason: 'eof', bytes: 12n, note: 'two words', skipped: undefined });
  assert.deepEqual(lines, ['2026-01-02T03:04:05.000Z info closed rule=web reason=eof bytes=12 note="two words"']);
});

test('json lines: one object per event, bigint as string', () => {
  const lines: string[] = [];
  const log = createLogger({ format: 'json', write: (l) => lines.push(l), now });
  log.warn('connect_failed', { rule: 'web', code: 'ECONNREFUSED', bytes: 5n });
  assert.deepEqual(JSON.parse(lines[0]!), {
    time: '2026-01-02T03:04:05.000Z',
    level: 'warn',
    msg: 'connect_failed',
    rule: 'web',
    code: 'ECONNREFUSED',
    bytes: '5',
  });
});

test('lines below the chosen level are dropped', () => {
  const lines: string[] = [];
  const log = createLogger({ format: 'text', level: 'warn', write: (l) => lines.push(l), now });
  log.info('connected');
  log.warn('connect_failed');
  log.error('engine_error');
  assert.deepEqual(lines.map((l) => l.split(' ')[1]), ['warn', 'error']);
});
