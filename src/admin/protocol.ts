/**
 * The admin protocol: newline-delimited JSON over a unix stream socket. The client writes
 * {"cmd":"status"|"rules"|"conns"|"reload"} and a newline; the daemon answers each request,
 * in order, with one line: {"ok":true, <payload>} or {"ok":false,"error":"...","code"?:...}.
 * The payloads are in ./types.ts.
 */
import type { Readable } from 'node:stream';
import { ADMIN_COMMANDS, type AdminCommand, type AdminFailure, type AdminRequest, type AdminResponse } from './types.js';

/** Requests are a few bytes; anything this long is not a client of ours. */
export const MAX_REQUEST_BYTES = 4096;

export function encodeLine(message: AdminRequest | AdminResponse): string {
  return `${JSON.stringify(message)}\n`;
}

function isCommand(value: unknown): value is AdminCommand {
  return typeof value === 'string' && (ADMIN_COMMANDS as readonly string[]).includes(value);
}

/** A request line, or the failure to answer it with. */
export function parseRequest(line: string): AdminRequest | AdminFailure {
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch {
    return { ok: false, error: `a request is one JSON object per line, e.g. {"cmd":"status"}; got ${JSON.stringify(line.slice(0, 80))}` };
  }
  const cmd = (value as { cmd?: unknown } | null)?.cmd;
  if (!isCommand(cmd)) return { ok: false, error: `unknown command ${JSON.stringify(cmd ?? null)}; one of ${ADMIN_COMMANDS.join(', ')}` };
  return { cmd };
}

/** A response line. Throws when it is not one: the other end is not a bpfredir admin socket. */
export function parseResponse<C extends AdminCommand>(line: string): AdminResponse<C> {
  const value = JSON.parse(line) as unknown;
  const ok = (value as { ok?: unknown } | null)?.ok;
  if (ok === true) return value as AdminResponse<C>;
  if (ok === false && typeof (value as { error?: unknown }).error === 'string') return value as AdminFailure;
  throw new Error(`not an admin response: ${line.slice(0, 80)}`);
}

/**
 * Calls onLine for each complete line the stream delivers. A partial line longer than
 * maxBytes destroys the stream with an error instead of growing without bound.
 */
export function readLines(stream: Readable, maxBytes: number, onLine: (line: string) => void): void {
  let pending = '';
  stream.setEncoding('utf8');
  stream.on('data', (chunk: string) => {
    pending += chunk;
    let end: number;
    while ((end = pending.indexOf('\n')) >= 0) {
      const line = pending.slice(0, end);
      pending = pending.slice(end + 1);
      if (line.trim()) onLine(line);
    }
    if (pending.length > maxBytes) stream.destroy(new Error(`line longer than ${maxBytes} bytes`));
  });
}
