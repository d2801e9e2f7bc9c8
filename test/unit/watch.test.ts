/** watchConfig: editors' rename-over, a ConfigMap volume's ..data swap, and same-content writes. */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { watchConfig } from '../../src/config/watch.js';

const DEBOUNCE_MS = 50;

/** Counts callbacks; `settle` waits past the debounce for any that are coming. */
function counting(file: string) {
  let changes = 0;
  const watch = watchConfig(file, () => changes++, DEBOUNCE_MS);
  return { watch, count: () => changes, settle: () => new Promise((r) => setTimeout(r, DEBOUNCE_MS * 6)) };
}

test('a rename over the file is a change; the same content written again is not', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'bpfredir-watch-'));
  try {
    const file = join(dir, 'config.yaml');
    writeFileSync(file, 'rules: []\n');
    const w = counting(file);
    writeFileSync(file, 'rules: []\n');
    await w.settle();
    assert.equal(w.count(), 0, 'same content');
    writeFileSync(join(dir, 'new'), 'rules: [x]\n');
    renameSync(join(dir, 'new'), file);
    await w.settle();
    assert.equal(w.count(), 1);
    w.watch.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("a Kubernetes ConfigMap update (the ..data symlink swapped; the file's own path never changes) is a change", async () => {
  const dir = mkdtempSync(join(tmpdir(), 'bpfredir-watch-'));
  try {
    // The kubelet's layout: config.yaml -> ..data/config.yaml, ..data -> ..<timestamp>/
    const version = (name: string, text: string) => {
      mkdirSync(join(dir, name));
      writeFileSync(join(dir, name, 'config.yaml'), text);
    };
    version('..2026_12_01_10_00_00.1', 'rules: [a]\n');
    symlinkSync('..2026_12_01_10_00_00.1', join(dir, '..data'));
    symlinkSync('..data/config.yaml', join(dir, 'config.yaml'));
    const w = counting(join(dir, 'config.yaml'));
    version('..2026_12_01_10_05_00.2', 'rules: [b]\n');
    symlinkSync('..2026_12_01_10_05_00.2', join(dir, '..data_tmp'));
    renameSync(join(dir, '..data_tmp'), join(dir, '..data'));
    await w.settle();
    assert.equal(w.count(), 1);
    w.watch.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
