/**
 * src/abi.ts against what the compiler made of bpf/bpfredir.h: the BTF of the
 * built object (bpftool btf dump), so a changed header fails here, not in the kernel.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { ABI_VERSION, LAYOUTS, MAPS, PROGRAMS } from '../../src/abi.js';
import { DEFAULT_OBJECT_PATH } from '../../src/daemon.js';

interface BtfType {
  id: number;
  kind: string;
  name?: string;
  size?: number;
  members?: { name: string; bits_offset: number }[];
  vars?: { type_id: number }[];
}

const btf: BtfType[] = (JSON.parse(execFileSync('bpftool', ['btf', 'dump', 'file', DEFAULT_OBJECT_PATH, 'format', 'raw', '-j'], { encoding: 'utf8' })) as { types: BtfType[] }).types;
const byId = new Map(btf.map((t) => [t.id, t]));
const named = (kind: string, name: string) => btf.find((t) => t.kind === kind && t.name === name);

for (const [struct, layout] of Object.entries(LAYOUTS)) {
  test(`struct ${struct}: the same size and members at the same offsets`, () => {
    const type = named('STRUCT', struct);
    assert.ok(type, `struct ${struct} is not in the object's BTF`);
    assert.equal(type.size, layout.size);
    const offsets = Object.fromEntries(type.members!.map((m) => [m.name, m.bits_offset / 8]));
    assert.deepEqual(offsets, layout.offsets);
  });
}

test('every map and program user space names is in the object, and every map of the object is named', () => {
  const maps = named('DATASEC', '.maps')!.vars!.map((v) => byId.get(v.type_id)!.name).sort();
  assert.deepEqual(maps, Object.values(MAPS).sort());
  for (const program of Object.values(PROGRAMS)) assert.ok(named('FUNC', program), `program ${program}`);
});

test('the ABI version is the header’s', () => {
  const header = readFileSync(fileURLToPath(new URL('../../../bpf/bpfredir.h', import.meta.url)), 'utf8');
  assert.equal(Number(/#define BPFREDIR_ABI_VERSION (\d+)/.exec(header)?.[1]), ABI_VERSION);
});
