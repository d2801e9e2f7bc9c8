/**
 * Many idle TCP connections, for the redirector-RSS test.
 *   node idle-conns.js serve HOST PORT     accept and hold every connection, never read or write;
 *                                          print "held N" whenever the count changed (at most 10/s)
 *   node idle-conns.js hold HOST PORT N    open N connections, print one JSON line, hold until killed
 */
import { connect, createServer, Socket } from 'node:net';

const [mode, host, portText, countText] = process.argv.slice(2);
const port = Number(portText);

function serve(): void {
  const held = new Set<Socket>();
  const server = createServer((socket) => {
    socket.on('error', () => undefined);
    socket.on('close', () => held.delete(socket));
    held.add(socket);
  });
  server.listen({ host, port, backlog: 65535 });
  let reported = -1;
  setInterval(() => {
    if (held.size === reported) return;
    reported = held.size;
    process.stdout.write(`held ${reported}\n`);
  }, 100);
}

async function hold(count: number): Promise<void> {
  const CONCURRENT_CONNECTS = 256; // the redirector's backlog, not ours, should be the limit
  const held: Socket[] = [];
  let failed = 0;
  let firstError = '';
  const started = performance.now();
  const openOne = () =>
    new Promise<void>((resolve) => {
      const socket = connect({ host, port });
      socket.once('connect', () => {
        held.push(socket);
        resolve();
      });
      socket.on('error', (err) => {
        if (!held.includes(socket)) {
          failed++;
          firstError ||= err.message;
          resolve();
        }
      });
    });
  let next = 0;
  const worker = async () => {
    while (next < count) {
      next++;
      await openOne();
    }
  };
  await Promise.all(Array.from({ length: CONCURRENT_CONNECTS }, worker));
  process.stdout.write(`${JSON.stringify({ connected: held.length, failed, firstError, ms: performance.now() - started })}\n`);
  setInterval(() => undefined, 1 << 30); // hold until killed
}

if (mode === 'serve' && port > 0) serve();
else if (mode === 'hold' && port > 0 && Number(countText) > 0) void hold(Number(countText));
else {
  process.stderr.write('usage: idle-conns.js serve HOST PORT | hold HOST PORT COUNT\n');
  process.exit(2);
}
