/**
 * Runs the bpfredir CLI as a child process (inside a netns) for end-to-end tests.
 *
 *   const proxy = await startBpfredir(ns, ['forward', '127.0.0.1:8080', `127.0.0.1:${port}`]);
 *   await proxy.waitForLog((l) => l.msg === 'closed');   // JSON log lines on stderr
 *   proxy.pid; proxy.logs;                                // for CPU / fd checks
 *   const code = await proxy.stop();                      // SIGTERM, resolves the exit code
 *   await runCli(ns, ['status', '--json']);               // a short command: {status, stdout, stderr}
 *
 * Always starts with --log-format json and resolves once the start-up line
 * ("bpfredir: ...") is on stdout; rejects with the stderr text if it exits first.
 */
import { execFile, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { Netns } from './netns.js';

export interface LogLine {
  level: string;
  msg: string;
  [field: string]: unknown;
}

export interface BpfredirProcess {
  pid: number;
  startup: string;
  logs: LogLine[];
  /** Resolves with the first log line (past or future) matching; rejects after timeoutMs. */
  waitForLog(match: (line: LogLine) => boolean, timeoutMs?: number): Promise<LogLine>;
  /** SIGTERM and wait; resolves the exit code (signal name if killed by one). */
  stop(signal?: NodeJS.Signals): Promise<number | string>;
  exited: Promise<number | string>;
}

export const cliPath = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));

export function startBpfredir(ns: Netns, args: string[], timeoutMs = 15_000): Promise<BpfredirProcess> {
  const child: ChildProcess = ns.exec(process.execPath, [cliPath, ...args, '--log-format', 'json'], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const logs: LogLine[] = [];
  const watchers: { match: (l: LogLine) => boolean; resolve: (l: LogLine) => void }[] = [];
  let stderr = '';
  let stdout = '';
  let pending = '';
  child.stderr!.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
    pending += chunk.toString();
    const lines = pending.split('\n');
    pending = lines.pop()!;
    for (const text of lines) {
      let line: LogLine;
      try {
        line = JSON.parse(text) as LogLine;
      } catch {
        line = { level: 'raw', msg: text };
      }
      logs.push(line);
      for (const w of [...watchers]) {
        if (w.match(line)) {
          watchers.splice(watchers.indexOf(w), 1);
          w.resolve(line);
        }
      }
    }
  });
  const exited = new Promise<number | string>((resolve) =>
    child.once('exit', (code, signal) => resolve(code ?? signal ?? -1)),
  );

  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`bpfredir did not start within ${timeoutMs} ms: ${stderr}`));
    }, timeoutMs);
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`bpfredir exited (${code}) before starting: ${stderr.trim()}`));
    });
    child.stdout!.on('data', (chunk: Buffer) => {
      stdout += chunk.toString();
      // With --log-format json the start line is a JSON record whose msg is the text line.
      const line = stdout
        .split('\n')
        .map((l) => (l.startsWith('{') ? String((JSON.parse(l) as { msg?: unknown }).msg) : l))
        .find((l) => l.startsWith('bpfredir:'));
      if (!line) return;
      clearTimeout(timer);
      resolve({
        pid: child.pid!,
        startup: line,
        logs,
        exited,
        waitForLog(match, waitMs = 20_000) {
          const seen = logs.find(match);
          if (seen) return Promise.resolve(seen);
          return new Promise((resolveLog, rejectLog) => {
            const t = setTimeout(() => rejectLog(new Error(`no matching bpfredir log line within ${waitMs} ms; logs:\n${stderr}`)), waitMs);
            watchers.push({ match, resolve: (l) => (clearTimeout(t), resolveLog(l)) });
          });
        },
        stop(signal = 'SIGTERM') {
          if (child.exitCode === null && child.signalCode === null) child.kill(signal);
          return exited;
        },
      });
    });
  });
}

export interface CliResult {
  status: number | null;
  stdout: string;
  stderr: string;
}

/**
 * Runs one short bpfredir command (status, check, ...) to its end inside ns. Not spawnSync:
 * this process must keep reading the daemon's log pipe meanwhile.
 */
export function runCli(ns: Netns, args: string[], timeoutMs = 30_000): Promise<CliResult> {
  return new Promise((resolve) => {
    execFile('ip', ['netns', 'exec', ns.name, process.execPath, cliPath, ...args], { encoding: 'utf8', timeout: timeoutMs }, (err, stdout, stderr) => {
      const code = (err as { code?: unknown } | null)?.code;
      resolve({ status: err ? (typeof code === 'number' ? code : null) : 0, stdout, stderr });
    });
  });
}
