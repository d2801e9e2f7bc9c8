/** Start a daemon, say so in one line, run until SIGINT/SIGTERM, stop cleanly. */
import type { Config } from '../config/types.js';
import { readTcpListeners } from '../config/proc-listeners.js';
import { startDaemon, type Daemon } from '../daemon.js';
import { listenerConflictWarnings } from '../rules/conflicts.js';
import { createLogger } from '../log.js';
import type { ServeArgs } from './common-options.js';

/** The start line stays one readable line even with thousands of rules. */
const SHOWN_LISTENERS = 4;

export function startupLine(daemon: Daemon): string {
  const count = daemon.config.rules.length;
  const steering = daemon.decision.steering ? ` (sk_lookup on netns ${daemon.netnsInode})` : '';
  const all = daemon.listeners.map((l) => (l.steering ? `${l.rule} via ${l.address}` : l.address));
  const listening = all.slice(0, SHOWN_LISTENERS).join(', ') + (all.length > SHOWN_LISTENERS ? `, … (${all.length - SHOWN_LISTENERS} more)` : '');
  return `bpfredir: ${count} rule${count === 1 ? '' : 's'}, datapath ${daemon.decision.relay}${steering}, listening ${listening}`;
}

function untilSignal(): Promise<NodeJS.Signals> {
  return new Promise((resolve) => {
    const onSignal = (signal: NodeJS.Signals) => {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
      resolve(signal);
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
  });
}

export async function serve(config: Config, args: ServeArgs): Promise<void> {
  const logger = createLogger({ format: args['log-format'], level: args['log-level'] });
  const stopped = untilSignal(); // listen before starting: a signal during start still stops us
  for (const warning of listenerConflictWarnings(config, readTcpListeners())) logger.warn(warning);
  const daemon = await startDaemon(config, { logger, datapath: args.datapath, connectionEvents: args['log-level'] === 'info' });
  process.stdout.write(`${startupLine(daemon)}\n`);
  const signal = await stopped;
  logger.info('stopping', { signal });
  await daemon.stop();
  logger.info('stopped');
}
