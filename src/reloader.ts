/**
 * Reloads: load and validate the config file exactly as `check` does, then
 * daemon.apply() it. One at a time; a request while one runs is folded into
 * one more after it. A failure (invalid config, a port in use) is logged and
 * counted, and the running rules stay as they were.
 */
import type { Config } from './config/types.js';
import type { ApplyReport, Daemon } from './daemon.js';
import { BpfredirError, errorMessage, type ErrorCode } from './errors.js';
import type { Logger } from './log.js';

export interface ReloadOutcome {
  ok: boolean;
  at: Date;
  trigger: string;
  /** Every problem, one line each (invalid config, bind failure). */
  errors?: readonly string[];
  /** The failure's stable code (a config error is ERR_BPFREDIR_CONFIG, as in `check`). */
  code?: ErrorCode;
  report?: ApplyReport;
}

export interface ReloadStats {
  succeeded: number;
  failed: number;
  last: ReloadOutcome | undefined;
}

/** The trigger of the periodic reload that looks host names up again (serve.ts). */
export const RERESOLVE_TRIGGER = 're-resolve';

export class Reloader {
  readonly stats: ReloadStats = { succeeded: 0, failed: 0, last: undefined };
  private running: Promise<ReloadOutcome> | undefined;
  private queued: Promise<ReloadOutcome> | undefined;

  constructor(
    private readonly daemon: Pick<Daemon, 'apply'>,
    private readonly load: () => Promise<Config>,
    private readonly logger: Logger,
    /** After a reload that applied: what else follows the config (the access log's file). */
    private readonly onApplied: (config: Config) => void = () => {},
  ) {}

  reload(trigger: string): Promise<ReloadOutcome> {
    if (!this.running) return this.start(trigger);
    // Whatever asked during this reload may have changed the file after it was read.
    return (this.queued ??= this.running.then(() => {
      this.queued = undefined;
      return this.start(trigger);
    }));
  }

  /** Resolves when no reload runs or waits. */
  async settled(): Promise<void> {
    while (this.running || this.queued) await (this.queued ?? this.running);
  }

  private start(trigger: string): Promise<ReloadOutcome> {
    const run = this.once(trigger).finally(() => {
      if (this.running === run) this.running = undefined;
    });
    return (this.running = run);
  }

  private async once(trigger: string): Promise<ReloadOutcome> {
    const at = new Date();
    let outcome: ReloadOutcome;
    try {
      const config = await this.load();
      const report = await this.daemon.apply(config);
      this.onApplied(config);
      outcome = { ok: true, at, trigger, report };
      this.stats.succeeded++;
      const changes = report.added.length + report.removed.length + report.changed.length + report.moved.length;
      // A periodic look-up that found the same addresses is not news.
      if (changes > 0 || trigger !== RERESOLVE_TRIGGER) this.logger.info('reloaded', {
        trigger,
        added: report.added.length,
        removed: report.removed.length,
        changed: report.changed.length + report.moved.length,
        unchanged: report.unchanged,
      });
      for (const setting of report.restartNeeded) this.logger.warn(`reload: ${setting} takes effect only after a restart; the running value stays`);
    } catch (err) {
      const errors = err instanceof BpfredirError ? err.problems : [errorMessage(err)];
      outcome = { ok: false, at, trigger, errors, ...(err instanceof BpfredirError && { code: err.code }) };
      this.stats.failed++;
      for (const line of errors) this.logger.error(`reload rejected, the running rules stay: ${line}`, { trigger });
    }
    this.stats.last = outcome;
    return outcome;
  }
}
