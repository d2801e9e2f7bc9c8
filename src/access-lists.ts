/**
 * Brings the kernel's acl trie and rule_policy array to a compiled set of lists,
 * in two steps around the bindings update so no connection is judged by half a
 * change:
 *   stage()  before the bindings: new prefixes first, then every scope's new
 *            flags (a list's entries exist before its flag says to consult them;
 *            a listen rule is marked "pass" before its binding can name it, and
 *            keeps an old "pass" while its old binding may still name it);
 *   commit() after the bindings: the final flags (0 for scopes no longer used:
 *            their bindings are gone by then), then stale prefixes go.
 * A binding whose rule lacks "pass" would send the rule's connections to
 * steer_sockets, where a listen rule has no socket: refused.
 * While a list changes, a client admitted by both the old and the new list stays
 * admitted throughout, and a new deny takes effect before an old one lapses.
 */
import { ACL_KEY_SIZE, ACL_VALUE_SIZE, POLICY, encodeAclKey, encodeRulePolicy, encodeU32Key } from './abi.js';
import { errnoCode } from './errors.js';
import type { CompiledAcls } from './rules/acl.js';
import type { RawBinding } from './native/index.js';

export type AclMapOps = Pick<RawBinding, 'mapUpdateMany' | 'mapDelete' | 'mapUpdate'>;

export interface AclMaps {
  acl: number; // fd of the LPM trie
  policy: number; // fd of the rule_policy array
}

const PRESENT = Buffer.from([1, 0, 0, 0]);

export class AccessLists {
  /** What the kernel holds after the last commit (the maps start empty: they are this process's). */
  private entries = new Set<string>();
  private policies = new Map<number, number>();
  private staged: { entries: Set<string>; policies: Map<number, number> } | undefined;

  constructor(
    private readonly ops: AclMapOps,
    private readonly maps: AclMaps,
  ) {}

  /** Prefixes in the trie now. */
  get size(): number {
    return this.entries.size;
  }

  stage(compiled: CompiledAcls): void {
    const wanted = new Set(compiled.entries.map((e) => encodeAclKey(e.scope, e.list, e.prefix).toString('latin1')));
    const fresh = [...wanted].filter((k) => !this.entries.has(k));
    if (fresh.length) {
      const keys = Buffer.from(fresh.join(''), 'latin1');
      const values = Buffer.concat(fresh.map(() => PRESENT));
      // Counted as written first: if the batch fails halfway (map full), the next commit removes what got in.
      fresh.forEach((k) => this.entries.add(k));
      this.ops.mapUpdateMany(this.maps.acl, keys, values, ACL_KEY_SIZE, ACL_VALUE_SIZE);
    }
    for (const [scope, flags] of compiled.policies) this.write(scope, flags | ((this.policies.get(scope) ?? 0) & POLICY.pass));
    this.staged = { entries: wanted, policies: compiled.policies };
  }

  private write(scope: number, flags: number): void {
    if ((this.policies.get(scope) ?? 0) === flags) return;
    this.ops.mapUpdate(this.maps.policy, encodeU32Key(scope), encodeRulePolicy(flags));
    if (flags) this.policies.set(scope, flags);
    else this.policies.delete(scope);
  }

  commit(): void {
    const staged = this.staged;
    if (!staged) return;
    for (const scope of new Set([...this.policies.keys(), ...staged.policies.keys()])) this.write(scope, staged.policies.get(scope) ?? 0);
    for (const key of [...this.entries].filter((k) => !staged.entries.has(k))) {
      try {
        this.ops.mapDelete(this.maps.acl, Buffer.from(key, 'latin1'));
      } catch (err) {
        if (errnoCode(err) !== 'ENOENT') throw err; // never written: a batch that failed before it
      }
      this.entries.delete(key);
    }
    this.staged = undefined;
  }
}
