import { test } from 'node:test';
import assert from 'node:assert/strict';
import { addressBytes, formatAddress, formatPrefix, malformedIpv4Problem, parsePrefix, type Prefix } from '../../src/rules/ip.js';

test('IPv4 is stored IPv4-mapped', () => {
  assert.equal(addressBytes('127.0.0.2').toString('hex'), '00000000000000000000ffff7f000002');
});

test('IPv6 forms expand to 16 bytes', () => {
  assert.equal(addressBytes('::1').toString('hex'), '00000000000000000000000000000001');
  assert.equal(addressBytes('::').toString('hex'), '0'.repeat(32));
  assert.equal(addressBytes('2001:db8::8:1').toString('hex'), '20010db8000000000000000000080001');
  assert.equal(addressBytes('fe80::').toString('hex'), 'fe80' + '0'.repeat(28));
  assert.equal(addressBytes('::ffff:10.1.2.3').toString('hex'), '00000000000000000000ffff0a010203');
  assert.equal(addressBytes('1:2:3:4:5:6:7:8').toString('hex'), '00010002000300040005000600070008');
  assert.throws(() => addressBytes('fe80::1%lo'));
  assert.throws(() => addressBytes('example.com'));
});

test('formatting round-trips', () => {
  for (const text of ['127.0.0.2', '::1', '::', '2001:db8::8:1', '1:2:3:4:5:6:7:8', 'fe80::', '1:0:0:2::3']) {
    assert.equal(formatAddress(addressBytes(text)), text);
  }
});

test('prefixes: IPv4 lengths gain 96, bare addresses are hosts', () => {
  const v4 = parsePrefix('10.0.0.0/8') as Prefix;
  assert.equal(v4.len, 104);
  assert.equal(v4.family, 4);
  assert.equal(formatPrefix(v4), '10.0.0.0/8');
  assert.equal((parsePrefix('127.0.0.2') as Prefix).len, 128);
  assert.equal((parsePrefix('::2') as Prefix).len, 128);
  assert.equal((parsePrefix('0.0.0.0/0') as Prefix).len, 96);
  const mapped = parsePrefix('::ffff:127.0.0.2/128') as Prefix;
  assert.equal(mapped.family, 4);
  assert.equal(formatPrefix(mapped), '127.0.0.2/32');
});

test('prefixes: errors say how to fix', () => {
  assert.equal(parsePrefix('10.0.0.1/8'), "'10.0.0.1/8' has bits set past /8; write 10.0.0.0/8");
  assert.equal(parsePrefix('10.0.0.0/33'), "'10.0.0.0/33' has a bad prefix length (0-32 for IPv4)");
  assert.equal(parsePrefix('2001:db8::1/32'), "'2001:db8::1/32' has bits set past /32; write 2001:db8::/32");
  assert.equal(parsePrefix('nope/8'), "'nope' is not an IP address");
  assert.equal(parsePrefix('1.2.3.4/8/9'), "'1.2.3.4/8/9' is not an address or prefix");
});

test('prefixes: the IPv4 fast path gives the same bytes as the kernel key expects, and leaves odd input to the errors', () => {
  const p = parsePrefix('192.168.1.0/24') as Prefix;
  assert.deepEqual([...p.addr], [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 255, 255, 192, 168, 1, 0]);
  assert.equal(p.len, 120);
  assert.deepEqual((parsePrefix('255.255.255.255') as Prefix).addr, addressBytes('255.255.255.255'));
  assert.equal(parsePrefix('1.2.3.256'), malformedIpv4Problem('1.2.3.256'));
  assert.equal(parsePrefix('01.2.3.4'), malformedIpv4Problem('01.2.3.4'));
  assert.equal(parsePrefix('10.0.0.0/99'), "'10.0.0.0/99' has a bad prefix length (0-32 for IPv4)");
  assert.equal(formatPrefix(parsePrefix('10.0.0.128/25') as Prefix), '10.0.0.128/25');
  assert.equal(parsePrefix('10.0.0.129/25'), "'10.0.0.129/25' has bits set past /25; write 10.0.0.128/25");
});
