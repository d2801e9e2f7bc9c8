import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { lockNetns } from '../../src/netns-lock.js';
import { fakeNative } from './fake-native.js';

const { native } = fakeNative();

function runDir(t: { after(fn: () => void): void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'bpfredir-lock-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return join(dir, 'run');
}

test('one holder per network namespace, named with its pid; released locks can be taken again', (t) => {
  const dir = runDir(t);
  const first = lockNetns(native, 42n, dir);
  assert.equal(first.path, `${dir}/netns-42.lock`);
  assert.equal(readFileSync(first.path, 'utf8'), `${process.pid}\n`);
  assert.throws(() => lockNetns(native, 42n, dir), {
    code: 'ERR_BPFREDIR_ALREADY_RUNNING',
    message: `another bpfredir (pid ${process.pid}) is running in this network namespace (it holds ${dir}/netns-42.lock); stop it first`,
  });
  const other = lockNetns(native, 43n, dir); // another netns
  other.release();
  first.release();
  first.release();
  assert.equal(existsSync(first.path), false, 'the holder removes the file');
  lockNetns(native, 42n, dir).release();
});

test('a run directory other users can write to is refused: they could take the lock first', (t) => {
  const dir = runDir(t);
  mkdirSync(dir, { mode: 0o777 });
  chmodSync(dir, 0o1777);
  assert.throws(() => lockNetns(native, 42n, dir), {
    code: 'ERR_BPFREDIR_PRIVILEGES',
    message: `${dir} is writable by other users (mode 1777), who could take bpfredir's lock or admin socket; chmod 0700 ${dir}`,
  });
});

test('a run directory that cannot be created is one error line', (t) => {
  const file = `${runDir(t)}-file`;
  writeFileSync(file, '');
  t.after(() => rmSync(file, { force: true }));
  assert.throws(() => lockNetns(native, 42n, `${file}/run`), { code: 'ERR_BPFREDIR_RUNTIME', message: new RegExp(`^cannot create ${file}/run: ENOTDIR`) });
});
