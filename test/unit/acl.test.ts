import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ACL_LIST, POLICY, encodeAclKey } from '../../src/abi.js';
import { AccessLists } from '../../src/access-lists.js';
import { configFromObject } from '../../src/config/load.js';
import { compileAcls, guardedListenRules, listenPrefix, usesAcls, withListenBindings } from '../../src/rules/acl.js';
import { formatPrefix, parsePrefix, type Prefix } from '../../src/rules/ip.js';

const target = '127.0.0.1:9000';
const config = (extra: object) =>
  configFromObject(
    {
      ...extra,
      rules: [
        { name: 'web', listen: '0.0.0.0:8080', target, allow: ['10.0.0.0/8', '::ffff:192.168.0.0/112'] },
        { name: 'api', listen: '[::]:8443', target },
        { name: 'steer', destination: '192.0.2.0/24', ports: 80, target, deny: '198.51.100.7' },
      ],
    },
    'test',
  );
const ids = new Map([['web', 1], ['api', 2], ['steer', 3]]);

test('config: allow and deny at the top and per rule; IPv4-mapped is read as the IPv4 prefix', () => {
  const c = config({ deny: ['203.0.113.0/24', '2001:db8::/32'] });
  assert.deepEqual(c.acl?.deny.map(formatPrefix), ['203.0.113.0/24', '2001:db8::/32']);
  assert.deepEqual(c.rules[0]!.acl?.allow.map((p) => `${p.addr.toString('hex')}/${p.len}`), [
    `00000000000000000000ffff0a000000/104`,
    `00000000000000000000ffffc0a80000/112`,
  ]);
  assert.equal(c.rules[1]!.acl, undefined);
  assert.ok(usesAcls(c));
  assert.ok(!usesAcls(configFromObject({ rules: [{ name: 'a', listen: '127.0.0.1:1', target }] }, 'test')));
});

test('config: a bad list entry is one located line', () => {
  assert.throws(
    () => configFromObject({ rules: [{ name: 'web', listen: '0.0.0.0:8080', target, allow: ['10.0.0.0/33'] }] }, 'cfg'),
    (err: Error) => /^cfg: rule 'web': allow: .*10\.0\.0\.0\/33.*write client prefixes, e\.g\. 10\.0\.0\.0\/8/.test(err.message) && !err.message.includes('\n'),
  );
  assert.throws(() => configFromObject({ deny: [], rules: [{ name: 'a', listen: '127.0.0.1:1', target }] }, 'cfg'), /deny: empty list/);
});

test('compile: one entry per prefix and list, flags per scope; listen rules a list applies to pass', () => {
  const compiled = compileAcls(config({ deny: '203.0.113.0/24' }), ids);
  const entries = compiled.entries.map((e) => `${e.scope} ${e.list === ACL_LIST.allow ? 'allow' : 'deny'} ${formatPrefix(e.prefix)}`);
  assert.deepEqual(entries.sort(), ['0 deny 203.0.113.0/24', '1 allow 10.0.0.0/8', '1 allow 192.168.0.0/16', '3 deny 198.51.100.7/32']);
  assert.deepEqual([...compiled.policies].sort(), [
    [0, POLICY.hasDeny],
    [1, POLICY.hasAllow | POLICY.pass],
    [2, POLICY.pass], // no list of its own, but the global one applies
    [3, POLICY.hasDeny],
  ]);
  // Without global lists only the rule that has one is guarded.
  assert.deepEqual(guardedListenRules(config({})).map((r) => r.name), ['web']);
  assert.deepEqual([...compileAcls(config({}), ids).policies.keys()].sort(), [1, 3]);
});

test('listen bindings: what the bind address covers, exact port', () => {
  const show = (host: string) => formatPrefix(listenPrefix(host));
  assert.equal(show('0.0.0.0'), '0.0.0.0/0');
  assert.equal(show('::'), '::/0');
  assert.equal(show('10.1.2.3'), '10.1.2.3/32');
  assert.equal(show('2001:db8::1'), '2001:db8::1/128');
  const c = config({ deny: '203.0.113.0/24' });
  const listens = guardedListenRules(c).map((rule) => ({ rule, id: ids.get(rule.name)! }));
  const equalKey = { protocol: 6, prefix: parsePrefix('::/0') as Prefix, port: 8443, portBits: 16, ruleId: 3 };
  const out = withListenBindings({ bindings: [equalKey], portBitsMask: 1 << 16 }, listens);
  assert.deepEqual(out.bindings.map((b) => `${formatPrefix(b.prefix)}:${b.port}/${b.portBits} → ${b.ruleId}`), ['0.0.0.0/0:8080/16 → 1', '::/0:8443/16 → 2']);
});

/** Records map writes as readable lines. */
function recorder() {
  const calls: string[] = [];
  const aclText = (key: Buffer) => {
    const scope = key.readUInt32LE(4);
    const list = key.readUInt8(8) === ACL_LIST.allow ? 'allow' : 'deny';
    const len = key.readUInt32LE(0) - 64;
    const prefix = formatPrefix({ addr: key.subarray(12, 28), len, family: key.subarray(12, 24).equals(Buffer.from('00000000000000000000ffff', 'hex')) && len >= 96 ? 4 : 6 });
    return `${scope} ${list} ${prefix}`;
  };
  const ops = {
    mapUpdateMany(_fd: number, keys: Buffer) {
      for (let i = 0; i < keys.length; i += 28) calls.push(`add ${aclText(keys.subarray(i, i + 28))}`);
    },
    mapDelete(_fd: number, key: Buffer) {
      calls.push(`delete ${aclText(key)}`);
      return true;
    },
    mapUpdate(_fd: number, key: Buffer, value: Buffer) {
      calls.push(`policy ${key.readUInt32LE(0)} = ${value.readUInt32LE(0)}`);
    },
  };
  return { calls, lists: new AccessLists(ops, { acl: 1, policy: 2 }) };
}

test('AccessLists: prefixes before the flags that consult them; stale ones only after commit', () => {
  const { calls, lists } = recorder();
  const first = config({});
  lists.stage(compileAcls(first, ids));
  assert.deepEqual(calls.splice(0), ['add 1 allow 10.0.0.0/8', 'add 1 allow 192.168.0.0/16', 'add 3 deny 198.51.100.7/32', `policy 1 = ${POLICY.hasAllow | POLICY.pass}`, `policy 3 = ${POLICY.hasDeny}`]);
  lists.commit();
  assert.deepEqual(calls.splice(0), []);

  // web's allow list changes, steer's deny goes: the union holds until commit.
  const next = configFromObject(
    {
      rules: [
        { name: 'web', listen: '0.0.0.0:8080', target, allow: ['10.0.0.0/8', '172.16.0.0/12'] },
        { name: 'api', listen: '[::]:8443', target },
        { name: 'steer', destination: '192.0.2.0/24', ports: 80, target },
      ],
    },
    'test',
  );
  lists.stage(compileAcls(next, ids));
  assert.deepEqual(calls.splice(0), ['add 1 allow 172.16.0.0/12']);
  lists.commit();
  assert.deepEqual(calls.splice(0), ['policy 3 = 0', 'delete 1 allow 192.168.0.0/16', 'delete 3 deny 198.51.100.7/32']);
  assert.equal(lists.size, 2);
});

test('AccessLists: a listen rule keeps "pass" until commit, while its old binding may still name it', () => {
  const { calls, lists } = recorder();
  lists.stage(compileAcls(config({ deny: '203.0.113.0/24' }), ids));
  lists.commit();
  calls.splice(0);
  lists.stage(compileAcls(config({}), ids)); // the global list goes: api is no longer guarded
  assert.ok(!calls.includes('policy 2 = 0'), 'pass kept while staged');
  lists.commit();
  assert.deepEqual(calls.splice(0), ['policy 0 = 0', 'policy 2 = 0', `delete 0 deny 203.0.113.0/24`]);
});

test('acl keys of the same prefix in different scopes or lists differ', () => {
  const p = parsePrefix('10.0.0.0/8') as Prefix;
  assert.notDeepEqual(encodeAclKey(0, ACL_LIST.deny, p), encodeAclKey(1, ACL_LIST.deny, p));
  assert.notDeepEqual(encodeAclKey(1, ACL_LIST.allow, p), encodeAclKey(1, ACL_LIST.deny, p));
});

test('accept_proxy: the trusted peers are a list of their own; the rule is guarded and proxied', () => {
  const c = configFromObject(
    { deny: '203.0.113.0/24', rules: [{ name: 'lb', listen: '0.0.0.0:8080', target, accept_proxy: ['10.9.0.0/24', '2001:db8:9::/64'], allow: '192.168.0.0/16' }] },
    'test',
  );
  assert.ok(usesAcls(c));
  assert.deepEqual(guardedListenRules(c).map((r) => r.name), ['lb']);
  const compiled = compileAcls(c, new Map([['lb', 1]]));
  const name = (list: number) => Object.entries(ACL_LIST).find(([, v]) => v === list)![0];
  assert.deepEqual(compiled.entries.map((e) => `${e.scope} ${name(e.list)} ${formatPrefix(e.prefix)}`).sort(), [
    '0 deny 203.0.113.0/24',
    '1 allow 192.168.0.0/16',
    '1 trusted 10.9.0.0/24',
    '1 trusted 2001:db8:9::/64',
  ]);
  // sk_lookup judges only the peer (trusted); the allow list waits for the header's client.
  assert.equal(compiled.policies.get(1), POLICY.hasAllow | POLICY.pass | POLICY.proxied);
  // Alone, accept_proxy still needs sk_lookup: the trusted list is enforced there.
  assert.ok(usesAcls(configFromObject({ rules: [{ name: 'lb', destination: '192.0.2.0/24', ports: 80, target, accept_proxy: '10.9.0.1' }] }, 'test')));
});

test('accept_proxy: mistakes are one located line each', () => {
  const problem = (rule: object) => {
    try {
      configFromObject({ rules: [{ name: 'lb', target, ...rule }] }, 'cfg');
    } catch (err) {
      return (err as Error).message;
    }
    return 'accepted';
  };
  assert.match(problem({ listen: '127.0.0.1:80', accept_proxy: [] }), /accept_proxy: empty list/);
  assert.match(problem({ listen: '127.0.0.1:80', accept_proxy: '10.0.0.0/33' }), /^cfg: rule 'lb': accept_proxy: .*write the load balancers' prefixes/);
  assert.match(
    problem({ intercept: '0.0.0.0/0', ports: 80, interfaces: 'eth0', accept_proxy: '10.0.0.1' }),
    /accept_proxy: goes with listen: and destination: rules \(intercepted connections come straight from their clients\); remove it/,
  );
});
