/**
 * Connection-setup latency: COUNT rounds of sequential connects, one to each TARGET per round
 * (alternating, so drift of a busy machine hits every target alike), each timed from connect()
 * to the 'connect' event, then closed. Prints one JSON line per target (microseconds).
 *   node connect-latency.js COUNT HOST:PORT [HOST:PORT ...]
 */
import { connect } from 'node:net';

const [countText, ...targetTexts] = process.argv.slice(2);
const count = Number(countText);
const targets = targetTexts.map((t) => {
  const at = t.lastIndexOf(':');
  return { host: t.slice(0, at), port: Number(t.slice(at + 1)) };
});
if (!(count > 0) || targets.length === 0 || targets.some((t) => !t.host || !(t.port > 0))) {
  process.stderr.write('usage: connect-latency.js COUNT HOST:PORT [HOST:PORT ...]\n');
  process.exit(2);
}

function timeOneConnect(host: string, port: number): Promise<number | null> {
  return new Promise((resolve) => {
    const started = process.hrtime.bigint();
    const socket = connect({ host, port });
    socket.once('connect', () => {
      const us = Number(process.hrtime.bigint() - started) / 1000;
      socket.destroy();
      resolve(us);
    });
    socket.once('error', () => resolve(null));
  });
}

const samples = targets.map(() => [] as number[]);
const failed = targets.map(() => 0);
for (let i = 0; i < count; i++) {
  for (const [t, { host, port }] of targets.entries()) {
    const us = await timeOneConnect(host, port);
    if (us === null) failed[t]++;
    else samples[t].push(us);
  }
}
for (const [t, s] of samples.entries()) {
  s.sort((a, b) => a - b);
  const pick = (q: number) => s[Math.min(s.length - 1, Math.floor(q * s.length))] ?? NaN;
  const avg = s.reduce((sum, x) => sum + x, 0) / s.length;
  const { host, port } = targets[t];
  process.stdout.write(`${JSON.stringify({ target: `${host}:${port}`, count: s.length, failed: failed[t], avgUs: avg, p50Us: pick(0.5), p99Us: pick(0.99) })}\n`);
}
