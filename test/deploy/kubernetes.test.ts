/**
 * The DaemonSet's pod template, run for real: no cluster runs here, but `podman kube play`
 * takes a Pod built from the template (deploy/kubernetes/manifests.ts) and honours host
 * network, capabilities, the security context and hostPath volumes. Podman runs inside the
 * test's netns (nsenter --net keeps the host's cgroup mounts, which runc needs), so the
 * pod's host network is that namespace. What the test changes, and why:
 * - image: the one `make image` built;
 * - ports dropped, probes by number: podman turns containerPort into a port mapping, which it
 *   refuses with host networking (a kubelet does not);
 * - the seccomp profile by the older annotation, which is what podman reads;
 * - the config volume: a hostPath laid out as the kubelet lays out a ConfigMap (config.yaml →
 *   ..data/config.yaml, ..data → ..<timestamp>/), so a ConfigMap update — a new timestamped
 *   directory and an atomic swap of ..data — can be done here and must reload the rules live.
 * `kubectl kustomize` renders the base where kubectl is installed.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, copyFileSync, mkdirSync, mkdtempSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, test } from 'node:test';
import { Pod } from 'kubernetes-models/v1';
import { stringify } from 'yaml';
import { METRICS_PORT, podSpec } from '../../deploy/kubernetes/manifests.js';
import { netnsLinkCount } from '../helpers/bpf-maps.js';
import { httpGet } from '../helpers/http.js';
import { bpfSkipReason, createNetns, type Netns } from '../helpers/netns.js';
import { runClient, startServer, type TrafficServer } from '../helpers/traffic.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const IMAGE = 'localhost/bpfredir:test-kube';
const POD = `bpfredir-kube-${process.pid}`;
const skip = bpfSkipReason();
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const hasKubectl = spawnSync('kubectl', ['version', '--client'], { stdio: 'ignore' }).status === 0;

function run(cmd: string, args: string[], env: NodeJS.ProcessEnv = process.env): { status: number | null; output: string } {
  const result = spawnSync(cmd, args, { encoding: 'utf8', timeout: 120_000, env });
  return { status: result.status, output: `${result.stdout ?? ''}${result.stderr ?? ''}` };
}

describe('Kubernetes', { skip }, () => {
  let ns: Netns;
  let dir: string;
  let echo: TrafficServer;

  before(async () => {
    ns = createNetns('kube');
    dir = mkdtempSync(join(tmpdir(), 'bpfredir-kube-'));
    echo = await startServer(ns, { mode: 'echo', host: '127.0.1.1' });
  });

  after(async () => {
    run('podman', ['pod', 'rm', '-f', '-t', '0', POD]);
    run('podman', ['rmi', '-f', IMAGE]);
    await echo?.stop();
    ns?.destroy();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test('kubectl kustomize renders the base', { skip: !hasKubectl && 'kubectl is not installed' }, () => {
    const out = run('kubectl', ['kustomize', join(ROOT, 'deploy/kubernetes/base')]);
    assert.equal(out.status, 0, out.output);
    const kinds = [...out.output.matchAll(/^kind: (\w+)$/gm)].map((m) => m[1]).sort();
    assert.deepEqual(kinds, ['ConfigMap', 'DaemonSet', 'Namespace', 'PodMonitor', 'ServiceAccount']);
  });

  test('the pod template runs: a transfer through steering and a listen rule, a ConfigMap update reloads live', { timeout: 240_000 }, async () => {
    execFileSync('make', ['--no-print-directory', 'image', `IMAGE=${IMAGE}`], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    const rules = [
      { name: 'steered', destination: '127.0.0.2', ports: 7902, target: `127.0.1.1:${echo.port}` },
      { name: 'listened', listen: '127.0.0.1:7900', target: `127.0.1.1:${echo.port}` },
    ];
    // The kubelet's layout of a ConfigMap volume.
    const volume = join(dir, 'configmap');
    mkdirSync(volume, { mode: 0o755 });
    let generation = 0;
    const publish = (config: object) => {
      const stamp = `..2026_12_03_00_00_0${generation++}.1`;
      mkdirSync(join(volume, stamp), { mode: 0o755 });
      writeFileSync(join(volume, stamp, 'config.yaml'), JSON.stringify({ threads: 2, ...config }), { mode: 0o644 });
      symlinkSync(stamp, join(volume, '..data_tmp'));
      renameSync(join(volume, '..data_tmp'), join(volume, '..data'));
    };
    publish({ rules });
    symlinkSync('..data/config.yaml', join(volume, 'config.yaml'));

    const seccompRoot = join(dir, 'seccomp');
    mkdirSync(seccompRoot);
    copyFileSync(join(ROOT, 'deploy/container/seccomp.json'), join(seccompRoot, 'bpfredir.json'));
    const spec = podSpec();
    const container = spec.containers[0]!;
    container.image = IMAGE;
    delete container.ports;
    container.readinessProbe!.httpGet!.port = METRICS_PORT;
    container.livenessProbe!.httpGet!.port = METRICS_PORT;
    spec.volumes = spec.volumes!.map((v) => (v.name === 'config' ? { name: 'config', hostPath: { path: volume, type: 'Directory' } } : v));
    const pod = new Pod({ metadata: { name: POD, annotations: { 'seccomp.security.alpha.kubernetes.io/pod': 'localhost/bpfredir.json' } }, spec });
    const file = join(dir, 'pod.yaml');
    writeFileSync(file, stringify(pod.toJSON()));
    // Ulimits at the host's hard limits (a kubelet's runtime sets its own); runc: crun refuses this host's cgroups.
    const conf = join(dir, 'containers.conf');
    writeFileSync(conf, '[containers]\ndefault_ulimits = ["nofile=20000:20000", "nproc=4096:4096"]\n[engine]\nruntime = "runc"\n');
    chmodSync(dir, 0o755);

    const play = run('nsenter', [`--net=${ns.path}`, 'podman', 'kube', 'play', `--seccomp-profile-root=${seccompRoot}`, file], { ...process.env, CONTAINERS_CONF: conf });
    assert.equal(play.status, 0, play.output);
    const name = `${POD}-bpfredir`;
    const logs = () => run('podman', ['logs', name]).output;
    for (let i = 0; i < 100 && !/^bpfredir: 2 rules/m.test(logs()); i++) await sleep(100);
    assert.match(logs(), /^bpfredir: 2 rules, datapath splice \(sk_lookup on netns \d+\)/m);
    const pid = run('podman', ['inspect', '--format', '{{.State.Pid}}', name]).output.trim();
    const status = execFileSync('cat', [`/proc/${pid}/status`], { encoding: 'utf8' });
    assert.match(status, /^CapEff:\s+000000c000001000$/m, 'CAP_BPF, CAP_PERFMON, CAP_NET_ADMIN and nothing else');
    assert.match(status, /^NoNewPrivs:\s+1$/m);
    assert.match(status, /^Seccomp:\s+2$/m);

    for (const [host, port] of [['127.0.0.2', 7902], ['127.0.0.1', 7900]] as const) {
      const client = await runClient(ns, { host, port, bytes: 4 << 20, timeoutMs: 20_000 });
      assert.equal(client.error, undefined, `${host}:${port}`);
      assert.equal(client.recvSha, client.sentSha, `${host}:${port}: echoed intact`);
    }
    assert.equal((await httpGet(ns, `http://127.0.0.1:${METRICS_PORT}/readyz`)).status, 200);

    publish({ rules: [...rules, { name: 'added', listen: '127.0.0.1:7901', target: `127.0.1.1:${echo.port}` }] });
    for (let i = 0; i < 100 && !/ info reloaded trigger="file change" added=1 /.test(logs()); i++) await sleep(100);
    assert.match(logs(), / info reloaded trigger="file change" added=1 /);
    const added = await runClient(ns, { port: 7901, bytes: 1 << 20, timeoutMs: 20_000 });
    assert.equal(added.recvSha, added.sentSha, 'the rule the ConfigMap added forwards');

    const stop = run('podman', ['pod', 'stop', '-t', '20', POD]);
    assert.equal(stop.status, 0, stop.output);
    assert.equal(run('podman', ['inspect', '--format', '{{.State.ExitCode}}', name]).output.trim(), '0');
    assert.match(logs(), / info stopped drained=0 reset=0$/m);
    assert.equal(netnsLinkCount(ns.path), 0, 'no sk_lookup link left');
  });
});
