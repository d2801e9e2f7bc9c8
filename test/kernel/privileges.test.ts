/**
 * Least privilege, through the real CLI: with exactly CAP_BPF, CAP_NET_ADMIN
 * and CAP_PERFMON (setpriv, as a non-root user where the checkout is readable
 * to one) a steering rule and a listen rule both carry checksummed data; a
 * missing capability is named; and no other user can take the per-netns lock
 * (the old abstract-socket lock could be squatted by anyone).
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { chownSync, mkdirSync, mkdtempSync, rmSync, chmodSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { cliPath, startBpfredir } from '../helpers/bpfredir.js';
import { addLocalRoute, bpfSkipReason, createNetns, type Netns } from '../helpers/netns.js';
import { runClient, startServer, type TrafficServer } from '../helpers/traffic.js';

const skip = bpfSkipReason();
const NOBODY = 65534;
const DOCUMENTED = ['bpf', 'net_admin', 'perfmon'];

/** setpriv flags: this user, exactly these capabilities (bounding, inheritable and ambient sets). */
function setprivArgs(uid: number, caps: string[]): string[] {
  const set = ['-all', ...caps.map((c) => `+${c}`)].join(',');
  return [`--reuid=${uid}`, `--regid=${uid}`, '--clear-groups', `--inh-caps=${set}`, `--ambient-caps=${set}`, `--bounding-set=${set}`];
}

/** nobody, if it can read the checkout (CI clones may sit under a private directory); else root with only these capabilities. */
function unprivilegedUid(): number {
  const probe = spawnSync('setpriv', [...setprivArgs(NOBODY, []), process.execPath, '-e', `require('fs').accessSync(${JSON.stringify(cliPath)})`]);
  return probe.status === 0 ? NOBODY : 0;
}

/** The same netns, entered with only these capabilities. */
const withCaps = (ns: Netns, uid: number, caps: string[]): Netns => ({
  ...ns,
  exec: (cmd, args, opts = {}) => spawn('ip', ['netns', 'exec', ns.name, 'setpriv', ...setprivArgs(uid, caps), cmd, ...args], opts),
});

describe('least privilege', { skip }, () => {
  let ns: Netns;
  let dir: string;
  let runDir: string;
  let configPath: string;
  let uid: number;
  let echo: TrafficServer;

  before(async () => {
    ns = createNetns('privileges');
    addLocalRoute(ns, '127.0.0.2/32');
    echo = await startServer(ns, { mode: 'echo', host: '127.0.1.1' });
    uid = unprivilegedUid();
    dir = mkdtempSync(join(tmpdir(), 'bpfredir-test-'));
    chmodSync(dir, 0o755);
    // What systemd's RuntimeDirectory= would provide for the service user.
    runDir = join(dir, 'run');
    mkdirSync(runDir, { mode: 0o700 });
    chownSync(runDir, uid, uid);
    configPath = join(dir, 'config.json');
    const target = `127.0.1.1:${echo.port}`;
    writeFileSync(configPath, JSON.stringify({ rules: [{ name: 'steer', destination: '127.0.0.2', ports: 8080, target }, { name: 'listen', listen: '127.0.0.1:7000', target }] }));
    chmodSync(configPath, 0o644);
  });
  after(async () => {
    await echo?.stop();
    ns?.destroy();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const run = (caps: string[], extra: string[] = []) => startBpfredir(withCaps(ns, uid, caps), ['run', '--config', configPath, '--run-dir', runDir, ...extra]);

  test('CAP_BPF, CAP_NET_ADMIN and CAP_PERFMON are enough for steering, splice and a listen rule', async () => {
    const proxy = await run(DOCUMENTED);
    assert.match(proxy.startup, /datapath splice \(sk_lookup on netns \d+\)/);
    for (const [host, port] of [['127.0.0.2', 8080], ['127.0.0.1', 7000]] as const) {
      const client = await runClient(ns, { host, port, bytes: 4 << 20 });
      assert.equal(client.error, undefined, `${host}:${port}`);
      assert.equal(client.recvSha, client.sentSha, `${host}:${port}`);
    }
    assert.equal(await proxy.stop(), 0);
  });

  for (const missing of DOCUMENTED) {
    test(`without CAP_${missing.toUpperCase()} the error names it`, async () => {
      const caps = DOCUMENTED.filter((c) => c !== missing);
      await assert.rejects(run(caps), (err: Error) => {
        assert.match(err.message, /exited \(3\)/);
        assert.match(err.message, new RegExp(`missing CAP_${missing.toUpperCase()}`));
        return true;
      });
    });
  }

  test('a run directory this user cannot create is one line saying how to provide it', async () => {
    if (uid === 0) return; // root with capabilities dropped still owns every directory here
    const other = join(dir, 'not-yours', 'run');
    mkdirSync(join(dir, 'not-yours'), { mode: 0o755 });
    await assert.rejects(startBpfredir(withCaps(ns, uid, DOCUMENTED), ['run', '--config', configPath, '--run-dir', other]), /exited \(3\).*cannot create .*RuntimeDirectory=bpfredir/s);
  });

  test('another user cannot hold the lock: the old abstract name is ignored and the lock directory is closed to them', async () => {
    const squatter = spawn('setpriv', [...setprivArgs(NOBODY, []), process.execPath, '-e', "require('net').createServer().listen({ path: '\\0bpfredir/steer' }); setInterval(() => {}, 1000)"]);
    try {
      const tryCreate = spawnSync('ip', ['netns', 'exec', ns.name, 'setpriv', ...setprivArgs(NOBODY, []), 'sh', '-c', 'echo 1 > /run/bpfredir/squat.lock']);
      assert.notEqual(tryCreate.status, 0, 'an unprivileged user must not create files in /run/bpfredir');
      const proxy = await startBpfredir(ns, ['run', '--config', configPath]);
      assert.equal(await proxy.stop(), 0);
    } finally {
      squatter.kill('SIGKILL');
    }
  });
});
