import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { lockNetns } from '../../src/netns-lock.js';

test('one holder per network namespace; released locks can be taken again', async () => {
  const name = `bpfredir-test/${randomBytes(6).toString('hex')}`;
  const first = await lockNetns(name);
  await assert.rejects(lockNetns(name), {
    code: 'ERR_BPFREDIR_ALREADY_RUNNING',
    message: `another bpfredir is running in this network namespace (it holds the lock @${name}); stop it first`,
  });
  await first.release();
  const again = await lockNetns(name);
  await again.release();
});
