/**
 * Host names in rules are looked up again every `resolve_interval` (a reload
 * of the same file: new addresses become a diff, the same ones change
 * nothing). Only while some rule names a host: literal addresses never move.
 */
import { isIP } from 'node:net';
import type { Config } from './config/types.js';

export function namesHosts(config: Config): boolean {
  return config.rules.some((r) => (r.written?.targetHosts ?? []).some((h) => !isIP(h)) || (r.written?.listenHost !== undefined && !isIP(r.written.listenHost)));
}

export class Reresolver {
  private timer: NodeJS.Timeout | undefined;
  private intervalMs = 0;

  constructor(private readonly reload: () => void) {}

  /** The config now running decides: names and a non-zero interval keep the timer going. */
  follow(config: Config): void {
    const every = namesHosts(config) ? config.resolveIntervalMs : 0;
    if (every === this.intervalMs) return;
    this.stop();
    this.intervalMs = every;
    if (every > 0) this.timer = setInterval(this.reload, every).unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    this.intervalMs = 0;
  }
}
