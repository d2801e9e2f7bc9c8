/**
 * CPU of a redirector including every child it ever forked (socat and redir fork per connection
 * and may never reap them into cutime): a cgroup v2 group per started redirector, read from
 * cpu.stat usage_usec (present with or without the cpu controller). Without a cgroup2 mount we
 * fall back to summing the live process tree from /proc.
 */
import { mkdirSync, readFileSync, rmdirSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { onCleanup } from './cleanup.js';

function cgroup2Mount(): string | null {
  const mount = readFileSync('/proc/mounts', 'utf8')
    .split('\n')
    .map((line) => line.split(' '))
    .find((fields) => fields[2] === 'cgroup2');
  return mount ? mount[1] : null;
}

const MOUNT = cgroup2Mount();

export interface CpuGroup {
  /** Directory whose cgroup.procs a process writes itself into. */
  path: string;
  cpuSeconds(): number;
}

/** A fresh group, removed at cleanup (after its processes are gone); null without cgroup v2. */
export function createCpuGroup(label: string): CpuGroup | null {
  if (!MOUNT) return null;
  const path = join(MOUNT, `bfrbench-${label}-${randomBytes(3).toString('hex')}`);
  try {
    mkdirSync(path);
  } catch {
    return null; // not writable here (e.g. unprivileged container): use the process-tree fallback
  }
  onCleanup(`cgroup ${path}`, () => rmdirSync(path));
  return {
    path,
    cpuSeconds: () => Number(/usage_usec (\d+)/.exec(readFileSync(join(path, 'cpu.stat'), 'utf8'))?.[1] ?? 0) / 1e6,
  };
}
