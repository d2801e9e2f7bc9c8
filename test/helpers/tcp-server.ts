/**
 * TCP test server, run as a script (usually inside a netns):
 *   node dist/test/helpers/tcp-server.js --mode echo [--host 127.0.0.1] [--port 0]
 *     [--bytes N] [--rate B/s] [--after N] [--name S] [--connections K] [--share]
 * Modes:
 *   echo         send back everything, end after the client's EOF
 *   sink         read everything, end after the client's EOF
 *   source       read the request up to the client's EOF, then send --bytes stream bytes and end
 *   slow         like sink, but read at about --rate bytes/s (a slow consumer);
 *                with --slow-ms T only for the first T ms, then at full speed
 *   close-first  send --bytes stream bytes and end at once, while still reading the client
 *   reset        reset the connection after --after bytes were received (0: at once)
 *   name         send --name and end (which server answered?)
 * Prints one JSON line {"event":"listening",port} then one {"event":"done",...}
 * per connection (see ServerReport in traffic.ts); exits after --connections
 * connections (0: never). --share sends the listening socket to the parent
 * over the IPC channel (so it can put the fd into a sockmap).
 */
import net from 'node:net';
import { parseArgs } from 'node:util';
import { StreamHash, writeStream } from './pattern.js';

const { values: opt } = parseArgs({
  options: {
    mode: { type: 'string', default: 'echo' },
    host: { type: 'string', default: '127.0.0.1' },
    port: { type: 'string', default: '0' },
    bytes: { type: 'string', default: '0' },
    rate: { type: 'string', default: '1048576' },
    'slow-ms': { type: 'string', default: '0' },
    after: { type: 'string', default: '0' },
    name: { type: 'string', default: 'server' },
    connections: { type: 'string', default: '0' },
    share: { type: 'boolean', default: false },
  },
});
const mode = opt.mode!;
const bytes = Number(opt.bytes);
const rate = Number(opt.rate);
const slowMs = Number(opt['slow-ms']);
const resetAfter = Number(opt.after);
const maxConnections = Number(opt.connections);
const modes = ['echo', 'sink', 'source', 'slow', 'close-first', 'reset', 'name'];
if (!modes.includes(mode)) throw new Error(`unknown --mode ${mode}: use one of ${modes.join(', ')}`);

function print(event: object): void {
  process.stdout.write(JSON.stringify(event) + '\n');
}

function address(host: string | undefined, port: number | undefined): string {
  return host?.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}

let accepted = 0;
let finished = 0;

function serve(socket: net.Socket): void {
  const started = performance.now();
  const received = new StreamHash();
  // An echo sends exactly what it receives: hash it once.
  const sent = mode === 'echo' ? received : new StreamHash();
  let error: string | undefined;
  const local = address(socket.localAddress, socket.localPort);
  const remote = address(socket.remoteAddress, socket.remotePort);

  socket.on('error', (err: NodeJS.ErrnoException) => (error ??= err.code ?? err.message));
  socket.on('close', () => {
    print({
      event: 'done', name: opt.name, mode, local, remote,
      recvBytes: received.bytes, recvSha: received.digest(),
      sentBytes: sent.bytes, sentSha: sent.digest(),
      ms: Math.round(performance.now() - started), error,
    });
    if (maxConnections > 0 && ++finished >= maxConnections) process.exit(0);
  });

  const endWhenDone = () => socket.end();
  switch (mode) {
    case 'echo':
      socket.on('data', (chunk: Buffer) => {
        received.update(chunk);
        if (!socket.write(chunk)) socket.pause();
      });
      socket.on('drain', () => socket.resume());
      socket.on('end', endWhenDone);
      break;
    case 'sink':
    case 'slow':
      socket.on('data', (chunk: Buffer) => {
        received.update(chunk);
        if (mode !== 'slow') return;
        if (slowMs > 0 && performance.now() - started > slowMs) return;
        const aheadMs = (received.bytes / rate) * 1000 - (performance.now() - started);
        if (aheadMs > 1) {
          socket.pause();
          setTimeout(() => socket.resume(), aheadMs);
        }
      });
      socket.on('end', endWhenDone);
      break;
    case 'source':
      socket.on('data', (chunk: Buffer) => received.update(chunk));
      socket.on('end', async () => {
        await writeStream(socket, bytes, sent);
        socket.end();
      });
      break;
    case 'close-first':
      socket.on('data', (chunk: Buffer) => received.update(chunk));
      void writeStream(socket, bytes, sent).then(() => socket.end());
      break;
    case 'reset':
      socket.on('data', (chunk: Buffer) => {
        received.update(chunk);
        if (received.bytes >= resetAfter) socket.resetAndDestroy();
      });
      if (resetAfter === 0) socket.resetAndDestroy();
      break;
    case 'name': {
      socket.on('data', (chunk: Buffer) => received.update(chunk));
      const name = Buffer.from(opt.name!);
      sent.update(name);
      socket.end(name);
      break;
    }
  }
}

const server = net.createServer({ allowHalfOpen: true, pauseOnConnect: false }, (socket) => {
  if (maxConnections > 0 && ++accepted >= maxConnections) server.close();
  serve(socket);
});
server.listen({ host: opt.host, port: Number(opt.port), backlog: 1024 }, () => {
  const { port } = server.address() as net.AddressInfo;
  print({ event: 'listening', host: opt.host, port });
  if (opt.share) process.send!({ event: 'listening', port }, server);
});
