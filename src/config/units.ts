/**
 * Sizes and durations as people write them in configs ("4MiB", "1m30s").
 * Each parser returns the number or a reason string; callers turn the reason
 * into a located error.
 */

const SIZE_UNITS: Record<string, number> = {
  '': 1,
  b: 1,
  k: 1e3,
  kb: 1e3,
  m: 1e6,
  mb: 1e6,
  g: 1e9,
  gb: 1e9,
  kib: 2 ** 10,
  mib: 2 ** 20,
  gib: 2 ** 30,
};

export type Parsed<T> = { ok: true; value: T } | { ok: false; reason: string };

/** Bytes from a non-negative integer or "<number><unit>" (B, k, M, G, KiB, MiB, GiB). */
export function parseSize(input: unknown): Parsed<number> {
  if (typeof input === 'number') {
    return Number.isSafeInteger(input) && input >= 0
      ? { ok: true, value: input }
      : { ok: false, reason: `${input} is not a whole number of bytes` };
  }
  const text = String(input).trim();
  const match = /^(\d+(?:\.\d+)?)\s*([a-zA-Z]*)$/.exec(text);
  const unit = match ? SIZE_UNITS[match[2]!.toLowerCase()] : undefined;
  if (!match || unit === undefined) {
    return { ok: false, reason: `'${text}' is not a size` };
  }
  const bytes = Number(match[1]) * unit;
  if (!Number.isSafeInteger(bytes)) {
    return { ok: false, reason: `'${text}' is not a whole number of bytes` };
  }
  return { ok: true, value: bytes };
}

const DURATION_UNITS_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** Milliseconds from "500ms", "5s", "10m", "1h", "1m30s" or the number 0. */
export function parseDuration(input: unknown): Parsed<number> {
  if (input === 0 || input === '0') return { ok: true, value: 0 };
  if (typeof input === 'number') {
    return { ok: false, reason: `${input} has no unit` };
  }
  const text = String(input).trim();
  const part = /(\d+(?:\.\d+)?)(ms|s|m|h)/gy;
  let total = 0;
  let consumed = 0;
  for (let m = part.exec(text); m; m = part.exec(text)) {
    total += Number(m[1]) * DURATION_UNITS_MS[m[2]!]!;
    consumed = part.lastIndex;
  }
  if (text === '' || consumed !== text.length) {
    return { ok: false, reason: `'${text}' is not a duration` };
  }
  return { ok: true, value: Math.round(total) };
}
