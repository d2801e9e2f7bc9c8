/**
 * Connection-setup latency: COUNT sequential connects to HOST:PORT, each timed from connect()
 * to the 'connect' event, then closed. Prints one JSON line (microseconds).
 *   node connect-latency.js HOST PORT COUNT
 */
import { connect } from 'node:net';

const [host, portText, countText] = process.argv.slice(2);
const port = Number(portText);
const count = Number(countText);
if (!host || !(port > 0) || !(count > 0)) {
  process.stderr.write('usage: connect-latency.js HOST PORT COUNT\n');
  process.exit(2);
}

function timeOneConnect(): Promise<number | null> {
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

const samples: number[] = [];
let failed = 0;
for (let i = 0; i < count; i++) {
  const us = await timeOneConnect();
  if (us === null) failed++;
  else samples.push(us);
}
samples.sort((a, b) => a - b);
const pick = (q: number) => samples[Math.min(samples.length - 1, Math.floor(q * samples.length))] ?? NaN;
const avg = samples.reduce((s, x) => s + x, 0) / samples.length;
process.stdout.write(`${JSON.stringify({ count: samples.length, failed, avgUs: avg, p50Us: pick(0.5), p99Us: pick(0.99) })}\n`);
