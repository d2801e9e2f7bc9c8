/**
 * Active TCP health checks (`health_check: 5s` on a rule): every interval each
 * target gets a plain connect, closed at once; one that refuses, is
 * unreachable or does not answer within the rule's connect_timeout (at most
 * the interval) is marked down in the engine, which leaves it out of new
 * connections until a check succeeds again. Each change is one log line.
 * Runs in the control plane: a few connects per target and interval.
 */
import net from 'node:net';
import type { Config, Rule } from './config/types.js';
import { formatEndpoint } from './config/fields.js';
import type { Daemon } from './daemon.js';
import type { Logger } from './log.js';

/** Resolves with undefined when the target accepted, else the reason it did not. */
export function probeTcp(host: string, port: number, timeoutMs: number): Promise<string | undefined> {
  return new Promise((resolve) => {
    const socket = net.connect({ host, port });
    const done = (reason: string | undefined) => {
      socket.destroy();
      resolve(reason);
    };
    socket.setTimeout(timeoutMs, () => done('timeout'));
    socket.once('connect', () => done(undefined));
    socket.once('error', (err: NodeJS.ErrnoException) => done(err.code ?? err.message));
  });
}

export class HealthChecks {
  private timers: NodeJS.Timeout[] = [];
  /** Bumped by every follow(): a probe started for an older config reports nothing. */
  private generation = 0;
  /** "rule|target" → down, as last reported. */
  private readonly state = new Map<string, boolean>();

  constructor(
    private readonly daemon: Pick<Daemon, 'setTargetDown'>,
    private readonly logger: Logger,
    private readonly probe = probeTcp,
  ) {}

  /** Checks for the rules of the config now running (a reload replaces them all). */
  follow(config: Pick<Config, 'rules'>): void {
    this.stop();
    const generation = ++this.generation;
    for (const rule of config.rules) {
      if (!rule.healthCheckMs) continue;
      const check = () => void this.checkRule(rule, generation);
      check();
      this.timers.push(setInterval(check, rule.healthCheckMs).unref());
    }
  }

  private async checkRule(rule: Rule, generation: number): Promise<void> {
    const timeoutMs = Math.min(rule.connectTimeoutMs, rule.healthCheckMs!);
    await Promise.all(
      rule.targets.map(async (target, index) => {
        const reason = await this.probe(target.host, target.port, timeoutMs);
        if (generation !== this.generation) return; // a reload since: the index may name another target
        const key = `${rule.name}|${formatEndpoint(target)}`;
        const down = reason !== undefined;
        // A new listener (a reload) starts up: tell the engine every verdict, log only changes.
        this.daemon.setTargetDown(rule.name, index, down);
        if ((this.state.get(key) ?? false) === down) return;
        this.state.set(key, down);
        if (down) this.logger.warn('target_down', { rule: rule.name, target: formatEndpoint(target), reason });
        else this.logger.info('target_up', { rule: rule.name, target: formatEndpoint(target) });
      }),
    );
  }

  stop(): void {
    for (const timer of this.timers) clearInterval(timer);
    this.timers = [];
    this.generation++;
  }
}
