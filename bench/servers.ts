/** The origin servers the workloads talk to, started inside the server namespace. */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Background, startBackground } from './proc.js';
import { waitListening } from './ready.js';
import { BENCH_TOOLS } from './paths.js';

export const SERVICE_PORTS = { iperf3: 5201, sockperf: 11111, http: 8080, hold: 7000 } as const;
export type Service = keyof typeof SERVICE_PORTS;

/** A redirector listens on the service port + this offset (distinct even when everything shares one netns). */
export const PROXY_PORT_OFFSET = 10000;

export interface ServerOptions {
  netns: string;
  addr: string;
  tmpDir: string;
  cpu?: number;
  nofile: number;
}

function serverArgv(service: Service, o: ServerOptions): string[] {
  const port = String(SERVICE_PORTS[service]);
  switch (service) {
    case 'iperf3':
      // -1: serve one test and exit, so a test stuck behind a broken redirector cannot block the next one.
      // -J -i 0.5: the client fetches the server's per-interval JSON (--get-server-output); the
      // interval must match the client's (workloads/throughput.ts).
      return ['iperf3', '-s', '-1', '-J', '-i', '0.5', '-B', o.addr, '-p', port];
    case 'sockperf':
      return ['sockperf', 'server', '--tcp', '-i', o.addr, '-p', port];
    case 'http':
      return httpOriginArgv(o);
    case 'hold':
      return [process.execPath, join(BENCH_TOOLS, 'idle-conns.js'), 'serve', o.addr, port];
  }
}

/** nginx answering every request with a tiny body and Connection: close (keepalive_timeout 0). */
function httpOriginArgv(o: ServerOptions): string[] {
  const dir = mkdtempSync(join(o.tmpDir, 'origin-'));
  const file = join(dir, 'nginx.conf');
  const temp = ['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi'].map((t) => `  ${t}_temp_path ${dir}/${t};`);
  writeFileSync(
    file,
    [
      'daemon off;',
      'worker_processes auto;',
      `worker_rlimit_nofile ${o.nofile};`,
      'pid nginx.pid;',
      'error_log error.log warn;',
      'events { worker_connections 20000; }',
      'http {',
      '  access_log off;',
      '  keepalive_timeout 0;',
      '  default_type text/plain;',
      ...temp,
      `  server { listen ${o.addr}:${SERVICE_PORTS.http} backlog=65535; location / { return 200 "ok\\n"; } }`,
      '}',
      '',
    ].join('\n'),
  );
  return ['nginx', '-p', dir, '-e', `${dir}/error.log`, '-c', file];
}

export async function startServer(service: Service, o: ServerOptions): Promise<Background> {
  const proc = startBackground(`${service} server`, { netns: o.netns, argv: serverArgv(service, o), cpu: o.cpu, nofile: o.nofile });
  try {
    await waitListening(o.netns, SERVICE_PORTS[service], proc);
  } catch (err) {
    await proc.stop();
    throw err;
  }
  return proc;
}
