/**
 * Router interception, what bpfredir changes on the box for it: the TC
 * program on every interface that needs it, one fwmark policy rule and one
 * `local default dev lo` route per address family in a table of its own, and
 * the intercepts trie. Set up by the first config that intercepts (or asks for
 * a transparent source), removed by stop() or when no rule needs it any more.
 *
 * The rule and the routes carry ROUTE_PROTOCOL, so the next start that takes
 * the netns lock removes what a killed instance left (removeLeftovers: no live
 * instance owns them then). TC programs are tcx links: they go with the process.
 */
import { encodeInterceptKey, encodeInterceptSettings, INTERCEPT_KEY_SIZE, LAYOUTS, MAPS, PROGRAMS } from './abi.js';
import type { Config, InterceptRule, InterceptionSettings, Rule } from './config/types.js';
import { BpfredirError, errorMessage } from './errors.js';
import type { Logger } from './log.js';
import type { RawBinding, RawBpfObject } from './native/index.js';
import { compileBindings, type Binding, type CompiledBindings } from './rules/compile.js';
import { Steering, type SteeringChanges, type TrieLayout } from './steering.js';

/** rtm_protocol / FRA_PROTOCOL of what bpfredir adds (unassigned in iproute2's rt_protos). */
export const ROUTE_PROTOCOL = 98;
const FAMILIES = [4, 6] as const;
const RTN_LOCAL = 2;

/** What `status` shows of interception. */
export interface InterceptionReport {
  mark: number;
  table: number;
  priority: number;
  /** Interfaces with the TC program, and why: a rule's inbound side, or replies only. */
  interfaces: { name: string; ifindex: number; role: 'intercept' | 'return' }[];
  /** Bindings in the intercepts trie. */
  entries: number;
}

type PolicyOps = Pick<RawBinding, 'listPolicyRules' | 'addPolicyRule' | 'deletePolicyRule' | 'listTableRoutes' | 'addLocalDefaultRoute' | 'deleteLocalDefaultRoute'>;

/** Whether a config needs any of it: an intercept rule, or replies to catch for a transparent source. */
export function needsInterception(config: Pick<Config, 'rules'>): boolean {
  return config.rules.some(intercepting);
}

/** A rule whose connections need the TC program and the policy routing. */
export const intercepting = (rule: Rule): boolean => rule.kind === 'intercept' || rule.transparentSource !== undefined;

/** A mark or mask as ip rule writes it. */
export const hex = (n: number) => `0x${n.toString(16)}`;

/** Remove what an earlier instance in this netns left: ours by protocol tag. */
export function removeLeftovers(ops: PolicyOps, logger: Logger): void {
  for (const family of FAMILIES) {
    const tables = new Set<number>();
    for (const rule of ops.listPolicyRules(family).filter((r) => r.protocol === ROUTE_PROTOCOL)) {
      ops.deletePolicyRule(family, rule);
      tables.add(rule.table);
      logger.info(`interception: removed a policy rule left by an earlier run (IPv${family} priority ${rule.priority}: fwmark ${hex(rule.mark)}/${hex(rule.mask)} lookup ${rule.table})`);
    }
    for (const table of tables) {
      const ours = ops.listTableRoutes(family, table).some((r) => r.protocol === ROUTE_PROTOCOL && r.type === RTN_LOCAL && r.dstLen === 0);
      if (ours) ops.deleteLocalDefaultRoute(family, table, ROUTE_PROTOCOL);
    }
  }
}

/** Refuses a mark, priority or table someone else already uses: one line naming it and the setting to change. */
export function checkClashes(ops: PolicyOps, settings: InterceptionSettings): void {
  for (const family of FAMILIES) {
    for (const rule of ops.listPolicyRules(family)) {
      const what = `IPv${family} policy rule ${rule.priority}${rule.mask ? ` (fwmark ${hex(rule.mark)}/${hex(rule.mask)} lookup ${rule.table})` : ` (lookup ${rule.table})`}`;
      if (rule.priority === settings.priority) {
        throw new BpfredirError('ERR_BPFREDIR_CONFIG', `interception: priority ${settings.priority} is taken by the ${what}; pick another with interception: priority:`);
      }
      if (rule.mask & settings.mark) {
        throw new BpfredirError('ERR_BPFREDIR_CONFIG', `interception: mark ${hex(settings.mark)} overlaps the ${what}; pick a bit nobody matches with interception: mark:`);
      }
      if (rule.table === settings.table) {
        throw new BpfredirError('ERR_BPFREDIR_CONFIG', `interception: table ${settings.table} is used by the ${what}; pick another with interception: table:`);
      }
    }
    if (ops.listTableRoutes(family, settings.table).length > 0) {
      throw new BpfredirError('ERR_BPFREDIR_CONFIG', `interception: routing table ${settings.table} already has IPv${family} routes; pick an empty one with interception: table:`);
    }
  }
}

/** The intercepts trie: each rule's bindings on each of its inbound interfaces (overlaps resolved per interface). */
export function compileIntercepts(rules: readonly InterceptRule[], ids: ReadonlyMap<string, number>, ifindexOf: (name: string) => number): CompiledBindings {
  const byInterface = new Map<string, InterceptRule[]>();
  for (const rule of rules) for (const name of rule.interfaces) byInterface.set(name, [...(byInterface.get(name) ?? []), rule]);
  const bindings: Binding[] = [];
  let portBitsMask = 0;
  for (const [name, list] of byInterface) {
    const compiled = compileBindings(list, ids);
    const ifindex = ifindexOf(name);
    for (const b of compiled.bindings) bindings.push({ ...b, ifindex });
    portBitsMask |= compiled.portBitsMask;
  }
  return { bindings, portBitsMask };
}

const interceptTrie = (mark: number): TrieLayout => ({
  keySize: INTERCEPT_KEY_SIZE,
  encodeKey: encodeInterceptKey,
  portBitsOffset: LAYOUTS.intercept_key.offsets.port_bits,
  settings: (mask) => encodeInterceptSettings(mark, mask),
});

export class Interception {
  private readonly links = new Map<string, { ifindex: number; linkId: number; role: 'intercept' | 'return' }>();
  private readonly trie: Steering;
  private routed = false;

  private constructor(
    private readonly native: RawBinding,
    private readonly object: RawBpfObject,
    readonly settings: InterceptionSettings,
    private readonly logger: Logger,
  ) {
    const maps = { bindings: object.mapFd(MAPS.intercepts), settings: object.mapFd(MAPS.interceptSettings) };
    this.trie = new Steering(native, maps, interceptTrie(settings.mark));
  }

  /** Policy rule and routes, after checking for clashes (the daemon removed leftovers under the netns lock). Undone on failure. */
  static start(native: RawBinding, object: RawBpfObject, settings: InterceptionSettings, logger: Logger): Interception {
    checkClashes(native, settings);
    const interception = new Interception(native, object, settings, logger);
    try {
      interception.addRouting();
    } catch (err) {
      interception.stop();
      throw err;
    }
    return interception;
  }

  private addRouting(): void {
    const { mark, table, priority } = this.settings;
    this.routed = true;
    for (const family of FAMILIES) {
      this.native.addLocalDefaultRoute(family, table, ROUTE_PROTOCOL);
      this.native.addPolicyRule(family, { priority, table, mark, mask: mark, protocol: ROUTE_PROTOCOL });
    }
  }

  /** The interface index of a name, or one line saying it does not exist. */
  ifindexOf(name: string): number {
    try {
      return this.native.interfaceIndex(name);
    } catch {
      throw new BpfredirError('ERR_BPFREDIR_CONFIG', `interception: there is no interface '${name}' in this network namespace; check interfaces: and return_interfaces: (ip link shows them)`);
    }
  }

  /**
   * The trie and the TC attachments for next's rules. New interfaces get the program
   * before the trie names them; gone ones lose it after. Throws before changing anything
   * for an unknown interface.
   */
  apply(next: Config, ids: ReadonlyMap<string, number>): SteeringChanges {
    const rules = next.rules.filter((r): r is InterceptRule => r.kind === 'intercept');
    const wanted = new Map<string, 'intercept' | 'return'>();
    for (const name of next.interception.returnInterfaces) wanted.set(name, 'return');
    for (const rule of rules) for (const name of rule.interfaces) wanted.set(name, 'intercept');
    const ifindexes = new Map([...wanted.keys()].map((name) => [name, this.ifindexOf(name)]));
    const compiled = compileIntercepts(rules, ids, (name) => ifindexes.get(name)!);
    for (const [name, role] of wanted) {
      const link = this.links.get(name);
      if (link) {
        link.role = role;
        continue;
      }
      const ifindex = ifindexes.get(name)!;
      this.links.set(name, { ifindex, linkId: this.attach(name, ifindex), role });
    }
    const changes = this.trie.apply(compiled);
    for (const [name, link] of this.links) {
      if (wanted.has(name)) continue;
      this.detach(name, link.linkId);
    }
    return changes;
  }

  private attach(name: string, ifindex: number): number {
    try {
      return this.object.attachTcIngress(PROGRAMS.intercept, ifindex);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      const why = code === 'EINVAL' ? 'this kernel has no tcx links (Linux >= 6.6 needed)' : errorMessage(err);
      throw new BpfredirError('ERR_BPFREDIR_KERNEL', `interception: cannot attach the TC program to ${name}: ${why}`);
    }
  }

  private detach(name: string, linkId: number): void {
    this.links.delete(name);
    try {
      this.object.detach(linkId);
    } catch (err) {
      this.logger.warn(`interception: detaching the TC program from ${name}: ${errorMessage(err)}`);
    }
  }

  /** No new flows (an empty trie); the TC links and the routing stay for the open ones. */
  retire(): void {
    this.trie.apply({ bindings: [], portBitsMask: 0 });
  }

  report(): InterceptionReport {
    const { mark, table, priority } = this.settings;
    return { mark, table, priority, interfaces: [...this.links].map(([name, l]) => ({ name, ifindex: l.ifindex, role: l.role })), entries: this.trie.entries };
  }

  /** Everything off: the program from every interface, then the rule and the routes. Logged, never thrown. */
  stop(): void {
    for (const [name, link] of this.links) this.detach(name, link.linkId);
    try {
      this.trie.apply({ bindings: [], portBitsMask: 0 });
    } catch (err) {
      this.logger.warn(`interception: emptying the intercepts trie: ${errorMessage(err)}`);
    }
    if (!this.routed) return;
    this.routed = false;
    const { mark, table, priority } = this.settings;
    for (const family of FAMILIES) {
      for (const step of [
        () => this.native.deletePolicyRule(family, { priority, table, mark, mask: mark, protocol: ROUTE_PROTOCOL }),
        () => this.native.deleteLocalDefaultRoute(family, table, ROUTE_PROTOCOL),
      ]) {
        try {
          step();
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code !== 'ENOENT' && (err as NodeJS.ErrnoException).code !== 'ESRCH') {
            this.logger.warn(`interception: removing IPv${family} policy routing: ${errorMessage(err)}`);
          }
        }
      }
    }
  }
}
