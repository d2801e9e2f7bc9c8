/**
 * The libbpf side of the native addon against the real kernel: loading
 * bpfredir.bpf.o, map operations, sk_lookup steering in a fresh netns, pins,
 * errors and fd hygiene. Needs root (skips without; fails under CI=true).
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { test, type TestContext } from 'node:test';
import {
  BIND_KEY_SIZE, BIND_VALUE_SIZE, MAPS, PROGRAMS, RULE_STATS_SIZE, SETTINGS_SIZE,
  encodeBindKey, encodeBindValue, encodeSettings, encodeU32Key, sumRuleStats,
} from '../../src/abi.js';
import { loadNative, type RawBpfObject } from '../../src/native/index.js';
import { IPPROTO_TCP, type Binding } from '../../src/rules/compile.js';
import { parsePrefix, type Prefix } from '../../src/rules/ip.js';
import { netnsLinkCount } from '../helpers/bpf-maps.js';
import { addLocalRoute, createNetns, requireBpf } from '../helpers/netns.js';
import { listenerFd, runClient, startServer } from '../helpers/traffic.js';

const objectPath = fileURLToPath(new URL('../../../build/bpf/bpfredir.bpf.o', import.meta.url));
const native = loadNative();
/** sizeof(struct conn) in bpf/bpfredir.h. */
const CONN_SIZE = 48; // struct conn in bpf/bpfredir.h

function binding(prefix: string, port: number, ruleId: number): Binding {
  return { protocol: IPPROTO_TCP, prefix: parsePrefix(prefix) as Prefix, port, portBits: 16, ruleId };
}

/** Loads the object for one test and always closes it. */
async function withObject(t: TestContext, body: (obj: RawBpfObject) => Promise<void> | void): Promise<void> {
  if (!requireBpf(t)) return;
  const obj = await native.loadObject(objectPath);
  try {
    await body(obj);
  } finally {
    obj.close();
  }
}

function errorWith(code: string, syscall: string) {
  return (err: unknown) => {
    const e = err as NodeJS.ErrnoException;
    assert.equal(e.code, code, e.message);
    assert.equal(e.syscall, syscall);
    assert.equal(typeof e.errno, 'number');
    return true;
  };
}

test('probeFeatures finds sk_lookup and the sockmap verdict', (t) => {
  if (!requireBpf(t)) return;
  assert.deepEqual(native.probeFeatures(), { skLookup: true, sockmapVerdict: true, problems: [] });
});

test('loadObject exposes every map; an unknown name is ENOENT', async (t) => {
  await withObject(t, (obj) => {
    for (const name of Object.values(MAPS)) assert.ok(obj.mapFd(name) >= 0, name);
    assert.throws(() => obj.mapFd('no_such_map'), errorWith('ENOENT', 'bpf_object__find_map_by_name'));
  });
});

test('loadObject of a missing file rejects with ENOENT', async (t) => {
  if (!requireBpf(t)) return;
  await assert.rejects(native.loadObject('/nonexistent/bpfredir.bpf.o'), errorWith('ENOENT', 'bpf_object__open_file'));
});

test('a program the verifier refuses rejects with the verifier log', async (t) => {
  if (!requireBpf(t)) return;
  const dir = mkdtempSync(join(tmpdir(), 'bpfredir-bad-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  // Dereferences a number read from the packet: the verifier must refuse it.
  writeFileSync(
    join(dir, 'bad.bpf.c'),
    'char LICENSE[] __attribute__((section("license"), used)) = "GPL";\n' +
      '__attribute__((section("sk_skb"), used)) int bad(unsigned int *skb) { return *(int *)(long)*skb; }\n',
  );
  execFileSync('clang', ['-O2', '-target', 'bpf', '-c', join(dir, 'bad.bpf.c'), '-o', join(dir, 'bad.bpf.o')]);

  await assert.rejects(native.loadObject(join(dir, 'bad.bpf.o')), (err: NodeJS.ErrnoException & { verifierLog?: string }) => {
    errorWith('EACCES', 'bpf_object__load')(err);
    assert.match(err.verifierLog ?? '', /invalid mem access/);
    const tail = err.message.split('\n').slice(1);
    assert.ok(tail.length > 0 && tail.length <= 20, `${tail.length} log lines in the message`);
    assert.ok(tail.some((line) => line.includes('invalid mem access')), err.message);
    return true;
  });
});

test('map operations round-trip and check sizes', async (t) => {
  await withObject(t, (obj) => {
    const settings = obj.mapFd(MAPS.settings);
    native.mapUpdate(settings, encodeU32Key(0), encodeSettings(1 << 16));
    assert.deepEqual(native.mapLookup(settings, encodeU32Key(0), SETTINGS_SIZE), encodeSettings(1 << 16));
    assert.throws(() => native.mapLookup(settings, encodeU32Key(0), 4), errorWith('EINVAL', 'bpf_map_lookup_elem'));
    assert.throws(() => native.mapUpdate(settings, Buffer.alloc(2), encodeSettings(0)), /key is 2 bytes, map settings expects 4/);

    const bindings = obj.mapFd(MAPS.bindings);
    const b = binding('10.1.0.0/16', 443, 3);
    native.mapUpdate(bindings, encodeBindKey(b), encodeBindValue(b));
    // LPM: a longer prefix inside 10.1/16 finds the entry.
    const lookup = encodeBindKey({ ...b, prefix: parsePrefix('10.1.2.3') as Prefix });
    assert.deepEqual(native.mapLookup(bindings, lookup, BIND_VALUE_SIZE), encodeBindValue(b));
    assert.deepEqual(native.mapKeys(bindings, BIND_KEY_SIZE), [encodeBindKey(b)]);
    assert.equal(native.mapDelete(bindings, encodeBindKey(b)), true);
    assert.equal(native.mapDelete(bindings, encodeBindKey(b)), false);
    assert.equal(native.mapLookup(bindings, lookup, BIND_VALUE_SIZE), null);

    // conns is a HASH: the batch path.
    const conns = obj.mapFd(MAPS.conns);
    const cookies = Buffer.alloc(3 * 8);
    cookies.writeBigUInt64LE(11n, 0);
    cookies.writeBigUInt64LE(12n, 8);
    cookies.writeBigUInt64LE(13n, 16);
    native.mapUpdateMany(conns, cookies, Buffer.alloc(3 * CONN_SIZE), 8, CONN_SIZE);
    assert.equal(native.mapKeys(conns, 8).length, 3);

    const perCpu = native.mapLookupPercpu(obj.mapFd(MAPS.ruleStats), encodeU32Key(0), RULE_STATS_SIZE);
    assert.ok(perCpu && perCpu.length >= 1 && perCpu.every((buf) => buf.length === RULE_STATS_SIZE));
  });
});

test('mapUpdateMany loads 100k LPM entries in well under 2 s', async (t) => {
  await withObject(t, (obj) => {
    const count = 100_000;
    const keys = Buffer.alloc(count * BIND_KEY_SIZE);
    const values = Buffer.alloc(count * BIND_VALUE_SIZE);
    for (let i = 0; i < count; i++) {
      const address = `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`;
      const b = binding(address, 1000 + (i % 50_000), 1 + (i % 1000));
      encodeBindKey(b, keys, i * BIND_KEY_SIZE);
      encodeBindValue(b, values, i * BIND_VALUE_SIZE);
    }
    const fd = obj.mapFd(MAPS.bindings);
    const started = performance.now();
    native.mapUpdateMany(fd, keys, values, BIND_KEY_SIZE, BIND_VALUE_SIZE);
    const ms = performance.now() - started;
    t.diagnostic(`100k LPM entries: ${ms.toFixed(1)} ms`);
    assert.ok(ms < 1000, `took ${ms} ms`);
    assert.equal(native.mapKeys(fd, BIND_KEY_SIZE).length, count);
  });
});

test('sk_lookup steers 127.0.0.2:8085 to the socket in steer_sockets; no socket fails closed', async (t) => {
  await withObject(t, async (obj) => {
    const ns = createNetns('native');
    t.after(() => ns.destroy());
    addLocalRoute(ns, '127.0.0.2/31');
    const server = await startServer(ns, { mode: 'name', name: 'steered', shareListener: true });
    t.after(() => server.stop());

    const steered = binding('127.0.0.2', 8085, 7);
    const orphan = binding('127.0.0.3', 8085, 8); // a rule whose socket is missing
    const bindings = obj.mapFd(MAPS.bindings);
    for (const b of [steered, orphan]) native.mapUpdate(bindings, encodeBindKey(b), encodeBindValue(b));
    native.mapUpdate(obj.mapFd(MAPS.settings), encodeU32Key(0), encodeSettings(1 << 16));
    native.sockmapUpdate(obj.mapFd(MAPS.steerSockets), encodeU32Key(7), listenerFd(server.listener!));
    server.listener!.close(); // the map holds the socket; only the child accepts
    obj.attachSkLookup(PROGRAMS.steer, ns.path);

    const reply = await runClient(ns, { host: '127.0.0.2', port: 8085, timeoutMs: 5000 });
    assert.equal(reply.error, undefined);
    assert.equal(reply.recvBytes, 'steered'.length);
    assert.equal((await server.nextReport()).local, '127.0.0.2:8085');

    const refused = await runClient(ns, { host: '127.0.0.3', port: 8085, timeoutMs: 5000 });
    assert.equal(refused.error, 'ECONNREFUSED');

    const stats = (rule: number) =>
      sumRuleStats(native.mapLookupPercpu(obj.mapFd(MAPS.ruleStats), encodeU32Key(rule), RULE_STATS_SIZE)!);
    assert.equal(stats(7).steered, 1n);
    assert.equal(stats(8).droppedNoSocket, 1n);
  });
});

test('a link is detached by detach(), and by the kernel when its fd closes', async (t) => {
  const ns = createNetns('link');
  t.after(() => ns.destroy());
  const linksHere = () => netnsLinkCount(ns.path);
  await withObject(t, (obj) => {
    const link = obj.attachSkLookup(PROGRAMS.steer, ns.path);
    assert.equal(linksHere(), 1);
    obj.detach(link);
    assert.equal(linksHere(), 0);
    assert.throws(() => obj.detach(link), errorWith('ENOENT', 'detach'));
    obj.attachSkLookup(PROGRAMS.steer, ns.path);
  });
  assert.equal(linksHere(), 0, 'close() leaves no link behind');
});

test('attachSkLookup to a missing netns is ENOENT with code and syscall', async (t) => {
  await withObject(t, (obj) => {
    assert.throws(() => obj.attachSkLookup(PROGRAMS.steer, '/var/run/netns/bpfredir-missing'), errorWith('ENOENT', 'open'));
  });
});

test('netnsInode matches the namespace file', (t) => {
  if (!requireBpf(t)) return;
  const ns = createNetns('inode');
  t.after(() => ns.destroy());
  assert.equal(native.netnsInode(ns.path), statSync(ns.path, { bigint: true }).ino);
  assert.equal(native.netnsInode(), statSync('/proc/self/ns/net', { bigint: true }).ino);
});

test('close() releases every fd and may be called twice', async (t) => {
  if (!requireBpf(t)) return;
  const ns = createNetns('fds');
  t.after(() => ns.destroy());
  const before = native.openFdCount();
  const obj = await native.loadObject(objectPath);
  obj.attachSkLookup(PROGRAMS.steer, ns.path);
  obj.attachVerdict(PROGRAMS.verdict, MAPS.spliceActive);
  assert.ok(native.openFdCount() > before);
  obj.close();
  obj.close();
  assert.equal(native.openFdCount(), before);
  assert.throws(() => obj.mapFd(MAPS.settings), errorWith('EBADF', 'mapFd'));
});
