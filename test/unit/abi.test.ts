import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ACL_LIST, POLICY, encodeAclKey, encodeBindKey, encodeBindValue, encodeRulePolicy, encodeSettings, encodeU32Key, sumRuleStats, BIND_KEY_SIZE } from '../../src/abi.js';
import type { Binding } from '../../src/rules/compile.js';
import { parsePrefix, type Prefix } from '../../src/rules/ip.js';

const binding = (prefix: string, port: number, portBits: number, ruleId = 7): Binding => ({
  protocol: 6,
  prefix: parsePrefix(prefix) as Prefix,
  port,
  portBits,
  ruleId,
});

test('bind_key for an IPv4 host and exact port is byte-exact', () => {
  const key = encodeBindKey(binding('127.0.0.2/32', 8080, 16));
  assert.equal(key.length, BIND_KEY_SIZE);
  // prefixlen 32+128 LE | proto 6 | port_bits 16 | port 8080 BE | ::ffff:127.0.0.2
  assert.equal(key.toString('hex'), 'a0000000' + '06' + '10' + '1f90' + '00000000000000000000ffff7f000002');
});

test('bind_key for an IPv6 prefix and port block is byte-exact', () => {
  const key = encodeBindKey(binding('2001:db8::/32', 8080, 13));
  assert.equal(key.toString('hex'), '40000000' + '06' + '0d' + '1f90' + '20010db8000000000000000000000000');
});

test('bind_key for any address, any port', () => {
  const key = encodeBindKey(binding('0.0.0.0/0', 0, 0));
  assert.equal(key.toString('hex'), '80000000' + '06' + '00' + '0000' + '00000000000000000000ffff00000000');
});

test('bind_value, settings, u32 keys', () => {
  assert.equal(encodeBindValue(binding('10.0.0.0/8', 80, 16, 258)).toString('hex'), '02010000' + '68000000');
  assert.equal(encodeSettings((1 << 16) | (1 << 13)).toString('hex'), '00200100' + '00000000');
  assert.equal(encodeU32Key(3).toString('hex'), '03000000');
});

test('encoders write in place for packed bulk buffers', () => {
  const keys = Buffer.alloc(2 * BIND_KEY_SIZE);
  encodeBindKey(binding('127.0.0.2/32', 80, 16), keys, 0);
  encodeBindKey(binding('127.0.0.3/32', 81, 16), keys, BIND_KEY_SIZE);
  assert.deepEqual(keys.subarray(0, BIND_KEY_SIZE), encodeBindKey(binding('127.0.0.2/32', 80, 16)));
  assert.deepEqual(keys.subarray(BIND_KEY_SIZE), encodeBindKey(binding('127.0.0.3/32', 81, 16)));
});

test('rule_stats are summed across CPUs', () => {
  const cpu = (n: bigint) => {
    const b = Buffer.alloc(88);
    for (let i = 0; i < 11; i++) b.writeBigUInt64LE(n * BigInt(i + 1), i * 8);
    return b;
  };
  assert.deepEqual(sumRuleStats([cpu(1n), cpu(10n)]), {
    lookups: 11n,
    steered: 22n,
    droppedNoSocket: 33n,
    bytesToUpstream: 44n,
    bytesToClient: 55n,
    redirectFailed: 66n,
    paused: 77n,
    bytesPassed: 88n,
    denied: 99n,
    denialsUnreported: 110n,
    intercepted: 121n,
  });
});

test('acl_key: scope, list and pad always count, then the client prefix', () => {
  const v4 = encodeAclKey(0, ACL_LIST.deny, parsePrefix('10.0.0.0/8') as Prefix);
  // prefixlen 64+104 LE | scope 0 | list 2 | pad | ::ffff:10.0.0.0
  assert.equal(v4.toString('hex'), 'a8000000' + '00000000' + '02000000' + '00000000000000000000ffff0a000000');
  const v6 = encodeAclKey(258, ACL_LIST.allow, parsePrefix('2001:db8::/32') as Prefix);
  assert.equal(v6.toString('hex'), '60000000' + '02010000' + '01000000' + '20010db8000000000000000000000000');
  assert.equal(encodeRulePolicy(POLICY.hasAllow | POLICY.pass).toString('hex'), '05000000' + '00000000');
});
