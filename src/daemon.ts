/**
 * The programmatic API: startDaemon(config) → Daemon, stop() undoes all of it.
 *
 * Start order (each step undone in reverse if a later one fails):
 * take this netns's lock (steering only) → load the BPF object → attach
 * sk_lookup and pin its link (harmless while the bindings are empty: no match
 * falls through; a leftover pin also refuses the start) → attach the
 * splice verdict → engine → one listener per rule (steering rules' sockets go
 * into steer_sockets) → bindings and settings (steering becomes live last,
 * when every rule already has its socket).
 */
import { rmdirSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';
import { MAPS, PROGRAMS, RULE_STATS_SIZE, encodeU32Key, sumRuleStats, zeroRuleStats, type RuleStats } from './abi.js';
import { MAX_ENGINE_THREADS, type Config, type DatapathChoice, type Rule } from './config/types.js';
import { chooseDatapath, type DatapathDecision } from './datapath.js';
import { BpfredirError, errnoCode, errorMessage } from './errors.js';
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
import { compileBindings } from './rules/compile.js';
import { RuleIds } from './rules/ids.js';
import { lockNetns } from './netns-lock.js';
import { explainListenFailure, explainStartFailure, loadObject } from './start-errors.js';
import { Steering } from './steering.js';

export const DEFAULT_OBJECT_PATH = fileURLToPath(new URL('../../build/bpf/bpfredir.bpf.o', import.meta.url));
export const DEFAULT_BPFFS = '/sys/fs/bpf';
const LISTEN_BACKLOG = 4096;

export interface DaemonOptions {
  logger?: Logger;
  /** false when per-connection lines would be dropped anyway (--log-level warn): the engine
   *  then skips those events altogether. Default true. */
  connectionEvents?: boolean;
  /** Overrides config.datapath (the --datapath flag). */
  datapath?: DatapathChoice;
  objectPath?: string;
  bpffsRoot?: string;
  /** Name of the per-netns lock (tests use their own). */
  lockName?: string;
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
  /** Pinned sk_lookup link, while running with steering rules. */
  readonly pinPath: string | undefined;
  readonly listeners: readonly DaemonListener[];
  readonly ruleIds: ReadonlyMap<string, number>;
  stats(): EngineStats;
  /** Close listeners and connections, detach, unpin, close fds. Idempotent. */
  stop(): Promise<void>;
}

interface Internals {
  native: RawBinding;
  ruleStatsFd: number | undefined;
}
const internals = new WeakMap<Daemon, Internals>();

/** 0 (auto): one engine thread per CPU this process may run on, at most the engine's limit. */
const engineThreads = (configured: number) => configured || Math.min(availableParallelism(), MAX_ENGINE_THREADS);

const formatHostPort = (host: string, port: number) => (host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`);

/** A pin directory of ours; another instance's pins keep it (ENOTEMPTY). */
function removeDirIfEmpty(path: string): void {
  try {
    rmdirSync(path);
  } catch (err) {
    if (errnoCode(err) !== 'ENOTEMPTY' && errnoCode(err) !== 'ENOENT') throw err;
  }
}

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

/** Attach sk_lookup to this netns and pin the link for inspection. Returns the pin path. */
function attachSteering(args: { native: RawBinding; object: RawBpfObject; root: string; netnsInode: bigint; undo: UndoStack }): string {
  const { native, object, root, undo } = args;
  const dir = `bpfredir/${args.netnsInode}`;
  try {
    native.ensureBpffs(root, dir);
  } catch (err) {
    throw explainStartFailure(err, `preparing ${root}/${dir}`);
  }
  // Undone in reverse: the per-netns directory first, then bpfredir/ unless another netns's is in it.
  undo.push('remove bpfredir pin directory', () => removeDirIfEmpty(`${root}/bpfredir`));
  undo.push('remove pin directory', () => removeDirIfEmpty(`${root}/${dir}`));
  const linkId = object.attachSkLookup(PROGRAMS.steer);
  undo.push('detach sk_lookup', () => object.detach(linkId));
  const path = `${root}/${dir}/steer`;
  try {
    object.pinLink(linkId, path);
  } catch (err) {
    if (errnoCode(err) !== 'EEXIST') throw explainStartFailure(err, `pinning the sk_lookup link at ${path}`);
    throw new BpfredirError(
      'ERR_BPFREDIR_ALREADY_RUNNING',
      `another bpfredir is running in this network namespace (pinned at ${path}); stop it or remove the pin`,
      { cause: err },
    );
  }
  undo.push('unpin sk_lookup link', () => object.unpin(path));
  return path;
}

/** The rule's listening socket: its own address, or a private dual-stack one that sk_lookup feeds. */
function addRuleListener(args: { engine: RawEngine; rule: Rule; ruleId: number; config: Config; relay: Datapath; undo: UndoStack }) {
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
    });
  } catch (err) {
    throw explainListenFailure(err, rule, formatHostPort(bind.host, bind.port));
  }
  args.undo.push(`remove listener of rule '${rule.name}'`, () => engine.removeListener(handle.id));
  return { fd: handle.fd, steering, address: formatHostPort(bind.host, handle.port) };
}

export async function startDaemon(config: Config, options: DaemonOptions = {}): Promise<Daemon> {
  const logger = options.logger ?? silentLogger;
  const native = options.native ?? loadNative();
  const decision = chooseDatapath(options.datapath ?? config.datapath, config.rules, () => native.probeFeatures());
  if (decision.fallbackReason) logger.warn(decision.fallbackReason);

  const ruleIds = new RuleIds().assign(config.rules.map((r) => r.name));
  const ruleNames = new Map([...ruleIds].map(([name, id]) => [id, name]));
  const netnsInode = native.netnsInode();
  const undo = new UndoStack(logger);
  let pinPath: string | undefined;
  let ruleStatsFd: number | undefined;
  const listeners: DaemonListener[] = [];

  try {
    if (decision.steering) {
      const lock = await lockNetns(options.lockName);
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
      pinPath = attachSteering({ native, object, root: options.bpffsRoot ?? DEFAULT_BPFFS, netnsInode, undo });
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
      const listener = addRuleListener({ engine, rule, ruleId, config, relay: decision.relay, undo });
      if (listener.steering && object) native.sockmapUpdate(object.mapFd(MAPS.steerSockets), encodeU32Key(ruleId), listener.fd);
      listeners.push({ rule: rule.name, ruleId, address: listener.address, steering: listener.steering });
    }

    if (decision.steering && object) {
      const steerRules = config.rules.filter((r) => r.kind === 'steer');
      const compiled = compileBindings(steerRules, ruleIds);
      new Steering(native, { bindings: object.mapFd(MAPS.bindings), settings: object.mapFd(MAPS.settings) }).apply(compiled);
    }

    let stopping: Promise<void> | undefined;
    const daemon: Daemon = {
      config,
      decision,
      netnsInode,
      pinPath,
      listeners,
      ruleIds,
      stats: () => engine.stats(),
      stop: () => (stopping ??= undo.unwind()),
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
