/**
 * TCP test client, run as a script (usually inside a netns):
 *   node dist/test/helpers/tcp-client.js --host H --port P [--bytes N] [--keep-open]
 *     [--expect M] [--timeout-ms T] [--local-address A] [--preamble HEX [--preamble-split K]]
 * Sends the preamble's bytes (e.g. a PROXY protocol header; not hashed; its first K bytes
 * 100 ms before the rest), then N stream bytes (see pattern.ts), then half-closes (unless --keep-open:
 * then it ends after M bytes came back or the server ended), reads the reply
 * to EOF and prints one JSON line: {sentSha, recvSha, bytes, recvBytes, ms, error?}.
 * Exits 0 even when the connection failed: the report says how.
 */
import net from 'node:net';
import { parseArgs } from 'node:util';
import { StreamHash, writeStream } from './pattern.js';

const { values: opt } = parseArgs({
  options: {
    host: { type: 'string', default: '127.0.0.1' },
    port: { type: 'string' },
    bytes: { type: 'string', default: '0' },
    'keep-open': { type: 'boolean', default: false },
    expect: { type: 'string', default: '0' },
    'timeout-ms': { type: 'string', default: '60000' },
    'local-address': { type: 'string' },
    preamble: { type: 'string', default: '' },
    'preamble-split': { type: 'string', default: '0' },
  },
});
if (!opt.port) throw new Error('--port is required');
const expect = Number(opt.expect);

const started = performance.now();
const received = new StreamHash();
const sent = new StreamHash();
let error: string | undefined;
let sendDone = false;
let peerEnded = false;

const socket = net.connect({ host: opt.host, port: Number(opt.port), allowHalfOpen: true, ...(opt['local-address'] && { localAddress: opt['local-address'] }) });
const timer = setTimeout(() => {
  error ??= 'timeout';
  socket.destroy();
}, Number(opt['timeout-ms']));

function endWhenFinished(): void {
  if (!sendDone || socket.writableEnded) return;
  if (!opt['keep-open'] || peerEnded || (expect > 0 && received.bytes >= expect)) socket.end();
}

socket.on('data', (chunk: Buffer) => {
  received.update(chunk);
  endWhenFinished();
});
socket.on('end', () => {
  peerEnded = true;
  endWhenFinished();
});
socket.on('error', (err: NodeJS.ErrnoException) => (error ??= err.code ?? err.message));
socket.on('close', () => {
  clearTimeout(timer);
  const report = {
    sentSha: sent.digest(), recvSha: received.digest(), bytes: sent.bytes,
    recvBytes: received.bytes, ms: Math.round(performance.now() - started), error,
  };
  process.stdout.write(JSON.stringify(report) + '\n');
});
socket.on('connect', async () => {
  const preamble = Buffer.from(opt.preamble!, 'hex');
  const split = Number(opt['preamble-split']);
  if (split > 0) {
    socket.write(preamble.subarray(0, split));
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  if (preamble.length > split) socket.write(preamble.subarray(split));
  await writeStream(socket, Number(opt.bytes), sent);
  sendDone = true;
  endWhenFinished();
});
