import { test } from 'node:test';
import assert from 'node:assert/strict';
import { blockRange, decomposeRange, mergeRanges, subtractRanges, type PortRange } from '../../src/rules/ports.js';
import { seededRandom as random } from '../helpers/random.js';

function checkDecomposition(range: PortRange): void {
  const blocks = decomposeRange(range);
  assert.ok(blocks.length <= 30, `${blocks.length} blocks for ${range.lo}-${range.hi}`);
  let next = range.lo;
  for (const block of blocks) {
    const { lo, hi } = blockRange(block);
    assert.equal(lo % 2 ** (16 - block.portBits), 0, 'block is aligned');
    assert.equal(lo, next, `blocks of ${range.lo}-${range.hi} are contiguous, in order, without overlap`);
    next = hi + 1;
  }
  assert.equal(next, range.hi + 1, `blocks of ${range.lo}-${range.hi} end at the range end`);
}

test('decomposition: known cases', () => {
  assert.deepEqual(decomposeRange({ lo: 80, hi: 80 }), [{ port: 80, portBits: 16 }]);
  assert.deepEqual(decomposeRange({ lo: 0, hi: 65535 }), [{ port: 0, portBits: 0 }]);
  assert.deepEqual(decomposeRange({ lo: 8080, hi: 8090 }), [
    { port: 8080, portBits: 13 },
    { port: 8088, portBits: 15 },
    { port: 8090, portBits: 16 },
  ]);
  assert.deepEqual(decomposeRange({ lo: 1, hi: 65535 }).length, 16);
  assert.deepEqual(decomposeRange({ lo: 1, hi: 65534 }).length, 30);
});

test('decomposition: union of blocks == range, no overlap (random ranges)', () => {
  const next = random(42);
  for (let i = 0; i < 20000; i++) {
    const a = Math.floor(next() * 65536);
    const b = Math.floor(next() * 65536);
    checkDecomposition({ lo: Math.min(a, b), hi: Math.max(a, b) });
  }
  for (let lo = 0; lo < 300; lo++) for (let hi = lo; hi < 300; hi++) checkDecomposition({ lo, hi });
  for (let lo = 65300; lo < 65536; lo++) checkDecomposition({ lo, hi: 65535 });
});

test('range arithmetic', () => {
  assert.deepEqual(subtractRanges({ lo: 10, hi: 20 }, [{ lo: 12, hi: 13 }, { lo: 18, hi: 30 }]), [
    { lo: 10, hi: 11 },
    { lo: 14, hi: 17 },
  ]);
  assert.deepEqual(subtractRanges({ lo: 10, hi: 20 }, [{ lo: 0, hi: 100 }]), []);
  assert.deepEqual(subtractRanges({ lo: 10, hi: 20 }, []), [{ lo: 10, hi: 20 }]);
  assert.deepEqual(mergeRanges([{ lo: 4, hi: 6 }, { lo: 1, hi: 2 }, { lo: 3, hi: 3 }, { lo: 5, hi: 5 }, { lo: 9, hi: 9 }]), [
    { lo: 1, hi: 6 },
    { lo: 9, hi: 9 },
  ]);
});
