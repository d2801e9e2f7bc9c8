/**
 * HTTP and stdin helpers for processes inside a netns (this test process is outside it):
 *
 *   const res = await httpGet(ns, 'http://127.0.0.1:9477/metrics');  // {status, contentType, body}
 *   const lint = await runWithInput(ns, 'promtool', ['check', 'metrics'], res.body);
 */
import type { Netns } from './netns.js';

export interface HttpResponse {
  /** 0 when nothing answered (error says why). */
  status: number;
  contentType: string;
  body: string;
  error?: string;
}

const GET_SCRIPT = `
fetch(process.argv[1], { signal: AbortSignal.timeout(Number(process.argv[2])) }).then(
  async (r) => console.log(JSON.stringify({ status: r.status, contentType: r.headers.get('content-type') ?? '', body: await r.text() })),
  (e) => console.log(JSON.stringify({ status: 0, contentType: '', body: '', error: String(e.cause?.code ?? e.message) })),
);`;

export async function httpGet(ns: Netns, url: string, timeoutMs = 10_000): Promise<HttpResponse> {
  const { stdout } = await runWithInput(ns, process.execPath, ['-e', GET_SCRIPT, url, String(timeoutMs)], '');
  return JSON.parse(stdout) as HttpResponse;
}

export interface RunResult {
  status: number | null;
  stdout: string;
  stderr: string;
}

export function runWithInput(ns: Netns, cmd: string, args: string[], input: string): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = ns.exec(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.once('error', reject);
    child.once('close', (status) => resolve({ status, stdout, stderr }));
    child.stdin!.end(input);
  });
}
