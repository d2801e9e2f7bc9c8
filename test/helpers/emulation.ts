/**
 * How much slower than real hardware the tests run. Under full CPU emulation (the QEMU/TCG
 * guest of test/vm/run-kernel.sh, which sets BPFREDIR_TEST_SLOWDOWN) everything takes 10–30×
 * longer, so tests that race a clock stretch their limits with `slow(ms)` and tests that move
 * gigabytes move less with `scaled(bytes)`: the same cases, the same assertions on the data.
 */
export const slowdown = Math.max(1, Number(process.env.BPFREDIR_TEST_SLOWDOWN) || 1);
export const emulated = slowdown > 1;

/** A time limit in ms, stretched under emulation. */
export const slow = (ms: number): number => ms * slowdown;

/**
 * A transfer size, shrunk under emulation (never below 64 MiB, so it still spans many budgets).
 * Whole bytes: a writer asked for a fractional count never reaches it and spins.
 */
export const scaled = (bytes: number): number =>
  emulated ? Math.min(bytes, Math.max(64 << 20, Math.floor(bytes / slowdown))) : bytes;
