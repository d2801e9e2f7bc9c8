/**
 * Brings the kernel's bindings trie to a desired set of entries as a diff, in
 * an order that never misroutes a connection mid-update: adds and changes go
 * most specific first (a new narrow entry never briefly loses to a wider one
 * it should beat), removals least specific first (the reverse). The settings
 * map (port granularities in use) is written last.
 */
import { BIND_KEY_SIZE, BIND_VALUE_SIZE, encodeBindKey, encodeBindValue, encodeSettings, encodeU32Key } from './abi.js';
import { bySpecificity, type Binding, type CompiledBindings } from './rules/compile.js';
import type { RawBinding } from './native/index.js';

export type MapOps = Pick<RawBinding, 'mapKeys' | 'mapLookup' | 'mapUpdateMany' | 'mapDelete' | 'mapUpdate'>;

export interface SteeringMaps {
  bindings: number; // fd of the LPM trie
  settings: number; // fd of the one-element settings array
}

export interface SteeringChanges {
  added: number;
  changed: number;
  removed: number;
  unchanged: number;
}

/** Least specific first: the order to remove in. */
function byGenerality(a: Buffer, b: Buffer): number {
  const prefixLen = (k: Buffer) => k.readUInt32LE(0);
  const portBits = (k: Buffer) => k.readUInt8(5);
  return prefixLen(a) - prefixLen(b) || portBits(a) - portBits(b);
}

export function applyBindings(ops: MapOps, maps: SteeringMaps, compiled: CompiledBindings): SteeringChanges {
  const desired = new Map<string, Binding>();
  for (const binding of compiled.bindings) desired.set(encodeBindKey(binding).toString('hex'), binding);

  const stale: Buffer[] = [];
  const present = new Set<string>();
  let unchanged = 0;
  const toWrite: Binding[] = [];
  for (const key of ops.mapKeys(maps.bindings, BIND_KEY_SIZE)) {
    const id = key.toString('hex');
    const binding = desired.get(id);
    if (!binding) {
      stale.push(key);
      continue;
    }
    present.add(id);
    const current = ops.mapLookup(maps.bindings, key, BIND_VALUE_SIZE);
    if (current?.equals(encodeBindValue(binding))) unchanged++;
    else toWrite.push(binding);
  }
  const changed = toWrite.length;
  for (const [id, binding] of desired) if (!present.has(id)) toWrite.push(binding);

  toWrite.sort(bySpecificity);
  if (toWrite.length) {
    const keys = Buffer.alloc(toWrite.length * BIND_KEY_SIZE);
    const values = Buffer.alloc(toWrite.length * BIND_VALUE_SIZE);
    toWrite.forEach((b, i) => {
      encodeBindKey(b, keys, i * BIND_KEY_SIZE);
      encodeBindValue(b, values, i * BIND_VALUE_SIZE);
    });
    ops.mapUpdateMany(maps.bindings, keys, values, BIND_KEY_SIZE, BIND_VALUE_SIZE);
  }
  for (const key of stale.sort(byGenerality)) ops.mapDelete(maps.bindings, key);
  ops.mapUpdate(maps.settings, encodeU32Key(0), encodeSettings(compiled.portBitsMask));
  return { added: toWrite.length - changed, changed, removed: stale.length, unchanged };
}
