/**
 * Allow and deny lists → the kernel's acl trie and rule_policy flags, and the
 * bindings that make sk_lookup see a listen rule's connections. Pure.
 *
 * Scope 0 holds the config's own lists, which every rule obeys; a rule's lists
 * are under its id. A listen rule gets a binding only when some list applies
 * to it: with none, its connections never meet bpfredir's program. An
 * accept_proxy rule's scope also holds its trusted load balancers: the only
 * peers sk_lookup admits; the engine judges the clients their headers name.
 */
import { ACL_LIST, POLICY } from '../abi.js';
import type { Acl, Config, ListenRule } from '../config/types.js';
import { IPPROTO_TCP, type Binding, type CompiledBindings } from './compile.js';
import { addressBytes, IPV4_MAPPED_PREFIX_BITS, type Prefix } from './ip.js';

export const GLOBAL_SCOPE = 0;

export interface AclEntry {
  scope: number;
  list: number; // ACL_LIST value
  prefix: Prefix;
}

export interface CompiledAcls {
  entries: AclEntry[];
  /** rule_policy flags per scope; scopes not named have none (0). */
  policies: Map<number, number>;
}

const hasLists = (acl: Acl | undefined): acl is Acl => acl !== undefined && (acl.allow.length > 0 || acl.deny.length > 0);

/** Whether anything in the config asks sk_lookup to enforce a list (accept_proxy's trusted peers are one). */
export function usesAcls(config: Pick<Config, 'acl' | 'rules'>): boolean {
  return hasLists(config.acl) || config.rules.some((r) => hasLists(r.acl) || r.acceptProxy);
}

function scopeOf(scope: number, acl: Acl, extraFlags: number, out: CompiledAcls): void {
  for (const prefix of acl.allow) out.entries.push({ scope, list: ACL_LIST.allow, prefix });
  for (const prefix of acl.deny) out.entries.push({ scope, list: ACL_LIST.deny, prefix });
  const flags = (acl.allow.length ? POLICY.hasAllow : 0) | (acl.deny.length ? POLICY.hasDeny : 0) | extraFlags;
  if (flags) out.policies.set(scope, flags);
}

/** Listen rules whose connections sk_lookup must see: some list applies to them. */
export function guardedListenRules(config: Pick<Config, 'acl' | 'rules'>): ListenRule[] {
  const global = hasLists(config.acl);
  return config.rules.filter((r): r is ListenRule => r.kind === 'listen' && (global || hasLists(r.acl) || r.acceptProxy !== undefined));
}

export function compileAcls(config: Pick<Config, 'acl' | 'rules'>, ids: ReadonlyMap<string, number>): CompiledAcls {
  const out: CompiledAcls = { entries: [], policies: new Map() };
  if (hasLists(config.acl)) scopeOf(GLOBAL_SCOPE, config.acl, 0, out);
  const passing = new Set(guardedListenRules(config));
  for (const rule of config.rules) {
    const id = ids.get(rule.name);
    if (id === undefined) throw new Error(`no id assigned to rule '${rule.name}'`);
    scopeOf(id, rule.acl ?? { allow: [], deny: [] }, passing.has(rule as ListenRule) ? POLICY.pass : 0, out);
    if (rule.acceptProxy) {
      // sk_lookup admits only these peers; the lists judge the clients their headers name (in the engine).
      for (const prefix of rule.acceptProxy) out.entries.push({ scope: id, list: ACL_LIST.trusted, prefix });
      out.policies.set(id, (out.policies.get(id) ?? 0) | POLICY.proxied);
    }
    if (rule.kind === 'intercept' && rule.sources.length) {
      // Not a refusal: the TC program leaves other clients' traffic alone.
      for (const prefix of rule.sources) out.entries.push({ scope: id, list: ACL_LIST.source, prefix });
      out.policies.set(id, (out.policies.get(id) ?? 0) | POLICY.hasSources);
    }
  }
  return out;
}

/**
 * What a listen socket's bind address covers in the kernel's address space:
 * one address, every IPv4 address (0.0.0.0), or everything ([::], which bpfredir
 * binds dual-stack).
 */
export function listenPrefix(host: string): Prefix {
  const addr = addressBytes(host);
  if (host === '::') return { addr, len: 0, family: 6 };
  if (host === '0.0.0.0') return { addr, len: IPV4_MAPPED_PREFIX_BITS, family: 4 };
  return { addr, len: 128, family: host.includes(':') ? 6 : 4 };
}

export interface GuardedListen {
  rule: ListenRule;
  id: number;
}

/** The steering trie plus one exact-port binding per guarded listen address (it replaces an equal key). */
export function withListenBindings(compiled: CompiledBindings, listens: readonly GuardedListen[]): CompiledBindings {
  if (listens.length === 0) return compiled;
  const keyOf = (b: Binding) => `${b.prefix.addr.toString('hex')}/${b.prefix.len}/${b.port}/${b.portBits}`;
  const byKey = new Map<string, Binding>();
  for (const { rule, id } of listens) {
    const binding = { protocol: IPPROTO_TCP, prefix: listenPrefix(rule.listen.host), port: rule.listen.port, portBits: 16, ruleId: id };
    byKey.set(keyOf(binding), binding);
  }
  return { bindings: [...compiled.bindings.filter((b) => !byKey.has(keyOf(b))), ...byKey.values()], portBitsMask: compiled.portBitsMask | (1 << 16) };
}
