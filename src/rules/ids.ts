/**
 * Rule names → small numeric ids (the kernel never sees names). Ids are stable
 * across reloads: a name keeps its id while it stays in the config. Id 0 is
 * reserved by the ABI for "no rule matched".
 */
import { BpfredirError } from '../errors.js';

export const MAX_RULE_ID = 65535; // BPFREDIR_MAX_RULES - 1

export class RuleIds {
  private readonly ids = new Map<string, number>();

  /** plan() and commit() in one step. */
  assign(names: readonly string[]): Map<string, number> {
    return this.commit(this.plan(names));
  }

  /**
   * Ids for exactly these names, not yet taken. Names already known keep their
   * id; new names get the lowest id no name held before, so an id freed by a
   * reload is not handed to a different rule in the same reload.
   */
  plan(names: readonly string[]): Map<string, number> {
    const busy = new Set(this.ids.values());
    const result = new Map<string, number>();
    let next = 1;
    for (const name of names) {
      const known = this.ids.get(name);
      if (known !== undefined) {
        result.set(name, known);
        continue;
      }
      while (busy.has(next)) next++;
      if (next > MAX_RULE_ID) throw new BpfredirError('ERR_BPFREDIR_CONFIG', `more than ${MAX_RULE_ID} rules; merge rules that share a target (destination takes a list)`);
      result.set(name, next);
      busy.add(next);
    }
    return result;
  }

  /** Make a plan the current ids (once the reload that planned them has succeeded). */
  commit(ids: Map<string, number>): Map<string, number> {
    this.ids.clear();
    for (const [name, id] of ids) this.ids.set(name, id);
    return ids;
  }
}
