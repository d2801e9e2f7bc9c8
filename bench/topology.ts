/**
 * The two network layouts the benchmark runs in. Namespaces get a random suffix so parallel
 * runs (and other engineers' tests) never collide; addresses exist only inside them.
 *
 *   loopback: one namespace; client, redirector and server talk over 127.0.0.1.
 *   router:   client ns ─veth─ router ns (redirector; "direct" = ip_forward) ─veth─ server ns, MTU 1500.
 */
import { randomBytes } from 'node:crypto';
import { onCleanup } from './cleanup.js';
import { sh } from './proc.js';

export type TopologyKind = 'loopback' | 'router';
export const TOPOLOGIES: TopologyKind[] = ['loopback', 'router'];

export interface Topology {
  kind: TopologyKind;
  clientNs: string;
  redirectorNs: string;
  serverNs: string;
  /** Where the servers listen (inside serverNs). */
  serverAddr: string;
  /** Where a redirector listens (inside redirectorNs); the client connects here. */
  proxyAddr: string;
  /** Router only: the redirector namespace's interfaces towards the client and the server. */
  interfaces?: { client: string; server: string };
  destroy(): void;
}

// The default ephemeral range (32768-60999) stays clear of the service and redirector ports.
const NS_SYSCTLS = [
  'net.ipv4.tcp_tw_reuse=1',
  'net.core.somaxconn=65535',
  'net.ipv4.tcp_max_syn_backlog=65535',
];

function createNetns(name: string): () => void {
  sh(['ip', 'netns', 'add', name]);
  const remove = onCleanup(`netns ${name}`, () => {
    // Kill anything still inside before the name goes away.
    const pids = sh(['ip', 'netns', 'pids', name]).split('\n').filter(Boolean);
    for (const pid of pids) {
      try {
        process.kill(Number(pid), 'SIGKILL');
      } catch {
        /* gone */
      }
    }
    sh(['ip', 'netns', 'del', name]);
  });
  sh(['ip', '-n', name, 'link', 'set', 'lo', 'up']);
  for (const setting of NS_SYSCTLS) sh(['ip', 'netns', 'exec', name, 'sysctl', '-qw', setting]);
  return remove;
}

export function createTopology(kind: TopologyKind): Topology {
  const id = randomBytes(3).toString('hex');
  if (kind === 'loopback') {
    const ns = `bfrb-${id}-lo`;
    const destroy = createNetns(ns);
    return { kind, clientNs: ns, redirectorNs: ns, serverNs: ns, serverAddr: '127.0.0.1', proxyAddr: '127.0.0.1', destroy };
  }
  const [c, r, s] = [`bfrb-${id}-c`, `bfrb-${id}-r`, `bfrb-${id}-s`];
  const removers = [createNetns(c), createNetns(r), createNetns(s)];
  // Create each veth pair directly inside its namespaces: no interface ever appears in the root ns.
  sh(['ip', '-n', c, 'link', 'add', 'eth0', 'mtu', '1500', 'type', 'veth', 'peer', 'name', 'to-client', 'netns', r]);
  sh(['ip', '-n', s, 'link', 'add', 'eth0', 'mtu', '1500', 'type', 'veth', 'peer', 'name', 'to-server', 'netns', r]);
  const ip = (ns: string, ...args: string[]) => sh(['ip', '-n', ns, ...args]);
  ip(c, 'addr', 'add', '10.99.1.2/24', 'dev', 'eth0');
  ip(r, 'addr', 'add', '10.99.1.1/24', 'dev', 'to-client');
  ip(r, 'addr', 'add', '10.99.2.1/24', 'dev', 'to-server');
  ip(s, 'addr', 'add', '10.99.2.2/24', 'dev', 'eth0');
  for (const [ns, dev] of [[c, 'eth0'], [r, 'to-client'], [r, 'to-server'], [s, 'eth0']]) ip(ns, 'link', 'set', dev, 'up');
  ip(c, 'route', 'add', 'default', 'via', '10.99.1.1');
  ip(s, 'route', 'add', 'default', 'via', '10.99.2.1');
  sh(['ip', 'netns', 'exec', r, 'sysctl', '-qw', 'net.ipv4.ip_forward=1']);
  return {
    kind,
    clientNs: c,
    redirectorNs: r,
    serverNs: s,
    serverAddr: '10.99.2.2',
    proxyAddr: '10.99.1.1',
    interfaces: { client: 'to-client', server: 'to-server' },
    destroy: () => removers.reverse().forEach((remove) => remove()),
  };
}
