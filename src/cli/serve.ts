/**
 * Start a daemon, say so in one line, run until SIGINT/SIGTERM, then drain:
 * stop accepting, let open connections finish for --drain, reset the rest.
 * With a config file, SIGHUP and a change of the file reload it; SIGHUP never
 * stops the process (it is also what a closed terminal sends).
 */
import type { Config } from '../config/types.js';
import { parseDuration } from '../config/units.js';
import { readTcpListeners } from '../config/proc-listeners.js';
import { AccessLog } from '../access-log.js';
import { startDaemon, type Daemon } from '../daemon.js';
import { BpfredirError, isBpfredirError } from '../errors.js';
import { configWarnings } from '../rules/conflicts.js';
import type { ConfigSource } from '../config/load.js';
import { watchConfig, type ConfigWatch } from '../config/watch.js';
import { createLogger } from '../log.js';
import { removePidFile, writePidFile } from '../pid-file.js';
import { RERESOLVE_TRIGGER, Reloader } from '../reloader.js';
import { Reresolver } from '../reresolver.js';
import { HealthChecks } from '../health-checks.js';
import { startAdminServer, type AdminServer } from '../admin/server.js';
import { daemonSource } from '../admin/daemon-source.js';
import { adminSocketPath } from '../admin/socket-path.js';
import type { Logger } from '../log.js';
import { metricsAddress } from '../config/validate.js';
import { daemonMetricsSources } from '../metrics/daemon-sources.js';
import { startMetricsServer, type MetricsServer } from '../metrics/server.js';
import { effectiveLogLevel, type ServeArgs } from './common-options.js';
import { loadNative } from '../native/index.js';
import { syslogWriter } from '../syslog.js';

/** The start line stays one readable line even with thousands of rules. */
const SHOWN_LISTENERS = 4;

export function startupLine(daemon: Daemon, metrics?: string): string {
  const count = daemon.config.rules.length;
  const steering = daemon.decision.steering ? ` (sk_lookup on netns ${daemon.netnsInode})` : '';
  const all = daemon.listeners.map((l) => (l.steering ? `${l.rule} via ${l.address}` : l.address));
  const listening = all.slice(0, SHOWN_LISTENERS).join(', ') + (all.length > SHOWN_LISTENERS ? `, … (${all.length - SHOWN_LISTENERS} more)` : '');
  const scrape = metrics ? `, metrics on http://${metrics}/metrics` : '';
  return `bpfredir: ${count} rule${count === 1 ? '' : 's'}, datapath ${daemon.decision.relay}${steering}, listening ${listening}${scrape}`;
}

/** The start line as JSON for collectors; `msg` is the text line. */
export function startupRecord(daemon: Daemon, metrics?: string, now = new Date()): string {
  return JSON.stringify({
    time: now.toISOString(),
    level: 'info',
    msg: startupLine(daemon, metrics),
    ...(metrics && { metrics }),
    rules: daemon.config.rules.length,
    datapath: daemon.decision.relay,
    netns: daemon.netnsInode.toString(),
    listeners: daemon.listeners.map((l) => ({ rule: l.rule, address: l.address, steering: l.steering })),
  });
}

export function drainMs(text: string): number {
  const parsed = parseDuration(text);
  if (!parsed.ok) throw new BpfredirError('ERR_BPFREDIR_USAGE', `--drain: ${parsed.reason}; use e.g. 10s, 500ms or 0`);
  return parsed.value;
}

/** The first SIGINT/SIGTERM starts the drain, the second skips it. */
function stopSignals() {
  const [first, resolveFirst] = signalPromise();
  const [second, resolveSecond] = signalPromise();
  let count = 0;
  const onSignal = (signal: NodeJS.Signals) => (++count === 1 ? resolveFirst : resolveSecond)(signal);
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  const release = () => {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  };
  return { first, second, release };
}

function signalPromise(): [Promise<NodeJS.Signals>, (signal: NodeJS.Signals) => void] {
  let resolve!: (signal: NodeJS.Signals) => void;
  const promise = new Promise<NodeJS.Signals>((r) => (resolve = r));
  return [promise, resolve];
}

/**
 * The admin socket. One bpfredir per netns steers (it holds the lock), but several `forward`
 * one-liners may share a netns: the second finds the default path taken and runs without one.
 */
async function openAdminSocket(path: string, explicit: boolean, steering: boolean, open: () => Promise<AdminServer>, logger: Logger): Promise<AdminServer | undefined> {
  try {
    return await open();
  } catch (err) {
    if (explicit || steering || !isBpfredirError(err) || err.code !== 'ERR_BPFREDIR_ALREADY_RUNNING') throw err;
    logger.warn(`admin socket ${path} is another bpfredir's; this one runs without one (pass --admin-socket PATH for one)`);
    return undefined;
  }
}

/** --metrics-listen wins over the config's `metrics:`, also in every reloaded config. */
function metricsOverride(args: ServeArgs): (config: Config) => Config {
  const flag = args['metrics-listen'];
  if (flag === undefined) return (config) => config;
  const parsed = metricsAddress(flag);
  if (!parsed.ok) throw new BpfredirError('ERR_BPFREDIR_USAGE', `--metrics-listen: ${parsed.reason}`);
  return (config) => ({ ...config, metricsListen: parsed.value });
}

/** source: where `config` came from, reloaded on SIGHUP and when it changes (none for forward). */
export async function serve(fromFile: Config, args: ServeArgs, source?: ConfigSource): Promise<void> {
  const configFile = source?.file;
  const level = effectiveLogLevel(args);
  const logger = args.syslog
    ? createLogger({ format: args['log-format'], level, stamp: false, write: syslogWriter(args.ident, (path, data) => loadNative().sendUnixDatagram(path, data)) })
    : createLogger({ format: args['log-format'], level });
  const drainFor = drainMs(args.drain);
  const withFlags = metricsOverride(args);
  const config = withFlags(fromFile);
  const signals = stopSignals(); // listen before starting: a signal during start still stops us
  let reloader: Reloader | undefined;
  let watch: ConfigWatch | undefined;
  let admin: AdminServer | undefined;
  let metrics: MetricsServer | undefined;
  let accessLog: AccessLog | undefined;
  let reresolve: Reresolver | undefined;
  let checks: HealthChecks | undefined;
  let ready = false;
  let stopping = false;
  const startedAt = new Date();
  const onHangup = () => {
    if (!configFile) logger.warn('SIGHUP: nothing to reload (forward has no config file)');
    else if (stopping) logger.warn('SIGHUP: stopping; not reloading');
    else if (reloader) void reloader.reload('SIGHUP');
    else logger.warn('SIGHUP: still starting; send it again once started');
  };
  process.on('SIGHUP', onHangup);
  try {
    for (const warning of configWarnings(config, readTcpListeners())) logger.warn(warning);
    // The access log needs the engine's connection events even when the log level drops them.
    const connectionEvents = level === 'info' || config.accessLog !== undefined;
    let running: Daemon | undefined;
    accessLog = new AccessLog(logger, (id) => {
      const name = running?.ruleName(id);
      return running?.config.rules.find((r) => r.name === name);
    });
    accessLog.open(config.accessLog);
    const daemon = (running = await startDaemon(config, {
      logger,
      datapath: args.datapath,
      connectionEvents,
      runDir: args['run-dir'],
      onEvents: (events) => accessLog?.write(events),
    }));
    checks = new HealthChecks(daemon, logger);
    checks.follow(config);
    if (configFile) {
      const followConfig = (next: Config) => {
        if (stopping) return; // a reload that ends during the drain starts nothing again
        checks?.follow(next);
        if (next.accessLog && !connectionEvents) logger.warn('access_log: takes effect only after a restart (started with --log-level warn and none, so the engine does not report connections)');
        else accessLog?.open(next.accessLog);
        reresolve?.follow(next);
      };
      const reloads = (reloader = new Reloader(daemon, async () => withFlags(await source!.load()), logger, followConfig));
      reresolve = new Reresolver(() => void reloads.reload(RERESOLVE_TRIGGER));
      reresolve.follow(config);
      watch = watchConfig(configFile, () => void reloads.reload('file change'));
    }
    const socketPath = args['admin-socket'] ?? adminSocketPath(args['run-dir'], daemon.netnsInode);
    const answers = daemonSource({ daemon, reloader, startedAt });
    const pidProblem = config.pidFile && writePidFile(config.pidFile);
    if (pidProblem) logger.error(pidProblem);
    try {
      admin = await openAdminSocket(socketPath, args['admin-socket'] !== undefined, daemon.decision.steering, () => startAdminServer(socketPath, answers, logger), logger);
      if (config.metricsListen) {
        // prom-client costs ~12 MB of memory: loaded only when metrics are served.
        const { createExporter } = await import('../metrics/exporter.js');
        const exporter = createExporter(daemonMetricsSources(daemon, reloader));
        const notReady = () => (stopping ? 'stopping' : ready ? undefined : 'starting');
        metrics = await startMetricsServer({ listen: config.metricsListen, exporter, notReady, logger });
      }
    } catch (err) {
      await daemon.stop();
      throw err;
    }
    process.stdout.write(`${args['log-format'] === 'json' ? startupRecord(daemon, metrics?.address) : startupLine(daemon, metrics?.address)}\n`);
    ready = true;
    const signal = await signals.first;
    stopping = true;
    watch?.close();
    reresolve?.stop();
    checks?.stop();
    await reloader?.settled(); // a reload half done would reopen what the drain closes
    logger.info('stopping: new connections are refused, open ones may finish', { signal, drain_ms: drainFor, connections: daemon.stats().connections });
    const skip = signals.second.then((s) => logger.info('second signal: not waiting for open connections', { signal: s }));
    const { drained, reset } = await daemon.drain(drainFor, skip);
    logger.info('stopped', { drained, reset });
  } finally {
    await metrics?.close();
    await admin?.close();
    await accessLog?.close();
    if (config.pidFile) removePidFile(config.pidFile);
    watch?.close();
    reresolve?.stop();
    checks?.stop();
    signals.release();
    process.off('SIGHUP', onHangup);
  }
}
