/**
 * Runs the traffic scripts (tcp-server.ts, tcp-client.ts) as child processes,
 * inside a netns when one is given (null: this process's namespace).
 *
 *   const server = await startServer(ns, { mode: 'echo' });
 *   const client = await runClient(ns, { port: server.port, bytes: 1 << 20 });
 *   assert.equal(client.recvSha, client.sentSha);
 *   const report = await server.nextReport();   // one per connection
 *   await server.stop();
 *
 * With shareListener the server also sends its listening socket to this
 * process: put listenerFd(server.listener) into a sockmap, then close
 * server.listener here so only the child accepts.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import type net from 'node:net';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import type { Netns } from './netns.js';

export type ServerMode = 'echo' | 'sink' | 'source' | 'slow' | 'close-first' | 'reset' | 'name';

export interface ServerOptions {
  mode: ServerMode;
  host?: string; // default 127.0.0.1
  port?: number; // default 0 (any)
  bytes?: number; // source, close-first: stream bytes to send
  rate?: number; // slow: bytes per second read
  slowMs?: number; // slow: only for this long, then full speed
  after?: number; // reset: bytes received before the reset
  name?: string; // name: the reply; always in reports
  connections?: number; // exit after this many (default: run until stop())
  shareListener?: boolean;
}

export interface ServerReport {
  name: string;
  mode: ServerMode;
  local: string; // getsockname: the original destination when steered
  remote: string;
  recvBytes: number;
  recvSha: string;
  sentBytes: number;
  sentSha: string;
  ms: number;
  error?: string;
}

export interface TrafficServer {
  port: number;
  /** Only with shareListener: this process's copy of the listening socket. */
  listener?: net.Server;
  nextReport(timeoutMs?: number): Promise<ServerReport>;
  stop(): Promise<void>;
}

export interface ClientOptions {
  host?: string;
  port: number;
  bytes?: number;
  /** Do not half-close after sending; end after `expect` bytes or the server's EOF. */
  keepOpen?: boolean;
  expect?: number;
  timeoutMs?: number;
  /** Source address to connect from (one of the netns's own). */
  localAddress?: string;
  /** Sent before the stream and left out of sentSha: e.g. a PROXY protocol header. */
  preamble?: Buffer;
  /** Send the preamble's first this many bytes 100 ms before the rest (two segments). */
  preambleSplit?: number;
}

export interface ClientReport {
  sentSha: string;
  recvSha: string;
  bytes: number;
  recvBytes: number;
  ms: number;
  error?: string;
}

function script(name: string): string {
  return fileURLToPath(new URL(`./${name}`, import.meta.url));
}

function spawnNode(ns: Netns | null, args: string[], ipc: boolean): ChildProcess {
  const stdio = ipc ? ['ignore', 'pipe', 'pipe', 'ipc'] : ['ignore', 'pipe', 'pipe'];
  const options = { stdio: stdio as ('ignore' | 'pipe' | 'ipc')[] };
  return ns ? ns.exec(process.execPath, args, options) : spawn(process.execPath, args, options);
}

function collectStderr(child: ChildProcess): () => string {
  let text = '';
  child.stderr!.on('data', (chunk: Buffer) => (text += chunk.toString()));
  return () => text.trim();
}

/** node:net internals: the fd of a listening server (libuv keeps it in _handle). */
export function listenerFd(server: net.Server): number {
  const fd = (server as unknown as { _handle?: { fd?: number } })._handle?.fd;
  if (typeof fd !== 'number' || fd < 0) throw new Error('listener has no fd (not listening?)');
  return fd;
}

export function startServer(ns: Netns | null, opts: ServerOptions): Promise<TrafficServer> {
  const args = [script('tcp-server.js'), '--mode', opts.mode];
  const flags: [string, string | number | undefined][] = [
    ['--host', opts.host], ['--port', opts.port], ['--bytes', opts.bytes], ['--rate', opts.rate], ['--slow-ms', opts.slowMs],
    ['--after', opts.after], ['--name', opts.name], ['--connections', opts.connections],
  ];
  for (const [flag, value] of flags) if (value !== undefined) args.push(flag, String(value));
  if (opts.shareListener) args.push('--share');

  const child = spawnNode(ns, args, opts.shareListener ?? false);
  const stderr = collectStderr(child);
  const reports: ServerReport[] = [];
  const waiting: ((report: ServerReport) => void)[] = [];
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));

  return new Promise((resolve, reject) => {
    let port: number | undefined;
    let listener: net.Server | undefined;
    const server: TrafficServer = {
      get port() {
        return port!;
      },
      get listener() {
        return listener;
      },
      nextReport(timeoutMs = 30_000) {
        const ready = reports.shift();
        if (ready) return Promise.resolve(ready);
        return new Promise((resolveReport, rejectReport) => {
          const timer = setTimeout(() => rejectReport(new Error(`no server report within ${timeoutMs} ms`)), timeoutMs);
          waiting.push((report) => {
            clearTimeout(timer);
            resolveReport(report);
          });
        });
      },
      async stop() {
        listener?.close();
        if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
        await exited;
      },
    };
    const readyWhenComplete = () => {
      if (port !== undefined && (!opts.shareListener || listener)) resolve(server);
    };

    createInterface({ input: child.stdout! }).on('line', (line) => {
      const event = JSON.parse(line) as { event: string; port?: number } & ServerReport;
      if (event.event === 'listening') {
        port = event.port;
        readyWhenComplete();
        return;
      }
      const waiter = waiting.shift();
      if (waiter) waiter(event);
      else reports.push(event);
    });
    child.on('message', (_message, handle) => {
      listener = handle as net.Server;
      readyWhenComplete();
    });
    child.once('exit', (code) => {
      if (port === undefined) reject(new Error(`tcp-server exited (${code}) before listening: ${stderr()}`));
    });
  });
}

export function runClient(ns: Netns | null, opts: ClientOptions): Promise<ClientReport> {
  const args = ['--host', opts.host ?? '127.0.0.1', '--port', String(opts.port)];
  if (opts.bytes !== undefined) args.push('--bytes', String(opts.bytes));
  if (opts.keepOpen) args.push('--keep-open');
  if (opts.expect !== undefined) args.push('--expect', String(opts.expect));
  if (opts.timeoutMs !== undefined) args.push('--timeout-ms', String(opts.timeoutMs));
  if (opts.localAddress !== undefined) args.push('--local-address', opts.localAddress);
  if (opts.preamble?.length) args.push('--preamble', opts.preamble.toString('hex'));
  if (opts.preambleSplit) args.push('--preamble-split', String(opts.preambleSplit));

  return runScript<ClientReport>(ns, 'tcp-client.js', args);
}

/** Runs another helper script (e.g. tcp-many.js) and parses its one JSON line of output. */
export function runScript<T>(ns: Netns | null, name: string, args: string[]): Promise<T> {
  const child = spawnNode(ns, [script(name), ...args], false);
  const stderr = collectStderr(child);
  let stdout = '';
  child.stdout!.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  return new Promise((resolve, reject) => {
    // 'close', not 'exit': stdout is complete only once the pipes are closed.
    child.once('close', (code) => {
      try {
        resolve(JSON.parse(stdout) as T);
      } catch {
        reject(new Error(`${name} exited (${code}) without a report: ${stderr()}`));
      }
    });
  });
}
