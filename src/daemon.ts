/**
 * The programmatic API: startDaemon(config) → Daemon, stop() undoes all of it.
 *
 * Start order (each step undone in reverse if a later one fails):
 * take this netns's lock (steering only) → load the BPF object → attach
 * sk_lookup (harmless while the bindings are empty: no match falls through)
 * → attach the splice verdict → engine → one listener per rule (steering
 * rules' sockets go into steer_sockets) → bindings and settings (steering
 * becomes live last, when every rule already has its socket), with the guards
 * that refuse direct connections to the steering sockets' own port.
 *
 * Nothing is pinned: the kernel detaches everything when the process dies.
 */
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';
import { MAPS, PROGRAMS, RULE_STATS_SIZE, encodeU32Key, sumRuleStats, zeroRuleStats, type RuleStats } from './abi.js';
import { MAX_ENGINE_THREADS, type Config, type DatapathChoice, type Rule } from './config/types.js';
import { effectiveCapabilities, withCapabilities } from './capabilities.js';
import { chooseDatapath, type DatapathDecision } from './datapath.js';
import { errorMessage } from './errors.js';
import { logEngineEvent } from './engine-log.js';
import { silentLogger, type Logger } from './log.js';
import {
  loadNative,
  type Datapath,
  type EngineStats,
  type ListenerHandle,
  type RawBinding,
  type RawBpfObject,
  type RawEngine,
} from './native/index.js';
import { compileBindings, withProxyGuards } from './rules/compile.js';
import { RuleIds } from './rules/ids.js';
import { needsLoopGuard } from './rules/loop-guard.js';
import { lockNetns } from './netns-lock.js';
import { explainListenFailure, explainStartFailure, loadObject } from './start-errors.js';
import { Steering } from './steering.js';

export const DEFAULT_OBJECT_PATH = fileURLToPath(new URL('../../build/bpf/bpfredir.bpf.o', import.meta.url));
const LISTEN_BACKLOG = 4096;

export interface DaemonOptions {
  logger?: Logger;
  /** false when per-connection lines would be dropped anyway (--log-level warn): the engine
   *  then skips those events altogether. Default true. */
  connectionEvents?: boolean;
  /** Overrides config.datapath (the --datapath flag). */
  datapath?: DatapathChoice;
  objectPath?: string;
  /** Effective capability mask (default: this process's CapEff). */
  capabilities?: bigint;
  /** Directory of the per-netns lock file (default /run/bpfredir; tests use their own). */
  runDir?: string;
  native?: RawBinding;
}

export interface DaemonListener {
  rule: string;
  ruleId: number;
  /** What the socket is bound to, e.g. "127.0.0.1:8080" or "[::]:41234". */
  address: string;
  steering: boolean;
}

export interface Daemon {
  readonly config: Config;
  readonly decision: DatapathDecision;
  readonly netnsInode: bigint;
  readonly listeners: readonly DaemonListener[];
  readonly ruleIds: ReadonlyMap<string, number>;
  stats(): EngineStats;
  /** Close every listener: new connections are refused, open ones go on. Idempotent. */
  stopAccepting(): void;
  /**
   * Stop accepting, wait until the open connections have finished (at most
   * drainMs, or until `skip` resolves), then stop(): whatever is still open is reset.
   */
  drain(drainMs: number, skip?: Promise<unknown>): Promise<DrainReport>;
  /** Close listeners, reset open connections, detach, close fds. Idempotent. */
  stop(): Promise<void>;
}

export interface DrainReport {
  /** Connections that finished by themselves during the drain. */
  drained: number;
  /** Connections still open at its end, closed with a reset. */
  reset: number;
}

const DRAIN_POLL_MS = 50;

interface Internals {
  native: RawBinding;
  ruleStatsFd: number | undefined;
}
const internals = new WeakMap<Daemon, Internals>();

/** 0 (auto): one engine thread per CPU this process may run on, at most the engine's limit. */
const engineThreads = (configured: number) => configured || Math.min(availableParallelism(), MAX_ENGINE_THREADS);

const formatHostPort = (host: string, port: number) => (host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`);

/** Runs undo steps in reverse; a failing step is logged and the rest still run. */
class UndoStack {
  private readonly steps: { what: string; undo: () => void | Promise<void> }[] = [];
  constructor(private readonly logger: Logger) {}

  push(what: string, undo: () => void | Promise<void>): void {
    this.steps.push({ what, undo });
  }

  async unwind(): Promise<void> {
    for (const step of this.steps.splice(0).reverse()) {
      try {
        await step.undo();
      } catch (err) {
        this.logger.warn('cleanup step failed', { step: step.what, error: errorMessage(err) });
      }
    }
  }
}

/** Closes a listener once, whether the drain or the undo stack gets there first. */
function closeListener(engine: RawEngine, open: Set<number>, id: number): void {
  if (open.delete(id)) engine.removeListener(id);
}

/** Resolves once the engine has no connection left, or after ms, or when skip resolves. */
async function untilIdle(engine: RawEngine, ms: number, skip: Promise<unknown>): Promise<void> {
  let skipped = false;
  void skip.then(() => (skipped = true));
  const deadline = Date.now() + ms;
  while (!skipped && engine.stats().connections > 0 && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, Math.min(DRAIN_POLL_MS, Math.max(1, deadline - Date.now()))));
  }
}

/** The rule's listening socket: its own address, or a private dual-stack one that sk_lookup feeds. */
function addRuleListener(args: { engine: RawEngine; rule: Rule; ruleId: number; config: Config; relay: Datapath; open: Set<number>; undo: UndoStack }) {
  const { engine, rule, config } = args;
  const steering = rule.kind === 'steer';
  const bind = steering ? { host: '::', port: 0 } : rule.listen;
  let handle: ListenerHandle;
  try {
    handle = engine.addListener({
      ruleId: args.ruleId,
      bind,
      dualStack: bind.host === '::',
      backlog: LISTEN_BACKLOG,
      targets: [rule.target],
      connectTimeoutMs: rule.connectTimeoutMs,
      idleTimeoutMs: rule.idleTimeoutMs,
      datapath: args.relay,
      budgetBytes: config.budgetBytes,
      sndbufBytes: config.sndbufBytes,
      spliceAfterBytes: config.spliceAfterBytes,
      bulkOnRelay: config.bulkFlows === 'relay',
      loopGuard: needsLoopGuard(config, rule.target),
    });
  } catch (err) {
    throw explainListenFailure(err, rule, formatHostPort(bind.host, bind.port));
  }
  args.open.add(handle.id);
  args.undo.push(`remove listener of rule '${rule.name}'`, () => closeListener(engine, args.open, handle.id));
  return { fd: handle.fd, port: handle.port, steering, address: formatHostPort(bind.host, handle.port) };
}

export async function startDaemon(config: Config, options: DaemonOptions = {}): Promise<Daemon> {
  const logger = options.logger ?? silentLogger;
  const native = options.native ?? loadNative();
  const capabilities = options.capabilities ?? effectiveCapabilities();
  const decision = chooseDatapath(options.datapath ?? config.datapath, config.rules, () => withCapabilities(native.probeFeatures(), capabilities));
  if (decision.fallbackReason) logger.warn(decision.fallbackReason);

  const ruleIds = new RuleIds().assign(config.rules.map((r) => r.name));
  const ruleNames = new Map([...ruleIds].map(([name, id]) => [id, name]));
  const netnsInode = native.netnsInode();
  const undo = new UndoStack(logger);
  let ruleStatsFd: number | undefined;
  const listeners: DaemonListener[] = [];
  const openListeners = new Set<number>();
  const steeringPorts: number[] = [];

  try {
    if (decision.steering) {
      const lock = lockNetns(native, netnsInode, options.runDir);
      undo.push('release the netns lock', () => lock.release());
    }
    let object: RawBpfObject | undefined;
    if (decision.steering || decision.relay === 'splice') {
      const path = options.objectPath ?? DEFAULT_OBJECT_PATH;
      const loaded = (object = await loadObject(native, path));
      undo.push('close BPF object', () => loaded.close());
      ruleStatsFd = object.mapFd(MAPS.ruleStats);
    }

    if (decision.steering && object) {
      const linkId = object.attachSkLookup(PROGRAMS.steer);
      undo.push('detach sk_lookup', () => object!.detach(linkId));
    }

    if (decision.relay === 'splice' && object) object.attachVerdict(PROGRAMS.verdict, MAPS.spliceActive);

    const engine: RawEngine = new native.Engine({
      maps:
        decision.relay === 'splice' && object
          ? {
              conns: object.mapFd(MAPS.conns),
              spliceHold: object.mapFd(MAPS.spliceHold),
              spliceActive: object.mapFd(MAPS.spliceActive),
              events: object.mapFd(MAPS.events),
              relayed: object.mapFd(MAPS.relayed),
            }
          : undefined,
      connectionEvents: options.connectionEvents ?? true,
      threads: engineThreads(config.threads),
      onEvents: (events) => events.forEach((e) => logEngineEvent(logger, e, ruleNames)),
    });
    undo.push('close engine', () => engine.close());

    for (const rule of config.rules) {
      const ruleId = ruleIds.get(rule.name)!;
      const listener = addRuleListener({ engine, rule, ruleId, config, relay: decision.relay, open: openListeners, undo });
      if (listener.steering && object) {
        native.sockmapUpdate(object.mapFd(MAPS.steerSockets), encodeU32Key(ruleId), listener.fd);
        steeringPorts.push(listener.port);
      }
      listeners.push({ rule: rule.name, ruleId, address: listener.address, steering: listener.steering });
    }

    if (decision.steering && object) {
      const steerRules = config.rules.filter((r) => r.kind === 'steer');
      const compiled = withProxyGuards(compileBindings(steerRules, ruleIds), steeringPorts);
      new Steering(native, { bindings: object.mapFd(MAPS.bindings), settings: object.mapFd(MAPS.settings) }).apply(compiled);
    }

    let stopping: Promise<void> | undefined;
    const stop = () => (stopping ??= undo.unwind());
    const stopAccepting = () => [...openListeners].forEach((id) => closeListener(engine, openListeners, id));
    const daemon: Daemon = {
      config,
      decision,
      netnsInode,
      listeners,
      ruleIds,
      stats: () => engine.stats(),
      stopAccepting,
      async drain(drainMs, skip = new Promise(() => {})) {
        stopAccepting();
        const open = engine.stats().connections;
        await untilIdle(engine, drainMs, skip);
        const reset = engine.stats().connections;
        await stop();
        return { drained: Math.max(0, open - reset), reset };
      },
      stop,
    };
    internals.set(daemon, { native, ruleStatsFd });
    return daemon;
  } catch (err) {
    await undo.unwind();
    throw explainStartFailure(err, 'starting');
  }
}

export interface RuleStatsReport {
  /** Per rule name, summed over CPUs (all zero without BPF). */
  rules: Map<string, RuleStats>;
  /** sk_lookup runs that matched no rule. */
  unmatchedLookups: bigint;
}

/** Sum the kernel's per-CPU counters (bpf/bpfredir.h struct rule_stats). */
export function readRuleStats(daemon: Daemon): RuleStatsReport {
  const state = internals.get(daemon);
  if (!state) throw new Error('readRuleStats: not a daemon returned by startDaemon()');
  const read = (id: number): RuleStats => {
    if (state.ruleStatsFd === undefined) return zeroRuleStats();
    const perCpu = state.native.mapLookupPercpu(state.ruleStatsFd, encodeU32Key(id), RULE_STATS_SIZE);
    return perCpu ? sumRuleStats(perCpu) : zeroRuleStats();
  };
  const rules = new Map([...daemon.ruleIds].map(([name, id]) => [name, read(id)]));
  return { rules, unmatchedLookups: read(0).lookups };
}
