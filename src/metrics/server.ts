/**
 * The HTTP endpoint of --metrics-listen: /metrics (Prometheus text format), /healthz (the
 * process answers) and /readyz (programs attached, rules applied, listeners registered; 503
 * while starting or stopping, so a Kubernetes Service sends no new client meanwhile).
 */
import { createServer, type Server } from 'node:http';
import type { Endpoint } from '../config/types.js';
import { BpfredirError, errnoCode, errorMessage } from '../errors.js';
import type { Logger } from '../log.js';
import type { MetricsExporter } from './exporter.js';

export interface MetricsServer {
  /** host:port it listens on (the port the kernel chose for port 0). */
  readonly address: string;
  close(): Promise<void>;
}

export interface MetricsServerOptions {
  listen: Endpoint;
  exporter: MetricsExporter;
  /** undefined when ready, else why not (the body of a 503). */
  notReady: () => string | undefined;
  logger: Logger;
}

const formatHostPort = (host: string, port: number) => (host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`);

export async function startMetricsServer({ listen, exporter, notReady, logger }: MetricsServerOptions): Promise<MetricsServer> {
  const server: Server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { Allow: 'GET, HEAD' }).end();
      return;
    }
    const text = (status: number, body: string) => res.writeHead(status, { 'Content-Type': 'text/plain; charset=utf-8' }).end(`${body}\n`);
    if (path === '/healthz') return text(200, 'ok');
    if (path === '/readyz') {
      const why = notReady();
      return why ? text(503, why) : text(200, 'ready');
    }
    if (path !== '/metrics') return text(404, 'not found: try /metrics, /healthz or /readyz');
    exporter.scrape().then(
      (body) => res.writeHead(200, { 'Content-Type': exporter.contentType }).end(body),
      (err: unknown) => {
        logger.warn('metrics scrape failed', { error: errorMessage(err) });
        text(500, 'scrape failed');
      },
    );
  });
  server.keepAliveTimeout = 65_000; // longer than any scrape interval: one connection per scraper
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err) => {
      const where = formatHostPort(listen.host, listen.port);
      const code = errnoCode(err);
      if (code === 'EADDRINUSE') reject(new BpfredirError('ERR_BPFREDIR_PORT_IN_USE', `--metrics-listen ${where}: the address is in use; pick another port`, { cause: err }));
      else if (code === 'EADDRNOTAVAIL') reject(new BpfredirError('ERR_BPFREDIR_CONFIG', `--metrics-listen ${where}: no interface has that address; use 127.0.0.1, 0.0.0.0 or an address of this host`, { cause: err }));
      else if (code === 'EACCES') reject(new BpfredirError('ERR_BPFREDIR_PRIVILEGES', `--metrics-listen ${where}: ports below 1024 need CAP_NET_BIND_SERVICE; pick a port above 1023`, { cause: err }));
      else reject(new BpfredirError('ERR_BPFREDIR_RUNTIME', `--metrics-listen ${where}: ${errorMessage(err)}`, { cause: err }));
    });
    server.listen(listen.port, listen.host, () => resolve());
  });
  const bound = server.address();
  const port = typeof bound === 'object' && bound ? bound.port : listen.port;
  let closed: Promise<void> | undefined;
  return {
    address: formatHostPort(listen.host, port),
    close() {
      closed ??= new Promise((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      return closed;
    },
  };
}
