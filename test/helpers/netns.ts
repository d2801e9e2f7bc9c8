/**
 * Network namespaces and privilege checks for kernel tests.
 *
 *   if (!requireBpf(t)) return;             // skip without root/BPF (under CI=true: fail)
 *   const ns = createNetns('native');       // fresh netns, lo up, removed at exit too
 *   addLocalRoute(ns, '127.0.0.2/32');      // AnyIP: the netns accepts traffic for the prefix
 *   const child = ns.exec('node', [...]);   // a process inside the namespace
 *   ns.run('ip', ['addr']);                 // same, synchronous, returns stdout
 *   ns.destroy();                           // kills what runs inside, deletes the netns
 *
 * requireRoot(t) checks only for root. Namespaces are named
 * `bpfredir-<prefix>-<random>` and live at /var/run/netns/<name>.
 */
import { execFileSync, spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import type { TestContext } from 'node:test';
import { loadNative } from '../../src/native/index.js';

export interface Netns {
  name: string;
  /** The netns file, for attachSkLookup / netnsInode. */
  path: string;
  /** Spawns `ip netns exec NAME cmd ...args`. */
  exec(cmd: string, args: string[], opts?: SpawnOptions): ChildProcess;
  /** Runs a command inside the namespace and returns its stdout; throws on failure. */
  run(cmd: string, args: string[]): string;
  /** Idempotent. */
  destroy(): void;
}

const live = new Set<Netns>();

function ip(args: string[]): string {
  return execFileSync('ip', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

function destroyAll(): void {
  for (const ns of live) {
    try {
      ns.destroy();
    } catch (err) {
      // Keep going: the other namespaces must go too.
      process.stderr.write(`could not remove netns ${ns.name}: ${(err as Error).message}\n`);
    }
  }
}

let cleanupInstalled = false;
function installCleanup(): void {
  if (cleanupInstalled) return;
  cleanupInstalled = true;
  process.on('exit', destroyAll);
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      destroyAll();
      process.kill(process.pid, signal);
    });
  }
}

export function createNetns(prefix: string): Netns {
  installCleanup();
  const name = `bpfredir-${prefix}-${randomBytes(4).toString('hex')}`;
  ip(['netns', 'add', name]);
  let destroyed = false;
  const ns: Netns = {
    name,
    path: `/var/run/netns/${name}`,
    exec: (cmd, args, opts = {}) => spawn('ip', ['netns', 'exec', name, cmd, ...args], opts),
    run: (cmd, args) => ip(['netns', 'exec', name, cmd, ...args]),
    destroy() {
      if (destroyed) return;
      destroyed = true;
      live.delete(ns);
      // Processes inside would keep the namespace alive after its name is gone.
      const pids = ip(['netns', 'pids', name]).split('\n').filter(Boolean);
      for (const pid of pids) {
        try {
          process.kill(Number(pid), 'SIGKILL');
        } catch {
          // already exited
        }
      }
      ip(['netns', 'del', name]);
    },
  };
  live.add(ns);
  try {
    ip(['-n', name, 'link', 'set', 'lo', 'up']);
  } catch (err) {
    ns.destroy();
    throw err;
  }
  return ns;
}

/** `ip route add local PREFIX dev lo` inside ns: the namespace accepts any address in PREFIX. */
export function addLocalRoute(ns: Netns, prefix: string): void {
  ip(['-n', ns.name, 'route', 'add', 'local', prefix, 'dev', 'lo']);
}

function skipOrFail(t: TestContext, reason: string): false {
  if (process.env.CI === 'true') throw new Error(`kernel test cannot run under CI: ${reason}`);
  t.skip(reason);
  return false;
}

/** True when running as root; otherwise skips the test (fails it under CI=true). */
export function requireRoot(t: TestContext): boolean {
  if (process.getuid?.() !== 0) return skipOrFail(t, 'needs root (network namespaces, BPF)');
  return true;
}

/** requireRoot plus the kernel features of the BPF data path (sk_lookup, sockmap verdict). */
export function requireBpf(t: TestContext): boolean {
  if (!requireRoot(t)) return false;
  const { problems } = loadNative().probeFeatures();
  if (problems.length > 0) return skipOrFail(t, problems.join('; '));
  return true;
}

/**
 * For describe-level gating: false when root and the BPF data path are available,
 * otherwise the reason to skip — and under CI=true it throws instead, since a
 * skipped kernel test there is a failure.
 */
export function bpfSkipReason(): string | false {
  let reason: string | undefined;
  if (process.getuid?.() !== 0) reason = 'needs root (network namespaces, BPF)';
  else {
    const { problems } = loadNative().probeFeatures();
    if (problems.length > 0) reason = problems.join('; ');
  }
  if (!reason) return false;
  if (process.env.CI === 'true') throw new Error(`kernel test cannot run under CI: ${reason}`);
  return reason;
}

/**
 * A veth pair between two namespaces, `a` at aAddr and `b` at bAddr (same /24,
 * e.g. 10.99.3.1 and 10.99.3.2): addresses that exist only inside them.
 */
export function linkNetns(a: Netns, b: Netns, aAddr: string, bAddr: string): void {
  ip(['-n', a.name, 'link', 'add', 'veth0', 'type', 'veth', 'peer', 'name', 'veth0', 'netns', b.name]);
  ip(['-n', a.name, 'addr', 'add', `${aAddr}/24`, 'dev', 'veth0']);
  ip(['-n', b.name, 'addr', 'add', `${bAddr}/24`, 'dev', 'veth0']);
  ip(['-n', a.name, 'link', 'set', 'veth0', 'up']);
  ip(['-n', b.name, 'link', 'set', 'veth0', 'up']);
}

/** TCP ports a process listens on inside ns (ss -ltnp). */
export function listeningPorts(ns: Netns, pid: number): number[] {
  const lines = ns.run('ss', ['-ltnpH']).split('\n').filter((l) => l.includes(`pid=${pid},`));
  return [...new Set(lines.map((l) => Number(/:(\d+)\s/.exec(l.split(/\s+/)[3] + ' ')?.[1])))];
}
