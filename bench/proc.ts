/**
 * Running commands inside network namespaces: foreground runs with a deadline, background
 * services that are always killed (whole process group), and per-process-tree CPU and RSS
 * read from /proc.
 */
import { spawn, execFileSync } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import { onCleanup } from './cleanup.js';

export const CLOCK_TICKS_PER_SEC = Number(execFileSync('getconf', ['CLK_TCK']).toString().trim()) || 100;

/** RLIMIT_NOFILE hard limit of this process: without CAP_SYS_RESOURCE no child can go above it. */
export function hardNofileLimit(): number {
  const line = /^Max open files\s+\S+\s+(\S+)/m.exec(readFileSync('/proc/self/limits', 'utf8'));
  return line?.[1] === 'unlimited' ? 1 << 20 : Number(line?.[1] ?? 1024);
}

export interface NsCommand {
  netns: string;
  argv: string[];
  /** Pin to this CPU (taskset); children inherit it. */
  cpu?: number;
  /** Set RLIMIT_NOFILE (prlimit) for many-connection tests; at most hardNofileLimit(). */
  nofile?: number;
  /** cgroup v2 directory the process joins before it starts (so all its children count). */
  cgroup?: string;
}

/** sh, ip netns exec, prlimit and taskset all exec() the next program, so the pid we get is the tool's. */
function wrapped(c: NsCommand): string[] {
  const argv = c.cgroup ? ['sh', '-c', 'echo $$ > "$0/cgroup.procs" && exec "$@"', c.cgroup] : [];
  argv.push('ip', 'netns', 'exec', c.netns);
  if (c.nofile) argv.push('prlimit', `--nofile=${c.nofile}:${c.nofile}`);
  if (c.cpu !== undefined) argv.push('taskset', '-c', String(c.cpu));
  return [...argv, ...c.argv];
}

export interface Background {
  pid: number;
  label: string;
  /** Last few KB of stdout+stderr, for error messages. */
  output(): string;
  /** First few KB of stdout+stderr (start-up lines survive long output). */
  head(): string;
  /** Resolves with the exit code (or null when killed) once the process ended. */
  exited: Promise<number | null>;
  hasExited(): boolean;
  stop(): Promise<void>;
}

const OUTPUT_KEEP = 8192;
const HEAD_KEEP = 65536;

export function startBackground(label: string, c: NsCommand): Background {
  const [file, ...args] = wrapped(c);
  const child = spawn(file, args, { detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let head = '';
  const keep = (chunk: Buffer) => {
    const text = chunk.toString();
    if (head.length < HEAD_KEEP) head += text.slice(0, HEAD_KEEP - head.length);
    out = (out + text).slice(-OUTPUT_KEEP);
  };
  child.stdout!.on('data', keep);
  child.stderr!.on('data', keep);
  let ended = false;
  const exited = new Promise<number | null>((resolve) => {
    child.on('error', (err) => {
      keep(Buffer.from(`${err.message}\n`));
      ended = true;
      resolve(-1);
    });
    child.on('exit', (code) => {
      ended = true;
      resolve(code);
    });
  });
  const pid = child.pid ?? -1;
  const killGroup = (signal: NodeJS.Signals) => {
    if (pid > 0) {
      try {
        process.kill(-pid, signal);
      } catch {
        /* already gone */
      }
    }
  };
  const forget = onCleanup(`process ${label}`, () => killGroup('SIGKILL'));
  return {
    pid,
    label,
    output: () => out,
    head: () => head,
    exited,
    hasExited: () => ended,
    async stop() {
      if (!ended) {
        killGroup('SIGTERM');
        const timer = setTimeout(() => killGroup('SIGKILL'), 2000);
        await exited;
        clearTimeout(timer);
      }
      killGroup('SIGKILL'); // stragglers in the group (forked children)
      forget();
    },
  };
}

export interface RunResult {
  code: number | null;
  stdout: string;
  stderr: string;
  timedOut: boolean;
}

/** Run to completion; killed (whole group) after timeoutMs. */
export function runInNetns(c: NsCommand, timeoutMs: number): Promise<RunResult> {
  return new Promise((resolve) => {
    const [file, ...args] = wrapped(c);
    const child = spawn(file, args, { detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    let timedOut = false;
    child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    const kill = () => {
      try {
        if (child.pid) process.kill(-child.pid, 'SIGKILL');
      } catch {
        /* already gone */
      }
    };
    const forget = onCleanup(`run ${c.argv[0]}`, kill);
    const timer = setTimeout(() => {
      timedOut = true;
      kill();
    }, timeoutMs);
    const finish = (code: number | null) => {
      clearTimeout(timer);
      forget();
      resolve({ code, stdout, stderr, timedOut });
    };
    child.on('error', (err) => {
      stderr += err.message;
      finish(-1);
    });
    child.on('close', finish);
  });
}

/** Synchronous helper for setup/teardown commands; throws with the command's stderr. */
export function sh(argv: string[]): string {
  try {
    return execFileSync(argv[0], argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'] }).toString();
  } catch (err) {
    const e = err as { stderr?: Buffer; message: string };
    throw new Error(`${argv.join(' ')}: ${e.stderr?.toString().trim() || e.message}`);
  }
}

function readStatFields(pid: number): string[] | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // comm may contain spaces: fields start after the last ')'
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  } catch {
    return null;
  }
}

/** pid plus every descendant alive now. */
function processTree(root: number): number[] {
  const children = new Map<number, number[]>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const fields = readStatFields(Number(entry));
    if (!fields) continue;
    const ppid = Number(fields[1]);
    if (!children.has(ppid)) children.set(ppid, []);
    children.get(ppid)!.push(Number(entry));
  }
  const tree: number[] = [];
  const queue = [root];
  while (queue.length > 0) {
    const pid = queue.shift()!;
    tree.push(pid);
    queue.push(...(children.get(pid) ?? []));
  }
  return tree;
}

/** CPU seconds used by the live tree plus children it reaped (cutime/cstime); misses unreaped children. */
export function treeCpuSeconds(roots: number[]): number {
  let ticks = 0;
  for (const root of roots) {
    for (const pid of processTree(root)) {
      const f = readStatFields(pid);
      // fields[11..14] = utime stime cutime cstime (stat fields 14-17)
      if (f) ticks += Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14]);
    }
  }
  return ticks / CLOCK_TICKS_PER_SEC;
}

/** Sum of VmRSS and VmHWM (bytes) over the trees (shared pages counted once per process). */
export function treeMemory(roots: number[]): { rss: number; hwm: number; processes: number } {
  let rss = 0;
  let hwm = 0;
  let processes = 0;
  for (const root of roots) {
    for (const pid of processTree(root)) {
      let status: string;
      try {
        status = readFileSync(`/proc/${pid}/status`, 'utf8');
      } catch {
        continue;
      }
      processes++;
      rss += Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0) * 1024;
      hwm += Number(/VmHWM:\s+(\d+)/.exec(status)?.[1] ?? 0) * 1024;
    }
  }
  return { rss, hwm, processes };
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
