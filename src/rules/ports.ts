/**
 * Port ranges and their decomposition into aligned power-of-two blocks, the
 * unit the kernel's bindings trie matches on (port_bits leading bits
 * significant: 16 = one port, 0 = every port).
 */

export interface PortRange {
  lo: number; // inclusive, 0..65535
  hi: number; // inclusive
}

export interface PortBlock {
  port: number; // first port of the block, host order, aligned to the block size
  portBits: number; // 0..16
}

export const ANY_PORT: PortRange = { lo: 0, hi: 65535 };

export function rangeWidth(r: PortRange): number {
  return r.hi - r.lo + 1;
}

export function blockRange(b: PortBlock): PortRange {
  const size = 2 ** (16 - b.portBits);
  return { lo: b.port, hi: b.port + size - 1 };
}

/** The fewest aligned blocks whose union is exactly the range (at most 30). */
export function decomposeRange(range: PortRange): PortBlock[] {
  const blocks: PortBlock[] = [];
  let lo = range.lo;
  while (lo <= range.hi) {
    // Grow the block while lo stays aligned to it and it stays inside the range.
    let sizeLog = 0;
    while (sizeLog < 16 && lo % 2 ** (sizeLog + 1) === 0 && lo + 2 ** (sizeLog + 1) - 1 <= range.hi) {
      sizeLog++;
    }
    blocks.push({ port: lo, portBits: 16 - sizeLog });
    lo += 2 ** sizeLog;
  }
  return blocks;
}

/** Parts of `range` not covered by any of `taken` (which must be sorted and disjoint). */
export function subtractRanges(range: PortRange, taken: readonly PortRange[]): PortRange[] {
  const left: PortRange[] = [];
  let lo = range.lo;
  for (const t of taken) {
    if (t.hi < lo) continue;
    if (t.lo > range.hi) break;
    if (t.lo > lo) left.push({ lo, hi: t.lo - 1 });
    lo = Math.max(lo, t.hi + 1);
  }
  if (lo <= range.hi) left.push({ lo, hi: range.hi });
  return left;
}

/** Sorted, disjoint union; touching ranges are joined. */
export function mergeRanges(ranges: readonly PortRange[]): PortRange[] {
  const sorted = [...ranges].sort((a, b) => a.lo - b.lo);
  const out: PortRange[] = [];
  for (const r of sorted) {
    const last = out[out.length - 1];
    if (last && r.lo <= last.hi + 1) last.hi = Math.max(last.hi, r.hi);
    else out.push({ ...r });
  }
  return out;
}

export function formatRange(r: PortRange): string {
  if (r.lo === 0 && r.hi === 65535) return 'any';
  return r.lo === r.hi ? String(r.lo) : `${r.lo}-${r.hi}`;
}
