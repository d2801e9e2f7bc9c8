import { test } from 'node:test';
import assert from 'node:assert/strict';
import { logEngineEvent } from '../../src/engine-log.js';
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

test('engine events: the closed line says where the connection ended up', () => {
  const lines: string[] = [];
  const log = createLogger({ format: 'text', write: (l) => lines.push(l), now });
  logEngineEvent(
    log,
    { type: 'closed', ruleId: 1, connId: 7, client: '127.0.0.1:5000', originalDst: '127.0.0.2:80', upstream: '127.0.0.1:9000', datapath: 'copy', reason: 'eof', bytesToUpstream: 10, bytesToClient: 20, durationMs: 1.234 },
    new Map([[1, 'web']]),
  );
  assert.deepEqual(lines, [
    '2026-01-02T03:04:05.000Z info closed rule=web conn=7 client=127.0.0.1:5000 dst=127.0.0.2:80 upstream=127.0.0.1:9000 datapath=copy reason=eof bytes_to_upstream=10 bytes_to_client=20 duration_ms=1.2',
  ]);
});
