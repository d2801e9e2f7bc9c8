/**
 * The container image, built without a registry (make image) and run the way the DaemonSet
 * runs it: the network namespace it serves (here the test's, as hostNetwork gives the node's),
 * only CAP_BPF, CAP_NET_ADMIN and CAP_PERFMON, deploy/container/seccomp.json, a read-only root,
 * no new privileges, the host's /sys/fs/bpf, and ulimits at or below the host's. A checksummed
 * transfer goes through a steering rule and a listen rule, /metrics counts it, SIGTERM stops it
 * with exit 0, and nothing is left pinned or attached.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, writeFileSync, chmodSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, test } from 'node:test';
import { netnsLinkCount } from '../helpers/bpf-maps.js';
import { httpGet } from '../helpers/http.js';
import { bpfSkipReason, createNetns, type Netns } from '../helpers/netns.js';
import { runClient, startServer, type TrafficServer } from '../helpers/traffic.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const IMAGE = 'localhost/bpfredir:test-deploy';
const skip = bpfSkipReason();
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const MiB = 1 << 20;

function podman(...args: string[]): { status: number | null; stdout: string; stderr: string } {
  const run = spawnSync('podman', args, { encoding: 'utf8', timeout: 120_000 });
  return { status: run.status, stdout: run.stdout ?? '', stderr: run.stderr ?? '' };
}

describe('container image', { skip }, () => {
  let ns: Netns;
  let dir: string;
  let echo: TrafficServer;
  const name = `bpfredir-test-${process.pid}`;

  before(async () => {
    ns = createNetns('container');
    dir = mkdtempSync(join(tmpdir(), 'bpfredir-container-'));
    echo = await startServer(ns, { mode: 'echo', host: '127.0.1.1' });
  });

  after(async () => {
    podman('rm', '-f', '-t', '0', name);
    podman('rmi', '-f', IMAGE);
    await echo?.stop();
    ns?.destroy();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test('runs with three capabilities: steering and a listen rule forward intact, /metrics counts, SIGTERM stops cleanly', { timeout: 240_000 }, async () => {
    execFileSync('make', ['--no-print-directory', 'image', `IMAGE=${IMAGE}`], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    const pinnedBefore = readdirSync('/sys/fs/bpf');
    const etc = join(dir, 'etc');
    execFileSync('mkdir', ['-p', etc]);
    chmodSync(etc, 0o755);
    writeFileSync(
      join(etc, 'config.yaml'),
      JSON.stringify({
        metrics: '127.0.0.1:9477',
        rules: [
          { name: 'steered', destination: '127.0.0.2', ports: 7802, target: `127.0.1.1:${echo.port}` },
          { name: 'listened', listen: '127.0.0.1:7800', target: `127.0.1.1:${echo.port}` },
        ],
      }),
      { mode: 0o644 },
    );
    // What the DaemonSet grants, as podman flags.
    const run = podman(
      'run', '--detach', '--name', name, '--runtime', 'runc',
      `--network=ns:${ns.path}`,
      '--cap-drop=all', '--cap-add=CAP_BPF,CAP_NET_ADMIN,CAP_PERFMON',
      `--security-opt=seccomp=${join(ROOT, 'deploy/container/seccomp.json')}`, '--security-opt=no-new-privileges',
      '--read-only', '--ulimit=nofile=20000:20000', '--ulimit=nproc=4096:4096',
      '--volume=/sys/fs/bpf:/sys/fs/bpf', `--volume=${etc}:/etc/bpfredir:ro`,
      IMAGE,
    );
    assert.equal(run.status, 0, run.stderr);
    const logs = () => {
      const out = podman('logs', name);
      return `${out.stdout}${out.stderr}`;
    };
    for (let i = 0; i < 100 && !/^bpfredir: 2 rules/m.test(logs()); i++) await sleep(100);
    assert.match(logs(), /^bpfredir: 2 rules, datapath splice \(sk_lookup on netns \d+\)/m);

    const bytes = 4 * MiB;
    for (const [host, port] of [['127.0.0.2', 7802], ['127.0.0.1', 7800]] as const) {
      const client = await runClient(ns, { host, port, bytes, timeoutMs: 20_000 });
      assert.equal(client.error, undefined, `${host}:${port}`);
      assert.equal(client.recvSha, client.sentSha, `${host}:${port}: echoed intact`);
    }
    const status = podman('exec', name, 'bpfredir', 'status', '--json');
    assert.equal(status.status, 0, status.stderr);
    assert.deepEqual(JSON.parse(status.stdout).features, { sk_lookup: true, sockmap_verdict: true });

    const metrics = await httpGet(ns, 'http://127.0.0.1:9477/metrics');
    assert.equal(metrics.status, 200);
    for (const rule of ['steered', 'listened']) {
      for (const direction of ['to_upstream', 'to_client']) {
        assert.match(metrics.body, new RegExp(`^bpfredir_bytes_total\\{rule="${rule}",direction="${direction}"\\} ${bytes}$`, 'm'));
      }
    }
    assert.equal((await httpGet(ns, 'http://127.0.0.1:9477/readyz')).status, 200);

    const stop = podman('stop', '--time', '20', name);
    assert.equal(stop.status, 0, stop.stderr);
    assert.equal(podman('inspect', '--format', '{{.State.ExitCode}}', name).stdout.trim(), '0');
    assert.match(logs(), / info stopped drained=0 reset=0$/m);
    assert.equal(netnsLinkCount(ns.path), 0, 'no sk_lookup link left');
    assert.deepEqual(readdirSync('/sys/fs/bpf'), pinnedBefore, 'nothing pinned');
  });
});
