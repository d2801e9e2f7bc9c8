/**
 * The engine's runtime loop guard (native/loop_guard.h, ListenerOptions.loopGuard)
 * against the real kernel: a listener whose target is itself, and a cycle of
 * two, each refuse the connection once it comes back to a rule it passed,
 * promptly and without leaking a socket; a chain that ends at a real service
 * and an unguarded listener forward every byte as before.
 *
 * Runs inside a fresh network namespace, like engine.test.ts.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import net from 'node:net';
import { describe, test, type TestContext } from 'node:test';
import { fileURLToPath } from 'node:url';
import { loadNative, type ListenerOptions } from '../../src/native/index.js';
import { createNetns, requireBpf, requireRoot } from '../helpers/netns.js';
import { runClient, startServer, type ClientReport } from '../helpers/traffic.js';
import { startEngine, type EngineFixture } from './engine-fixture.js';

const NETNS_ENV = 'BPFREDIR_LOOP_GUARD_TEST_NETNS';
const LOCALHOST = '127.0.0.1';

if (process.getuid?.() === 0 && !process.env[NETNS_ENV]) {
  const ns = createNetns('loopguard');
  try {
    const file = fileURLToPath(import.meta.url);
    const run = spawnSync('ip', ['netns', 'exec', ns.name, process.execPath, ...process.execArgv, file], {
      stdio: 'inherit',
      env: { ...process.env, [NETNS_ENV]: ns.name },
      timeout: 300_000,
    });
    process.exitCode = run.status ?? 1;
  } finally {
    ns.destroy();
  }
} else {
  for (const datapath of ['splice', 'userspace'] as const) defineTests(datapath);
}

function ready(t: TestContext, datapath: 'splice' | 'userspace'): boolean {
  return datapath === 'splice' ? requireBpf(t) : requireRoot(t);
}

/** A second listener on the fixture's engine. */
function addListener(f: EngineFixture, datapath: 'splice' | 'userspace', options: Partial<ListenerOptions> & Pick<ListenerOptions, 'ruleId' | 'bind' | 'targets'>) {
  return f.engine.addListener({
    dualStack: false,
    backlog: 1024,
    connectTimeoutMs: 2000,
    idleTimeoutMs: 0,
    datapath,
    budgetBytes: 0,
    sndbufBytes: 0,
    ...options,
  });
}

/** Each client is reset promptly, one ELOOP per client, and no connection or fd stays behind. */
async function assertLoopsRefused(f: EngineFixture, port: number, clients: number, round: RegExp): Promise<void> {
  const fds = await settledFdCount();
  for (let i = 0; i < clients; i++) {
    const client = await runClient(null, { port, bytes: 10, timeoutMs: 5000 });
    assertReset(client);
  }
  await waitUntil(() => f.engine.stats().connections === 0, 1000, () => `connections: ${JSON.stringify(f.engine.stats())}`);
  const loops = f.events.filter((e) => e.type === 'error' && e.code === 'ELOOP');
  assert.equal(loops.length, clients, 'one ELOOP event per client');
  assert.equal(f.engine.stats().loopsRefused, clients);
  assert.match(loops[0]!.message!, round);
  assert.match(loops[0]!.message!, /^connection from our own upstream socket 127\.0\.0\.1:\d+ to 127\.0\.0\.1:\d+ .*forwarding loop refused/);
  assert.equal(await settledFdCount(), fds, 'fds back to where they were');
}

function assertReset(client: ClientReport): void {
  // The upstream side sees the reset: its connection fails, and the client is reset in turn.
  assert.ok(client.error === 'ECONNRESET' || client.error === 'EPIPE', `client error ${client.error}`);
  assert.ok(client.ms < 1000, `reset took ${client.ms} ms`);
  assert.equal(client.recvBytes, 0);
}

function defineTests(datapath: 'splice' | 'userspace'): void {
  describe(`loop guard (${datapath})`, () => {
    for (const threads of [1, 2]) {
      test(`a listener whose target is itself: refused on the first return, nothing left (${threads} thread(s))`, async (t) => {
        if (!ready(t, datapath)) return;
        const port = await freePort();
        const self = { host: LOCALHOST, port };
        const f = await startEngine(datapath, self, { bind: self, loopGuard: true }, { threads });
        try {
          await assertLoopsRefused(f, port, 5, /\(rule 1 → rule 1\)/);
        } finally {
          await f.close();
        }
      });
    }

    test('a cycle of two listeners a → b → a, two engine threads: refused when it returns to a', async (t) => {
      if (!ready(t, datapath)) return;
      const [a, b] = [await freePort(), await freePort()];
      const f = await startEngine(datapath, { host: LOCALHOST, port: b }, { bind: { host: LOCALHOST, port: a }, loopGuard: true }, { threads: 2 });
      try {
        addListener(f, datapath, { ruleId: 2, bind: { host: LOCALHOST, port: b }, targets: [{ host: LOCALHOST, port: a }], loopGuard: true });
        await assertLoopsRefused(f, a, 5, /\(rule 1 → rule 2 → rule 1\)/);
        // The hop through b was a connection of its own, accepted and then failed.
        assert.equal(f.engine.stats().accepted, 10);
      } finally {
        await f.close();
      }
    });

    test('a finished connection unregisters its upstream socket: a client later on its port is not taken for it', async (t) => {
      if (!ready(t, datapath)) return;
      const port = await freePort();
      const self = { host: LOCALHOST, port };
      const f = await startEngine(datapath, self, { bind: self, loopGuard: true });
      try {
        assertReset(await runClient(null, { port, bytes: 10, timeoutMs: 5000 }));
        const first = await f.waitFor((e) => e.code === 'ELOOP');
        await waitUntil(() => f.engine.stats().connections === 0, 1000);
        // A client on the port the refused upstream socket had: a stale entry would refuse
        // it at once as ours; instead it is proxied, and its own upstream socket is refused.
        const upstreamPort = Number(first.client!.split(':')[1]);
        const client = net.connect({ host: LOCALHOST, port, localAddress: LOCALHOST, localPort: upstreamPort });
        client.on('error', () => {});
        const second = await f.waitFor((e) => e.code === 'ELOOP' && e !== first);
        client.destroy();
        assert.notEqual(second.client, first.client);
        assert.match(second.message!, /\(rule 1 → rule 1\)/);
      } finally {
        await f.close();
      }
    });

    test('a chain a → b → server with guards on both: every byte arrives, nothing refused', async (t) => {
      if (!ready(t, datapath)) return;
      const server = await startServer(null, { mode: 'echo' });
      const [a, b] = [await freePort(), await freePort()];
      const f = await startEngine(datapath, { host: LOCALHOST, port: b }, { bind: { host: LOCALHOST, port: a }, loopGuard: true }, { threads: 2 });
      try {
        addListener(f, datapath, { ruleId: 2, bind: { host: LOCALHOST, port: b }, targets: [{ host: LOCALHOST, port: server.port }], loopGuard: true });
        for (const bytes of [1, 1024 * 1024]) assertIntactEcho(await runClient(null, { port: a, bytes, timeoutMs: 20_000 }), bytes);
        assert.equal(f.engine.stats().loopsRefused, 0);
        await waitUntil(() => f.engine.stats().connections === 0, 2000);
      } finally {
        await f.close();
        await server.stop();
      }
    });

    for (const loopGuard of [false, true]) {
      test(`loopGuard ${loopGuard} in front of a real server: a checksummed echo arrives intact`, async (t) => {
        if (!ready(t, datapath)) return;
        const server = await startServer(null, { mode: 'echo' });
        const f = await startEngine(datapath, { host: LOCALHOST, port: server.port }, { loopGuard });
        try {
          for (const bytes of [1, 4 * 1024 * 1024]) assertIntactEcho(await runClient(null, { port: f.port, bytes, timeoutMs: 20_000 }), bytes);
          const closed = await f.waitFor((e) => e.type === 'closed' && e.bytesToUpstream === 4 * 1024 * 1024);
          assert.equal(closed.reason, 'eof');
          assert.equal(f.engine.stats().loopsRefused, 0);
          assert.deepEqual(f.events.filter((e) => e.type === 'error'), []);
        } finally {
          await f.close();
          await server.stop();
        }
      });
    }
  });
}

function assertIntactEcho(client: ClientReport, bytes: number): void {
  assert.equal(client.error, undefined);
  assert.equal(client.recvBytes, bytes);
  assert.equal(client.recvSha, client.sentSha);
}

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const probe = net.createServer();
    probe.listen(0, LOCALHOST, () => {
      const { port } = probe.address() as net.AddressInfo;
      probe.close(() => resolve(port));
    });
  });
}

/** Open fds once child-process pipes of earlier steps have finished closing. */
async function settledFdCount(): Promise<number> {
  const native = loadNative();
  let last = native.openFdCount();
  for (let i = 0; i < 50; i++) {
    await new Promise((resolve) => setTimeout(resolve, 50));
    const now = native.openFdCount();
    if (now === last) return now;
    last = now;
  }
  return last;
}

async function waitUntil(condition: () => boolean, timeoutMs: number, what: () => string = () => ''): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms ${what()}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
