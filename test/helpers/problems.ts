/** The problem lines a config reader gives (it must fail with ERR_BPFREDIR_CONFIG, one line each). */
import assert from 'node:assert/strict';
import { BpfredirError } from '../../src/errors.js';

export function configProblems(read: () => unknown): string[] {
  try {
    read();
  } catch (err) {
    assert.ok(err instanceof BpfredirError);
    assert.equal(err.code, 'ERR_BPFREDIR_CONFIG');
    assert.equal(err.message, err.problems.join('\n'));
    return [...err.problems];
  }
  assert.fail('config was accepted');
}
