import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BIND_KEY_SIZE, BIND_VALUE_SIZE } from '../../src/abi.js';
import { compileBindings } from '../../src/rules/compile.js';
import { parsePrefix, type Prefix } from '../../src/rules/ip.js';
import { Steering, type MapOps } from '../../src/steering.js';
import type { SteerRule } from '../../src/config/types.js';

/** In-memory maps that record the order of writes and deletes. */
function fakeMaps() {
  const maps = new Map<number, Map<string, Buffer>>([
    [1, new Map()],
    [2, new Map()],
  ]);
  const log: string[] = [];
  const describe = (key: Buffer) => (key.length === BIND_KEY_SIZE ? `${key.readUInt32LE(0) - 32}/${key[5]}` : 'settings');
  const ops: MapOps = {
    mapKeys: (fd) => {
      log.push('read keys');
      return [...maps.get(fd)!.keys()].map((k) => Buffer.from(k, 'hex'));
    },
    mapLookup: (fd, key) => maps.get(fd)!.get(key.toString('hex')) ?? null,
    mapUpdate: (fd, key, value) => {
      maps.get(fd)!.set(key.toString('hex'), Buffer.from(value));
      log.push(`set ${describe(key)}`);
    },
    mapDelete: (fd, key) => {
      log.push(`del ${describe(key)}`);
      return maps.get(fd)!.delete(key.toString('hex'));
    },
    mapUpdateMany: (fd, keys, values, keySize, valueSize) => {
      for (let i = 0; i * keySize < keys.length; i++) {
        ops.mapUpdate(fd, keys.subarray(i * keySize, (i + 1) * keySize), values.subarray(i * valueSize, (i + 1) * valueSize));
      }
    },
  };
  return { ops, maps, log, fds: { bindings: 1, settings: 2 } };
}

function rule(name: string, destination: string, lo: number, hi: number): SteerRule {
  return {
    kind: 'steer',
    name,
    protocol: 'tcp',
    destinations: [parsePrefix(destination) as Prefix],
    ports: [{ lo, hi }],
    targets: [{ host: '127.0.0.1', port: 1 }],
    balance: 'failover',
    connectTimeoutMs: 1000,
    idleTimeoutMs: 0,
    source: 'test',
  };
}

test('first load: most specific first, then settings', () => {
  const { ops, log, fds, maps } = fakeMaps();
  const compiled = compileBindings([rule('wide', '10.0.0.0/8', 0, 65535), rule('host', '10.0.0.1', 80, 80)], new Map([['wide', 1], ['host', 2]]));
  assert.deepEqual(new Steering(ops, fds).apply(compiled), { added: 2, changed: 0, removed: 0, unchanged: 0 });
  assert.deepEqual(log, ['read keys', 'set 128/16', 'set 104/0', 'set settings']);
  assert.equal(maps.get(2)!.get('00000000')!.readUInt32LE(0), (1 << 16) | 1);
});

test('reload: unchanged entries are left alone, changed rewritten, stale removed least specific first', () => {
  const { ops, log, fds, maps } = fakeMaps();
  const ids = new Map([['a', 1], ['b', 2], ['c', 3]]);
  const steering = new Steering(ops, fds);
  steering.apply(compileBindings([rule('a', '10.0.0.0/8', 80, 80), rule('b', '10.1.0.0/16', 80, 80), rule('c', '10.1.1.1', 80, 80)], ids));
  log.length = 0;
  const next = compileBindings([rule('c', '10.1.1.1', 80, 80), rule('a', '10.2.0.0/16', 80, 80)], ids);
  assert.deepEqual(steering.apply(next), { added: 1, changed: 0, removed: 2, unchanged: 1 });
  assert.deepEqual(log, ['set 112/16', 'del 104/16', 'del 112/16', 'set settings']);
  assert.equal(maps.get(1)!.size, 2);

  log.length = 0;
  const renumbered = compileBindings([rule('c', '10.1.1.1', 80, 80), rule('a', '10.2.0.0/16', 80, 80)], new Map([['c', 9], ['a', 1]]));
  assert.deepEqual(steering.apply(renumbered), { added: 0, changed: 1, removed: 0, unchanged: 1 });
  const value = [...maps.get(1)!.values()].map((v) => v.readUInt32LE(0)).sort();
  assert.deepEqual(value, [1, 9]);
  assert.equal([...maps.get(1)!.values()][0]!.length, BIND_VALUE_SIZE);
});

test('100k rules go to the kernel in one batch call', () => {
  const { ops, fds } = fakeMaps();
  const batches: number[] = [];
  const counting: MapOps = { ...ops, mapUpdateMany: (fd, keys, values, keySize, valueSize) => (batches.push(keys.length / keySize), ops.mapUpdateMany(fd, keys, values, keySize, valueSize)) };
  const rules = Array.from({ length: 100_000 }, (_, i) => rule(`r${i}`, `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`, 8000, 8000));
  const ids = new Map(rules.map((r, i) => [r.name, i + 1]));
  assert.equal(new Steering(counting, fds).apply(compileBindings(rules, ids)).added, 100_000);
  assert.deepEqual(batches, [100_000]);
});

test('a new instance diffs against what the kernel map already holds', () => {
  const { ops, log, fds } = fakeMaps();
  const ids = new Map([['a', 1], ['b', 2]]);
  new Steering(ops, fds).apply(compileBindings([rule('a', '10.0.0.0/8', 80, 80), rule('b', '10.1.0.0/16', 80, 80)], ids));
  log.length = 0;
  const changes = new Steering(ops, fds).apply(compileBindings([rule('b', '10.1.0.0/16', 80, 80)], ids));
  assert.deepEqual(changes, { added: 0, changed: 0, removed: 1, unchanged: 1 });
  assert.deepEqual(log, ['read keys', 'del 104/16', 'set settings']);
});

test('after a failed write the next apply re-reads the kernel', () => {
  const { ops, log, fds } = fakeMaps();
  const steering = new Steering(ops, fds);
  const compiled = compileBindings([rule('a', '10.0.0.0/8', 80, 80)], new Map([['a', 1]]));
  steering.apply(compiled);
  log.length = 0;
  steering.apply(compiled);
  assert.deepEqual(log, ['set settings'], 'second apply trusts what it wrote');
  const flaky = new Steering({ ...ops, mapDelete: () => assert.fail('EPERM') }, fds);
  flaky.apply(compiled);
  assert.throws(() => flaky.apply(compileBindings([], new Map())), /EPERM/);
  log.length = 0;
  flaky.apply(compiled);
  assert.equal(log[0], 'read keys');
});
