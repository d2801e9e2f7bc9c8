import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { encodeLine, parseRequest, parseResponse, readLines } from '../../src/admin/protocol.js';

test('a request is one JSON object with a known cmd', () => {
  for (const cmd of ['status', 'rules', 'conns', 'reload'] as const) {
    assert.deepEqual(parseRequest(encodeLine({ cmd }).trim()), { cmd });
  }
  assert.deepEqual(parseRequest('{"cmd":"status","extra":1}'), { cmd: 'status' }, 'unknown fields are ignored');
  assert.deepEqual(parseRequest('{"cmd":"stop"}'), { ok: false, error: 'unknown command "stop"; one of status, rules, conns, reload' });
  assert.deepEqual(parseRequest('{}'), { ok: false, error: 'unknown command null; one of status, rules, conns, reload' });
  assert.deepEqual(parseRequest('null'), { ok: false, error: 'unknown command null; one of status, rules, conns, reload' });
  assert.deepEqual(parseRequest('status'), { ok: false, error: 'a request is one JSON object per line, e.g. {"cmd":"status"}; got "status"' });
});

test('a response is ok with its payload, or a failure with an error; anything else throws', () => {
  assert.deepEqual(parseResponse('{"ok":true,"changes":[]}'), { ok: true, changes: [] });
  assert.deepEqual(parseResponse('{"ok":false,"error":"bad","code":"ERR_BPFREDIR_CONFIG"}'), { ok: false, error: 'bad', code: 'ERR_BPFREDIR_CONFIG' });
  assert.throws(() => parseResponse('{"ok":false}'), /not an admin response/);
  assert.throws(() => parseResponse('{"status":{}}'), /not an admin response/);
  assert.throws(() => parseResponse('SSH-2.0-OpenSSH'), SyntaxError);
});

test('encodeLine ends every message with one newline and has none inside', () => {
  const line = encodeLine({ ok: false, error: 'two\nlines' });
  assert.equal(line, '{"ok":false,"error":"two\\nlines"}\n');
});

test('readLines: lines split across chunks, several in one chunk, blank lines skipped', () => {
  const stream = new PassThrough();
  const lines: string[] = [];
  readLines(stream, 100, (line) => lines.push(line));
  stream.write('{"cmd":"st');
  stream.write('atus"}\n\n{"cmd":"rules"}\n{"cmd"');
  stream.write(':"conns"}\n');
  assert.deepEqual(lines, ['{"cmd":"status"}', '{"cmd":"rules"}', '{"cmd":"conns"}']);
});

test('readLines: a line longer than the limit destroys the stream', async () => {
  const stream = new PassThrough();
  const lines: string[] = [];
  readLines(stream, 8, (line) => lines.push(line));
  const failed = new Promise<Error>((resolve) => stream.once('error', resolve));
  stream.write('short\n0123456789');
  assert.equal((await failed).message, 'line longer than 8 bytes');
  assert.deepEqual(lines, ['short']);
});
