/** Waiting for a freshly started service to accept connections. */
import { Background, runInNetns, sleep } from './proc.js';

/** Resolves once something listens on port inside netns; throws if proc dies or time runs out. */
export async function waitListening(netns: string, port: number, proc: Background, timeoutMs = 10_000): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (performance.now() < deadline) {
    if (proc.hasExited()) throw new Error(`${proc.label} exited before listening: ${lastLines(proc.output())}`);
    const ss = await runInNetns({ netns, argv: ['ss', '-Hltn', `sport = :${port}`] }, 5000);
    if (ss.stdout.trim()) return;
    await sleep(50);
  }
  throw new Error(`${proc.label} is not listening on port ${port} after ${timeoutMs} ms: ${lastLines(proc.output())}`);
}

/** Resolves once proc printed a line matching pattern; throws if it dies or time runs out. */
export async function waitOutput(proc: Background, pattern: RegExp, timeoutMs: number): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (performance.now() < deadline) {
    if (pattern.test(proc.head()) || pattern.test(proc.output())) return;
    if (proc.hasExited()) throw new Error(`${proc.label} exited: ${lastLines(proc.output())}`);
    await sleep(10);
  }
  throw new Error(`${proc.label} printed no ${pattern} within ${timeoutMs} ms: ${lastLines(proc.output())}`);
}

const MAX_MESSAGE = 400;

/** The last n lines, shortened to one readable error message. */
export function lastLines(text: string, n = 3): string {
  const lines = text.trim().split('\n').filter(Boolean).slice(-n);
  const joined = lines.join(' | ');
  if (!joined) return '(no output)';
  return joined.length > MAX_MESSAGE ? `${joined.slice(0, MAX_MESSAGE)} …` : joined;
}
