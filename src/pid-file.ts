/**
 * `pid_file:` (rinetd's `pidlogfile`): this process's id, written once it
 * serves and removed when it stops, so init scripts and logrotate can signal it.
 */
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { errnoCode } from './errors.js';

/** Like rinetd, a pid file that cannot be written is a problem to report, not a reason to stop: the line, or undefined. */
export function writePidFile(path: string): string | undefined {
  try {
    writeFileSync(path, `${process.pid}\n`, { mode: 0o644 });
    return undefined;
  } catch (err) {
    return `pid_file ${path}: cannot write it (${errnoCode(err) ?? err}); check that its directory exists and is writable`;
  }
}

/** Only our own: a file another process wrote since is left alone. */
export function removePidFile(path: string): void {
  try {
    if (readFileSync(path, 'utf8').trim() === String(process.pid)) rmSync(path);
  } catch {
    // Gone already, or never written (start failed): nothing to remove.
  }
}
