/**
 * The programmatic API: startDaemon(config) → Daemon; apply(config) changes the
 * running rules as a diff (a reload); stop() undoes all of it.
 *
 * Start order (each step undone in reverse if a later one fails): load the BPF
 * object and attach the splice verdict (splice datapath) → engine → apply(config)
 * from nothing. The first config that steers takes this netns's lock and attaches
 * sk_lookup (harmless while the bindings are empty: no match falls through).
 * apply opens a rule's listener (and its steer_sockets entry) before the trie
 * names it, and takes the trie's entries away before the socket
 * (docs/ARCHITECTURE.md, Reload).
 *
 * Nothing is pinned: the kernel detaches everything when the process dies.
 */
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';
import { MAPS, PROGRAMS, RULE_STATS_SIZE, SETTINGS_FLAGS, encodeU32Key, sumRuleStats, zeroRuleStats, type RuleStats } from './abi.js';
import { MAX_ENGINE_THREADS, type Config, type DatapathChoice, type Rule, type SteerRule } from './config/types.js';
import { effectiveCapabilities, withCapabilities } from './capabilities.js';
import { chooseDatapath, type DatapathDecision } from './datapath.js';
import { BpfredirError, errorMessage } from './errors.js';
import { logEngineEvent, transparentTimeoutHint } from './engine-log.js';
import { silentLogger, type Logger } from './log.js';
import {
  loadNative,
  type EngineConnection,
  type EngineEvent,
  type EngineRuleStats,
  type EngineStats,
  type FeatureProbe,
  type ListenerHandle,
  type ListenerOptions,
  type RawBinding,
  type RawBpfObject,
  type RawEngine,
  type TargetHealth,
} from './native/index.js';
import { AccessLists } from './access-lists.js';
import { compileAcls, guardedListenRules, usesAcls, withListenBindings, type GuardedListen } from './rules/acl.js';
import { compileBindings, withProxyGuards } from './rules/compile.js';
import { diffRules } from './rules/diff.js';
import { RuleIds } from './rules/ids.js';
import { needsLoopGuard } from './rules/loop-guard.js';
import { lockNetns, type NetnsLock } from './netns-lock.js';
import { explainListenFailure, explainStartFailure, loadObject } from './start-errors.js';
import { bindingsTrie, Steering } from './steering.js';
import { Interception, intercepting, needsInterception, removeLeftovers, type InterceptionReport } from './interception.js';
import { listeningInodes, socketOwner } from './proxy-socket.js';

export const DEFAULT_OBJECT_PATH = fileURLToPath(new URL('../../build/bpf/bpfredir.bpf.o', import.meta.url));
const LISTEN_BACKLOG = 4096;

export interface DaemonOptions {
  logger?: Logger;
  /** false when per-connection lines would be dropped anyway (--log-level warn): the engine
   *  then skips those events altogether. Default true. */
  connectionEvents?: boolean;
  /** Every batch of engine events, after they are logged (the access log). */
  onEvents?: (events: EngineEvent[]) => void;
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

/** What an apply changed (rule names), and what it could not change without a restart. */
export interface ApplyReport {
  added: string[];
  removed: string[];
  changed: string[];
  moved: string[];
  unchanged: number;
  restartNeeded: string[];
}

/** A kernel map's fill: entries in use now against its capacity. */
export interface MapUsage {
  map: string;
  entries: number;
  capacity: number;
}

export interface Daemon {
  /** The config running now: the settings it started with, the rules of the last apply. */
  readonly config: Config;
  readonly decision: DatapathDecision;
  /** What the start-up probe found; undefined when nothing needed probing (userspace, no steering). */
  readonly features: FeatureProbe | undefined;
  /** Engine threads running. */
  readonly threads: number;
  readonly netnsInode: bigint;
  readonly listeners: readonly DaemonListener[];
  readonly ruleIds: ReadonlyMap<string, number>;
  /** The name a rule id had (also for rules removed since: their connections may still be open). */
  ruleName(id: number): string | undefined;
  stats(): EngineStats;
  /** The engine's counters per rule id, summed over its threads. */
  ruleStats(): EngineRuleStats[];
  /** The open connections of every engine thread. */
  connections(): Promise<EngineConnection[]>;
  /** Each rule's targets and their health, by rule name. */
  targetHealth(): Map<string, TargetHealth[]>;
  /** An active health check's verdict on a rule's target (by index); ignored for a rule that is gone. */
  setTargetDown(rule: string, index: number, down: boolean): void;
  /** The kernel maps that fill up as rules and connections grow (empty without BPF). */
  mapUsage(): MapUsage[];
  /** What interception changed on the box (TC programs, policy rule, table); undefined when off. */
  interceptionReport(): InterceptionReport | undefined;
  /**
   * Make the running rules those of `next`, as a diff. All or nothing: if it throws
   * (a port in use, a map full, steering unavailable), the running rules are as before.
   */
  apply(next: Config): Promise<ApplyReport>;
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
const INTERCEPTION_DRAIN_POLL_MS = 1000;

interface Internals {
  native: RawBinding;
  ruleStatsFd(): number | undefined;
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

/** Resolves once the engine has no connection left, or after ms, or when skip resolves. */
async function untilIdle(engine: RawEngine, ms: number, skip: Promise<unknown>): Promise<void> {
  let skipped = false;
  void skip.then(() => (skipped = true));
  const deadline = Date.now() + ms;
  while (!skipped && engine.stats().connections > 0 && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, Math.min(DRAIN_POLL_MS, Math.max(1, deadline - Date.now()))));
  }
}

/** One rule's listening socket as the daemon holds it. */
interface RuleListener {
  rule: Rule;
  ruleId: number;
  id: number; // the engine's listener id
  fd: number;
  port: number;
  address: string;
  loopGuard: boolean;
  open: boolean;
  /** A duplicate of another program's socket (`target: socket`): no engine listener, no guard. */
  external?: boolean;
}

/** The kernel side of steering and the allow/deny lists, set up by the first config that uses either. */
interface SteeringState {
  object: RawBpfObject;
  steering: Steering;
  lists: AccessLists;
}

const EMPTY_RULES: readonly Rule[] = [];

class RunningDaemon implements Daemon {
  config: Config;
  private readonly byName = new Map<string, RuleListener>();
  private readonly ids = new RuleIds();
  private steeringState: SteeringState | undefined;
  private interception: Interception | undefined;
  /** Set while the last intercepting rules' connections drain: the routing goes when none is left. */
  private interceptionRetiring: NodeJS.Timeout | undefined;
  private stopping: Promise<void> | undefined;

  constructor(
    private readonly native: RawBinding,
    private readonly engine: RawEngine,
    private object: RawBpfObject | undefined,
    public decision: DatapathDecision,
    readonly netnsInode: bigint,
    private readonly undo: UndoStack,
    private readonly options: DaemonOptions,
    /** Every id a rule ever had, for the events of connections that outlive their rule. */
    private readonly names: Map<number, string>,
    /** Taken before anything is loaded when the first config steers. */
    private lock: NetnsLock | undefined,
    settings: Config,
    readonly threads: number,
    private readonly probe: () => FeatureProbe,
    private probed: FeatureProbe | undefined,
  ) {
    this.config = { ...settings, rules: [...EMPTY_RULES] };
  }

  get listeners(): DaemonListener[] {
    return [...this.byName.values()].map((l) => ({ rule: l.rule.name, ruleId: l.ruleId, address: l.address, steering: l.rule.kind !== 'listen' }));
  }

  get ruleIds(): ReadonlyMap<string, number> {
    return new Map([...this.byName.values()].map((l) => [l.rule.name, l.ruleId]));
  }

  ruleStatsFd(): number | undefined {
    return this.object?.mapFd(MAPS.ruleStats);
  }

  get features(): FeatureProbe | undefined {
    return this.probed;
  }

  ruleName(id: number): string | undefined {
    return this.names.get(id);
  }

  stats(): EngineStats {
    return this.engine.stats();
  }

  ruleStats(): EngineRuleStats[] {
    return this.engine.ruleStats();
  }

  connections(): Promise<EngineConnection[]> {
    return this.engine.connections();
  }

  setTargetDown(rule: string, index: number, down: boolean): void {
    const listener = this.byName.get(rule);
    if (listener?.open && !listener.external && index < listener.rule.targets.length) this.engine.setTargetDown(listener.id, index, down);
  }

  targetHealth(): Map<string, TargetHealth[]> {
    return new Map([...this.byName.values()].filter((l) => l.open && !l.external).map((l) => [l.rule.name, this.engine.targetHealth(l.id)]));
  }

  interceptionReport(): InterceptionReport | undefined {
    return this.interception?.report();
  }

  mapUsage(): MapUsage[] {
    const object = this.object;
    if (!object) return [];
    const capacity = (map: string) => this.native.mapInfo(object.mapFd(map)).maxEntries;
    const usage: MapUsage[] = [];
    if (this.steeringState) {
      const steering = [...this.byName.values()].filter((l) => l.rule.kind !== 'listen').length;
      usage.push({ map: MAPS.bindings, entries: this.steeringState.steering.entries, capacity: capacity(MAPS.bindings) });
      usage.push({ map: MAPS.steerSockets, entries: steering, capacity: capacity(MAPS.steerSockets) });
      usage.push({ map: MAPS.acl, entries: this.steeringState.lists.size, capacity: capacity(MAPS.acl) });
    }
    if (this.decision.relay === 'splice') {
      // Two sockets per connection in the kernel path, one conns entry each.
      const inKernel = this.ruleStats().reduce((sum, r) => sum + r.active.sockmap, 0);
      usage.push({ map: MAPS.conns, entries: 2 * inKernel, capacity: capacity(MAPS.conns) });
    }
    return usage;
  }

  async apply(next: Config): Promise<ApplyReport> {
    const diff = diffRules(this.config, next);
    const interceptingIds = this.config.rules.filter(intercepting).map((r) => this.byName.get(r.name)!.ruleId);
    // Rules whose listener needs the loop guard now and did not before (or the reverse) get a new one.
    const guard = (rule: Rule) => rule.targets.some((t) => needsLoopGuard(next, t));
    const moved = [
      ...diff.moved,
      ...[...diff.changed, ...diff.unchanged].filter((r) => this.byName.get(r.name)!.loopGuard !== guard(r)).map((r) => ({ from: this.byName.get(r.name)!.rule, to: r })),
    ];
    const movedNames = new Set(moved.map((m) => m.to.name));
    const changed = diff.changed.filter((r) => !movedNames.has(r.name));
    // Keyed by kind too: a rule that turns from steering to listen (or back) gets a new id, so its
    // old bindings never meet the new kind's policy (a listen rule's "pass") during the reload.
    const planned = this.ids.plan(next.rules.map(idKey));
    const ids = new Map(next.rules.map((r) => [r.name, planned.get(idKey(r))!]));
    if (next.rules.some((r) => r.kind !== 'listen') || usesAcls(next) || needsInterception(next)) await this.ensureSteering(next);

    const leaving = [...diff.removed, ...moved.map((m) => m.from)].map((r) => this.byName.get(r.name)!);
    const arriving = [...diff.added, ...moved.map((m) => m.to)];
    // A listen address passing to another rule (or to the same rule's new listener) is freed first.
    const wanted = new Set(arriving.flatMap((r) => (r.kind === 'listen' ? [formatHostPort(r.listen.host, r.listen.port)] : [])));
    const freedFirst = leaving.filter((l) => l.rule.kind === 'listen' && wanted.has(l.address));
    const opened: RuleListener[] = [];
    // Until they are closed, the sockets of leaving steering rules keep their guards.
    const leavingPorts = leaving.filter((l) => l.rule.kind !== 'listen' && !l.external).map((l) => l.port);
    // Listen addresses a list applies to now keep their bindings (and checks) until they close.
    const guardedNow = this.steeringState ? guardedListenRules(this.config).map((rule) => ({ rule, id: this.byName.get(rule.name)!.ruleId })) : [];
    let bindingsTouched = false;
    let listsStaged = false;
    let interceptionTouched = false;
    try {
      freedFirst.forEach((l) => this.closeListener(l));
      if (this.steeringState) {
        // Before any new listener opens: next's lists, and bindings for its guarded listen
        // addresses, so not one connection reaches a new listener unchecked.
        listsStaged = true;
        this.steeringState.lists.stage(compileAcls(next, ids));
        const guardedNext = guardedListenRules(next).map((rule) => ({ rule, id: ids.get(rule.name)! }));
        if (guardedNow.length || guardedNext.length) {
          bindingsTouched = true;
          this.applyBindings(this.config, this.ruleIds, [], [], [...guardedNow, ...guardedNext]);
        }
      }
      for (const rule of arriving) opened.push(this.openListener(rule, ids.get(rule.name)!, guard(rule)));
      bindingsTouched = true;
      this.applyBindings(next, ids, opened, leavingPorts, guardedNow);
      // Last: the TC program marks flows only once their rule's socket is in steer_sockets.
      interceptionTouched = true;
      this.applyInterception(next, ids);
    } catch (err) {
      this.rollBack(opened, freedFirst, bindingsTouched, listsStaged, interceptionTouched);
      throw err;
    }

    for (const rule of changed) {
      const l = this.byName.get(rule.name)!;
      if (l.external) {
        l.rule = rule;
        continue;
      }
      // The same targets keep their TargetSet: its health and open counts go on.
      const sameTargets = JSON.stringify([l.rule.targets, l.rule.balance]) === JSON.stringify([rule.targets, rule.balance]);
      this.engine.updateListener(l.id, {
        ...(!sameTargets && { targets: rule.targets, balance: rule.balance }),
        connectTimeoutMs: rule.connectTimeoutMs,
        idleTimeoutMs: rule.idleTimeoutMs,
        ...upstreamOptions(rule),
      });
      l.rule = rule;
    }
    // Past this point the reload has happened: a failure here is logged, never thrown.
    for (const l of leaving) {
      // A rule that stays (moved) keeps its id: only a removed rule's socket entry goes. Deleted
      // before the close, which the engine thread does later and which empties the slot itself
      // (deleting an empty sockmap slot is EINVAL).
      if (l.rule.kind !== 'listen' && !opened.some((o) => o.ruleId === l.ruleId && o.rule.kind !== 'listen')) {
        this.forgetSteerSocket(l);
      }
      this.closeListener(l);
      this.byName.delete(l.rule.name);
    }
    if (leavingPorts.length || guardedNow.length) this.applyBindings(next, ids, opened, []);
    this.commitLists();
    if (this.interception && !needsInterception(next)) this.retireInterception(interceptingIds);
    for (const l of opened) this.byName.set(l.rule.name, l);
    for (const rule of next.rules) this.byName.get(rule.name)!.rule = rule;
    this.ids.commit(planned);
    for (const [name, id] of ids) this.names.set(id, name);
    this.config = { ...this.config, acl: next.acl, accessLog: next.accessLog, resolveIntervalMs: next.resolveIntervalMs, rules: next.rules, source: next.source };
    const names = (rules: readonly Rule[]) => rules.map((r) => r.name);
    return {
      added: names(diff.added),
      removed: names(diff.removed),
      changed: names(changed),
      moved: [...movedNames],
      unchanged: diff.unchanged.length - moved.filter((m) => diff.unchanged.includes(m.to)).length,
      restartNeeded: diff.restartNeeded,
    };
  }

  /**
   * The trie for the steering rules of `next`, with guards on every steering socket's port
   * and a binding for every listen rule a list applies to.
   */
  private applyBindings(
    next: Config,
    ids: ReadonlyMap<string, number>,
    opened: readonly RuleListener[],
    extraGuards: readonly number[],
    extraListens: readonly GuardedListen[] = [],
  ): void {
    if (!this.steeringState) return;
    const steerRules = next.rules.filter((r): r is SteerRule => r.kind === 'steer');
    const socketOf = (rule: Rule) => opened.find((l) => l.rule === rule) ?? this.byName.get(rule.name)!;
    // Steering and intercept sockets alike take connections only through their rules.
    const ports = [...next.rules.filter((r) => r.kind !== 'listen' && !r.proxySocket).map((r) => socketOf(r).port), ...extraGuards];
    const listens = [...extraListens, ...guardedListenRules(next).map((rule) => ({ rule, id: ids.get(rule.name)! }))];
    this.steeringState.steering.apply(withListenBindings(withProxyGuards(compileBindings(steerRules, ids), ports), listens));
  }

  /** Past the bindings update: the lists' final flags, stale prefixes removed. Logged, never thrown. */
  private commitLists(): void {
    try {
      this.steeringState?.lists.commit();
    } catch (err) {
      this.options.logger?.warn(`allow/deny lists: could not remove old entries: ${errorMessage(err)}`);
    }
  }

  /** The intercepts trie and TC programs of next; the policy routing with the first config that needs it. */
  private applyInterception(next: Config, ids: ReadonlyMap<string, number>): void {
    if (!needsInterception(next)) return;
    clearInterval(this.interceptionRetiring); // intercepting again: what is there stays
    this.interceptionRetiring = undefined;
    if (!this.interception) {
      this.interception = Interception.start(this.native, this.steeringState!.object, next.interception, this.options.logger ?? silentLogger);
      this.undo.push('remove interception', () => this.stopInterception());
    }
    this.interception.apply(next, ids);
  }

  /** Under the netns lock: a killed instance's policy rule and route go, intercepting or not. */
  private removeInterceptionLeftovers(): void {
    try {
      removeLeftovers(this.native, this.options.logger ?? silentLogger);
    } catch (err) {
      this.options.logger?.warn(`interception: could not remove the policy routing an earlier run left: ${errorMessage(err)}`);
    }
  }

  /**
   * The last intercepting rule went: no new flows, but the TC program and the routing stay until
   * those rules' open connections have ended (their packets must still be delivered here).
   */
  private retireInterception(ruleIds: readonly number[]): void {
    if (this.interceptionRetiring) return;
    this.interception!.retire();
    const open = () =>
      this.engine
        .ruleStats()
        .filter((r) => ruleIds.includes(r.ruleId))
        .reduce((n, r) => n + r.connecting + Object.values(r.active).reduce((a, b) => a + b, 0), 0);
    const check = () => {
      if (open() > 0) return;
      this.stopInterception();
    };
    this.interceptionRetiring = setInterval(check, INTERCEPTION_DRAIN_POLL_MS);
    this.interceptionRetiring.unref();
    check();
  }

  private stopInterception(): void {
    clearInterval(this.interceptionRetiring);
    this.interceptionRetiring = undefined;
    this.interception?.stop();
    this.interception = undefined;
  }

  /** A failed apply leaves the running rules as they were: old trie, old sockets, new ones closed. */
  private rollBack(opened: readonly RuleListener[], freedFirst: readonly RuleListener[], bindingsTouched: boolean, listsStaged: boolean, interceptionTouched = false): void {
    const logger = this.options.logger ?? silentLogger;
    try {
      if (interceptionTouched && this.interception) {
        if (needsInterception(this.config)) this.interception.apply(this.config, this.ruleIds);
        else this.stopInterception();
      }
      if (listsStaged) this.steeringState?.lists.stage(compileAcls(this.config, this.ruleIds));
      if (bindingsTouched) this.applyBindings(this.config, this.ruleIds, [], []);
      if (listsStaged) this.steeringState?.lists.commit();
      for (const l of opened) {
        const old = this.byName.get(l.rule.name);
        // A new steering socket took over the rule's steer_sockets entry: give it back.
        if (l.rule.kind !== 'listen' && old?.open && old.rule.kind !== 'listen') {
          this.native.sockmapUpdate(this.steeringState!.object.mapFd(MAPS.steerSockets), encodeU32Key(old.ruleId), old.fd);
        }
      }
    } catch (err) {
      logger.error(`could not restore the running rules after a failed reload: ${errorMessage(err)}`);
    }
    opened.forEach((l) => this.closeListener(l));
    for (const l of freedFirst) this.reopen(l);
  }

  /** Lock, BPF object and sk_lookup link, once: at start, or by the first reload that steers. */
  private async ensureSteering(next: Config): Promise<void> {
    if (this.steeringState) return;
    if (!this.decision.steering) {
      chooseDatapath('userspace', next, () => (this.probed ??= this.probe())); // throws, naming the rule or the lists, when sk_lookup is unavailable
    }
    const steps = new UndoStack(this.options.logger ?? silentLogger);
    try {
      if (!this.lock) {
        const lock = (this.lock = lockNetns(this.native, this.netnsInode, this.options.runDir));
        steps.push('release the netns lock', () => lock.release());
      }
      this.removeInterceptionLeftovers();
      const object = this.object ?? (await loadObject(this.native, this.options.objectPath ?? DEFAULT_OBJECT_PATH));
      if (!this.object) steps.push('close BPF object', () => object.close());
      const linkId = object.attachSkLookup(PROGRAMS.steer);
      steps.push('detach sk_lookup', () => object.detach(linkId));
      // Refused connections are reported only when something logs them.
      const reportDenials = this.options.connectionEvents ?? true;
      if (reportDenials) this.engine.watchDenials(object.mapFd(MAPS.denials));
      this.engine.useAccessLists(object.mapFd(MAPS.acl), object.mapFd(MAPS.rulePolicy));
      const steering = new Steering(
        this.native,
        { bindings: object.mapFd(MAPS.bindings), settings: object.mapFd(MAPS.settings) },
        bindingsTrie(reportDenials ? SETTINGS_FLAGS.reportDenials : 0),
      );
      const lists = new AccessLists(this.native, { acl: object.mapFd(MAPS.acl), policy: object.mapFd(MAPS.rulePolicy) });
      this.steeringState = { object, steering, lists };
      this.object = object;
      this.decision = { ...this.decision, steering: true };
    } catch (err) {
      await steps.unwind();
      throw explainStartFailure(err, 'setting up steering');
    }
    this.undo.push('tear down steering', () => steps.unwind());
  }

  /** The rule's listening socket: its own address, or a private dual-stack one that sk_lookup feeds. */
  private openListener(rule: Rule, ruleId: number, loopGuard: boolean): RuleListener {
    if (rule.proxySocket) return this.adoptSocket(rule, rule.proxySocket, ruleId);
    const { config } = this;
    const steering = rule.kind !== 'listen';
    const bind = steering ? { host: '::', port: 0 } : rule.listen;
    const intercept = rule.kind === 'intercept';
    let handle: ListenerHandle;
    try {
      handle = this.engine.addListener({
        ruleId,
        bind,
        dualStack: bind.host === '::',
        backlog: LISTEN_BACKLOG,
        targets: rule.targets,
        balance: rule.balance,
        connectTimeoutMs: rule.connectTimeoutMs,
        idleTimeoutMs: rule.idleTimeoutMs,
        datapath: this.decision.relay,
        budgetBytes: config.budgetBytes,
        sndbufBytes: config.sndbufBytes,
        spliceAfterBytes: config.spliceAfterBytes,
        bulkOnRelay: config.bulkFlows === 'relay',
        loopGuard,
        ...(intercept && { transparent: true, originalDestination: rule.originalDestination }),
        ...(rule.acceptProxy && { acceptProxy: true }),
        ...upstreamOptions(rule),
      });
    } catch (err) {
      throw explainListenFailure(err, rule, formatHostPort(bind.host, bind.port));
    }
    const listener = { rule, ruleId, id: handle.id, fd: handle.fd, port: handle.port, address: formatHostPort(bind.host, handle.port), loopGuard, open: true };
    if (steering) {
      try {
        this.native.sockmapUpdate(this.steeringState!.object.mapFd(MAPS.steerSockets), encodeU32Key(ruleId), handle.fd);
      } catch (err) {
        this.closeListener(listener);
        throw explainStartFailure(err, `rule '${rule.name}': steer_sockets`);
      }
    }
    return listener;
  }

  /**
   * `target: socket`: a duplicate of the listening socket another program has at that address,
   * with IP_TRANSPARENT (it takes connections to foreign addresses), in steer_sockets.
   */
  private adoptSocket(rule: Rule, at: { host: string; port: number }, ruleId: number): RuleListener {
    const where = formatHostPort(at.host, at.port);
    const owner = socketOwner(listeningInodes(at));
    if (!owner) {
      throw new BpfredirError('ERR_BPFREDIR_CONFIG', `rule '${rule.name}': nothing listens on ${where} in this network namespace; start the proxy first, or fix target: socket`);
    }
    let fd: number;
    try {
      fd = this.native.pidfdGetfd(owner.pid, owner.fd);
    } catch (err) {
      throw new BpfredirError('ERR_BPFREDIR_PRIVILEGES', `rule '${rule.name}': cannot take ${owner.command}'s socket on ${where} (pid ${owner.pid}, fd ${owner.fd}): ${errorMessage(err)}; bpfredir needs CAP_SYS_PTRACE over it (root), Linux >= 5.6`);
    }
    const listener: RuleListener = { rule, ruleId, id: -1, fd, port: at.port, address: where, loopGuard: false, open: true, external: true };
    try {
      this.native.setTransparent(fd);
      this.native.sockmapUpdate(this.steeringState!.object.mapFd(MAPS.steerSockets), encodeU32Key(ruleId), fd);
    } catch (err) {
      this.closeListener(listener);
      throw explainStartFailure(err, `rule '${rule.name}': the socket of ${owner.command} on ${where}`);
    }
    this.options.logger?.info(`rule '${rule.name}': steering to ${owner.command}'s socket on ${where} (pid ${owner.pid})`);
    return listener;
  }

  /** Undo of an early close when the reload fails after it: the same rule, the same address. */
  private reopen(old: RuleListener): void {
    try {
      Object.assign(old, this.openListener(old.rule, old.ruleId, old.loopGuard));
    } catch (err) {
      this.options.logger?.error(`rule '${old.rule.name}': could not listen again after a failed reload: ${errorMessage(err)}`);
    }
  }

  private forgetSteerSocket(listener: RuleListener): void {
    try {
      this.native.mapDelete(this.steeringState!.object.mapFd(MAPS.steerSockets), encodeU32Key(listener.ruleId));
    } catch (err) {
      // The trie no longer names the id; closing the socket empties the slot anyway.
      this.options.logger?.warn(`rule '${listener.rule.name}': steer_sockets entry: ${errorMessage(err)}`);
    }
  }

  private closeListener(listener: RuleListener): void {
    if (!listener.open) return;
    listener.open = false;
    // Our duplicate only: the other program's socket goes on listening.
    if (listener.external) this.native.closeFd(listener.fd);
    else this.engine.removeListener(listener.id);
  }

  stopAccepting(): void {
    for (const l of this.byName.values()) this.closeListener(l);
  }

  async drain(drainMs: number, skip: Promise<unknown> = new Promise(() => {})): Promise<DrainReport> {
    this.stopAccepting();
    const open = this.engine.stats().connections;
    await untilIdle(this.engine, drainMs, skip);
    const reset = this.engine.stats().connections;
    await this.stop();
    return { drained: Math.max(0, open - reset), reset };
  }

  stop(): Promise<void> {
    return (this.stopping ??= (async () => {
      this.stopAccepting();
      await this.undo.unwind();
    })());
  }
}

const idKey = (rule: Rule) => `${rule.kind}/${rule.name}`;

/** A rule's per-connection socket settings, as the engine takes them (every key, so an update resets what a rule dropped). */
function upstreamOptions(rule: Rule): Required<Pick<ListenerOptions, 'proxyProtocol' | 'mark' | 'keepaliveS' | 'maxConnections' | 'transparentSource'>> & Pick<ListenerOptions, 'sourceAddress'> {
  return {
    transparentSource: rule.transparentSource === 'address_and_port' ? 2 : rule.transparentSource ? 1 : 0,
    proxyProtocol: rule.proxyProtocol ?? 0,
    ...(rule.sourceAddress && { sourceAddress: { host: rule.sourceAddress, port: 0 } }),
    mark: rule.mark ?? 0,
    keepaliveS: Math.ceil((rule.keepaliveMs ?? 0) / 1000),
    maxConnections: rule.maxConnections ?? 0,
  };
}

/** A transparent-source rule's connect that timed out: its replies most likely went elsewhere. */
function connectHint(daemon: RunningDaemon | undefined, names: ReadonlyMap<number, string>, event: EngineEvent): string | undefined {
  if (event.code !== 'ETIMEDOUT' && event.reason !== 'connect_timeout') return undefined;
  const rule = daemon?.config.rules.find((r) => r.name === names.get(event.ruleId));
  return rule?.transparentSource ? transparentTimeoutHint(event) : undefined;
}

export async function startDaemon(config: Config, options: DaemonOptions = {}): Promise<Daemon> {
  const logger = options.logger ?? silentLogger;
  const native = options.native ?? loadNative();
  const capabilities = options.capabilities ?? effectiveCapabilities();
  const probe = () => withCapabilities(native.probeFeatures(), capabilities);
  let probed: FeatureProbe | undefined;
  const decision = chooseDatapath(options.datapath ?? config.datapath, config, () => (probed = probe()));
  if (decision.fallbackReason) logger.warn(decision.fallbackReason);

  const netnsInode = native.netnsInode();
  const undo = new UndoStack(logger);
  try {
    // First: a second instance in this netns is refused before it loads anything.
    const lock = decision.steering ? lockNetns(native, netnsInode, options.runDir) : undefined;
    if (lock) undo.push('release the netns lock', () => lock.release());
    let object: RawBpfObject | undefined;
    if (decision.relay === 'splice') {
      const loaded = (object = await loadObject(native, options.objectPath ?? DEFAULT_OBJECT_PATH));
      undo.push('close BPF object', () => loaded.close());
      object.attachVerdict(PROGRAMS.verdict, MAPS.spliceActive);
    }
    const names = new Map<number, string>();
    let daemonRef: RunningDaemon | undefined;
    const threads = engineThreads(config.threads);
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
      threads,
      onEvents: (events) => {
        events.forEach((e) => logEngineEvent(logger, e, names, (event) => connectHint(daemonRef, names, event)));
        options.onEvents?.(events);
      },
    });
    undo.push('close engine', () => engine.close());

    const daemon = (daemonRef = new RunningDaemon(native, engine, object, decision, netnsInode, undo, { ...options, capabilities }, names, lock, config, threads, probe, probed));
    await daemon.apply(config);
    internals.set(daemon, { native, ruleStatsFd: () => daemon.ruleStatsFd() });
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
    const fd = state.ruleStatsFd();
    if (fd === undefined) return zeroRuleStats();
    const perCpu = state.native.mapLookupPercpu(fd, encodeU32Key(id), RULE_STATS_SIZE);
    return perCpu ? sumRuleStats(perCpu) : zeroRuleStats();
  };
  const rules = new Map([...daemon.ruleIds].map(([name, id]) => [name, read(id)]));
  return { rules, unmatchedLookups: read(0).lookups };
}
