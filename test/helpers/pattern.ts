/**
 * Deterministic pseudo-random byte stream shared by the traffic scripts: byte p
 * of the stream is pattern[p % PERIOD]. Sender and receiver hash what they
 * sent/received; equal sha256 means every byte arrived once and in order.
 * The period (16 MiB + 13, odd) is far larger than any socket buffer, so lost,
 * duplicated or reordered chunks change the hash.
 */
import { createHash, type Hash } from 'node:crypto';

const PERIOD = 16 * 1024 * 1024 + 13;
let pattern: Buffer | undefined;

function patternBytes(): Buffer {
  if (pattern) return pattern;
  pattern = Buffer.allocUnsafe(PERIOD + 3);
  let x = 0x9e3779b9; // xorshift32: fast, and the same on every run
  for (let i = 0; i < PERIOD; i += 4) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    pattern.writeInt32LE(x | 0, i);
  }
  return pattern;
}

/** A fresh buffer with stream bytes [offset, offset + length). */
export function streamChunk(offset: number, length: number): Buffer {
  const source = patternBytes();
  const chunk = Buffer.allocUnsafe(length);
  let filled = 0;
  while (filled < length) {
    const start = (offset + filled) % PERIOD;
    filled += source.copy(chunk, filled, start, Math.min(PERIOD, start + length - filled));
  }
  return chunk;
}

/** sha256 over a stream of chunks, counting bytes. */
export class StreamHash {
  bytes = 0;
  private readonly hash: Hash = createHash('sha256');
  private hex: string | undefined;

  update(chunk: Buffer): void {
    this.bytes += chunk.length;
    this.hash.update(chunk);
  }

  /** Final hex digest (may be asked for again). */
  digest(): string {
    this.hex ??= this.hash.digest('hex');
    return this.hex;
  }
}

/** Writes `total` stream bytes with backpressure, hashing them into `sent` as they go. */
export async function writeStream(
  socket: { write(chunk: Buffer): boolean; once(event: 'drain', listener: () => void): unknown },
  total: number,
  sent: StreamHash,
): Promise<void> {
  const chunkSize = 1024 * 1024;
  while (sent.bytes < total) {
    const chunk = streamChunk(sent.bytes, Math.min(chunkSize, total - sent.bytes));
    sent.update(chunk);
    if (!socket.write(chunk)) await new Promise<void>((resolve) => socket.once('drain', resolve));
  }
}
