/**
 * Brings the kernel's bindings trie to a desired set of entries as a diff, in
 * an order that never misroutes a connection mid-update: adds and changes go
 * most specific first (a new narrow entry never briefly loses to a wider one
 * it should beat), removals least specific first (the reverse). The settings
 * map (port granularities in use) is written last.
 *
 * The first apply diffs against what the kernel map holds; later ones against
 * what this instance wrote (the map is private to the process), which keeps a
 * reload of 100k bindings from re-reading every entry.
 */
import { BIND_KEY_SIZE, BIND_VALUE_SIZE, encodeBindKey, encodeBindValue, encodeSettings, encodeU32Key, LAYOUTS } from './abi.js';
import { bySpecificity, type Binding, type CompiledBindings } from './rules/compile.js';
import type { RawBinding } from './native/index.js';

export type MapOps = Pick<RawBinding, 'mapKeys' | 'mapLookup' | 'mapUpdateMany' | 'mapDelete' | 'mapUpdate'>;

export interface SteeringMaps {
  bindings: number; // fd of the LPM trie
  settings: number; // fd of the one-element settings array
}

/** How one LPM trie of bindings and its settings entry are encoded (bindings, or intercepts). */
export interface TrieLayout {
  keySize: number;
  encodeKey(b: Binding, out: Buffer, offset: number): void;
  /** Offset of port_bits in the key (prefixlen is at 0), for the order of removals. */
  portBitsOffset: number;
  /** The settings map's one value for these bindings. */
  settings(portBitsMask: number): Buffer;
}

/** The sk_lookup trie; flags: settings.flags (SETTINGS_FLAGS.reportDenials when someone reads the denials ring). */
export const bindingsTrie = (flags = 0): TrieLayout => ({
  keySize: BIND_KEY_SIZE,
  encodeKey: encodeBindKey,
  portBitsOffset: LAYOUTS.bind_key.offsets.port_bits,
  settings: (mask) => encodeSettings(mask, flags),
});

export interface SteeringChanges {
  added: number;
  changed: number;
  removed: number;
  unchanged: number;
}

/** Least specific first: the order to remove in. */
const byGenerality = (portBitsOffset: number) => (a: Buffer, b: Buffer): number =>
  a.readUInt32LE(0) - b.readUInt32LE(0) || a.readUInt8(portBitsOffset) - b.readUInt8(portBitsOffset);

/** Bindings keyed by their encoded key (latin1: one char per byte), value encoded. */
type Entries = Map<string, Buffer>;

export class Steering {
  private written: Entries | undefined;
  /** Bindings in the trie after the last apply that completed. */
  entries = 0;

  constructor(
    private readonly ops: MapOps,
    private readonly maps: SteeringMaps,
    private readonly layout: TrieLayout = bindingsTrie(),
  ) {}

  private readKernel(): Entries {
    const entries: Entries = new Map();
    for (const key of this.ops.mapKeys(this.maps.bindings, this.layout.keySize)) {
      const value = this.ops.mapLookup(this.maps.bindings, key, BIND_VALUE_SIZE);
      if (value) entries.set(key.toString('latin1'), value);
    }
    return entries;
  }

  apply(compiled: CompiledBindings): SteeringChanges {
    const current = this.written ?? this.readKernel();
    // Encoded once into two flat buffers, most specific first (the safe order to add in):
    // per-entry buffers cost ~0.1 s at 100k entries.
    const sorted = [...compiled.bindings].sort(bySpecificity);
    const keySize = this.layout.keySize;
    const keys = Buffer.alloc(sorted.length * keySize);
    const values = Buffer.alloc(sorted.length * BIND_VALUE_SIZE);
    const desired: Entries = new Map();
    const toWrite: number[] = [];
    let changed = 0;
    sorted.forEach((binding, i) => {
      this.layout.encodeKey(binding, keys, i * keySize);
      encodeBindValue(binding, values, i * BIND_VALUE_SIZE);
      const key = keys.toString('latin1', i * keySize, (i + 1) * keySize);
      const value = values.subarray(i * BIND_VALUE_SIZE, (i + 1) * BIND_VALUE_SIZE);
      desired.set(key, value);
      const old = current.get(key);
      if (old?.equals(value)) return;
      if (old) changed++;
      toWrite.push(i);
    });
    const stale = [...current.keys()].filter((k) => !desired.has(k)).map((k) => Buffer.from(k, 'latin1'));

    this.written = undefined; // until this apply completes, only the kernel knows what is there
    if (toWrite.length) {
      const all = toWrite.length === sorted.length;
      const pick = (flat: Buffer, size: number) =>
        all ? flat : Buffer.concat(toWrite.map((i) => flat.subarray(i * size, (i + 1) * size)));
      this.ops.mapUpdateMany(this.maps.bindings, pick(keys, keySize), pick(values, BIND_VALUE_SIZE), keySize, BIND_VALUE_SIZE);
    }
    for (const key of stale.sort(byGenerality(this.layout.portBitsOffset))) this.ops.mapDelete(this.maps.bindings, key);
    this.ops.mapUpdate(this.maps.settings, encodeU32Key(0), this.layout.settings(compiled.portBitsMask));
    this.written = desired;
    this.entries = desired.size;
    const unchanged = desired.size - toWrite.length;
    return { added: toWrite.length - changed, changed, removed: stale.length, unchanged };
  }
}
