/**
 * CPU of a redirector including every child it ever forked (socat and redir fork per connection
 * and may never reap them into cutime): a cgroup v2 group per started redirector, read from
 * cpu.stat usage_usec (present with or without the cpu controller). Without a cgroup2 mount we
 * fall back to summing the live process tree from /proc.
 */
import { mkdirSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs';
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

const sleepSync = (ms: number) => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);

/** Synchronous so it also works from a signal handler; exited processes linger until reaped. */
function killAndRemove(path: string): void {
  try {
    writeFileSync(join(path, 'cgroup.kill'), '1'); // Linux >= 5.14
  } catch {
    /* older kernel: the process-group kill already ran */
  }
  for (let i = 0; i < 200 && readFileSync(join(path, 'cgroup.procs'), 'utf8').trim() !== ''; i++) sleepSync(10);
  rmdirSync(path);
}

export interface CpuGroup {
  /** Directory whose cgroup.procs a process writes itself into. */
  path: string;
  cpuSeconds(): number;
  /** Kill whatever is still in the group (forked children), then remove it. */
  remove(): void;
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
  const remove = onCleanup(`cgroup ${path}`, () => killAndRemove(path));
  return {
    path,
    remove,
    cpuSeconds: () => Number(/usage_usec (\d+)/.exec(readFileSync(join(path, 'cpu.stat'), 'utf8'))?.[1] ?? 0) / 1e6,
  };
}
