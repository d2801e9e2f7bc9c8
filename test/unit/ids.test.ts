import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RuleIds } from '../../src/rules/ids.js';

test('ids start at 1 in config order', () => {
  const ids = new RuleIds();
  assert.deepEqual([...ids.assign(['web', 'api', 'db'])], [
    ['web', 1],
    ['api', 2],
    ['db', 3],
  ]);
});

test('a reload keeps ids by name, whatever the order', () => {
  const ids = new RuleIds();
  ids.assign(['web', 'api', 'db']);
  assert.deepEqual([...ids.assign(['db', 'web', 'api'])], [
    ['db', 3],
    ['web', 1],
    ['api', 2],
  ]);
});

test('a freed id is not reused in the same reload, but is in the next', () => {
  const ids = new RuleIds();
  ids.assign(['web', 'api', 'db']);
  const second = ids.assign(['web', 'db', 'new']);
  assert.deepEqual([...second], [
    ['web', 1],
    ['db', 3],
    ['new', 4],
  ]);
  assert.equal(ids.assign(['web', 'db', 'new', 'newer']).get('newer'), 2);
});
