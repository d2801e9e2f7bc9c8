/**
 * Many concurrent TCP clients in one process (run inside a netns):
 *   node dist/test/helpers/tcp-many.js --host H --port P --connections N --bytes B
 * Each connection sends B stream bytes, half-closes and reads the reply to EOF
 * (against an echo server the reply must equal what was sent). Prints one JSON
 * line: {connections, ok, failed, errors: [...first few], ms}.
 */
import net from 'node:net';
import { parseArgs } from 'node:util';
import { StreamHash, writeStream } from './pattern.js';

const { values: opt } = parseArgs({
  options: {
    host: { type: 'string', default: '127.0.0.1' },
    port: { type: 'string' },
    connections: { type: 'string', default: '200' },
    bytes: { type: 'string', default: '1048576' },
    'timeout-ms': { type: 'string', default: '120000' },
  },
});

function one(): Promise<string | null> {
  return new Promise((resolve) => {
    const sent = new StreamHash();
    const received = new StreamHash();
    let error: string | null = null;
    const socket = net.connect({ host: opt.host, port: Number(opt.port), allowHalfOpen: true });
    const timer = setTimeout(() => socket.destroy(new Error('timeout')), Number(opt['timeout-ms']));
    socket.on('data', (chunk: Buffer) => received.update(chunk));
    socket.on('end', () => socket.end());
    socket.on('error', (err: NodeJS.ErrnoException) => (error ??= err.code ?? err.message));
    socket.on('close', () => {
      clearTimeout(timer);
      if (!error && received.digest() !== sent.digest()) error = `reply differs (${received.bytes}/${sent.bytes} bytes)`;
      resolve(error);
    });
    socket.on('connect', async () => {
      await writeStream(socket, Number(opt.bytes), sent);
      socket.end();
    });
  });
}

const started = performance.now();
const results = await Promise.all(Array.from({ length: Number(opt.connections) }, one));
const errors = results.filter((r): r is string => r !== null);
process.stdout.write(
  JSON.stringify({
    connections: results.length,
    ok: results.length - errors.length,
    failed: errors.length,
    errors: errors.slice(0, 5),
    ms: Math.round(performance.now() - started),
  }) + '\n',
);
