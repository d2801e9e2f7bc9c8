/** A model of the kernel's best_binding() (bpf/bpfredir.bpf.c) to check compiled bindings against. */
import type { Binding, CompiledBindings } from '../../src/rules/compile.js';
import { samePrefixBits } from '../../src/rules/ip.js';

export function modelLookup(compiled: CompiledBindings, addr: Buffer, port: number, protocol = 6): Binding | undefined {
  let best: Binding | undefined;
  for (let bits = 16; bits >= 0; bits--) {
    if (!(compiled.portBitsMask & (1 << bits))) continue;
    const masked = bits ? port & ((0xffff << (16 - bits)) & 0xffff) : 0;
    let longest: Binding | undefined;
    for (const b of compiled.bindings) {
      if (b.protocol !== protocol || b.portBits !== bits || b.port !== masked) continue;
      if (!samePrefixBits(b.prefix.addr, addr, b.prefix.len)) continue;
      if (!longest || b.prefix.len > longest.prefix.len) longest = b;
    }
    if (longest && (!best || longest.prefix.len > best.prefix.len)) best = longest;
  }
  return best;
}
