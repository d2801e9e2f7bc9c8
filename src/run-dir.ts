/**
 * The run directory (default /run/bpfredir) holds one lock file and one admin socket per
 * network namespace, named after the namespace's inode. Whoever can write in the directory
 * could take the lock or put a socket of their own where the CLI looks, so it must be a real
 * directory that nobody but its owner (root, or the user bpfredir runs as) can write to.
 */
import { lstatSync, mkdirSync } from 'node:fs';
import { BpfredirError, errnoCode, errorMessage } from './errors.js';

export const DEFAULT_RUN_DIR = '/run/bpfredir';

/** `<runDir>/netns-<inode>.lock` (the lock) or `.sock` (the admin socket). */
export function netnsRunFile(runDir: string, netnsInode: bigint, kind: 'lock' | 'sock'): string {
  return `${runDir}/netns-${netnsInode}.${kind}`;
}

const privileges = (message: string, cause?: unknown) => new BpfredirError('ERR_BPFREDIR_PRIVILEGES', message, { cause });

/** Creates runDir (mode 0700) if missing; refuses one that another user owns or can write to. */
export function checkRunDir(runDir: string): void {
  try {
    mkdirSync(runDir, { recursive: true, mode: 0o700 });
  } catch (err) {
    if (errnoCode(err) === 'EACCES' || errnoCode(err) === 'EPERM') {
      throw privileges(
        `cannot create ${runDir} (${errnoCode(err)}); create it for the user bpfredir runs as (mode 0700; systemd: RuntimeDirectory=bpfredir) or pass --run-dir`,
        err,
      );
    }
    throw new BpfredirError('ERR_BPFREDIR_RUNTIME', `cannot create ${runDir}: ${errorMessage(err)}`, { cause: err });
  }
  const st = lstatSync(runDir);
  const uid = process.geteuid?.() ?? 0;
  if (!st.isDirectory()) throw privileges(`${runDir} is not a directory; remove it or pass --run-dir`);
  if (st.uid !== 0 && st.uid !== uid) {
    throw privileges(`${runDir} belongs to uid ${st.uid}, who could take bpfredir's lock or admin socket; chown it to root or to uid ${uid}`);
  }
  if (st.mode & 0o022) {
    const mode = (st.mode & 0o7777).toString(8).padStart(4, '0');
    throw privileges(`${runDir} is writable by other users (mode ${mode}), who could take bpfredir's lock or admin socket; chmod 0700 ${runDir}`);
  }
}
