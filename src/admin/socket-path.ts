/** Where the admin socket of a network namespace is: <runDir>/netns-<inode>.sock. */
import { statSync } from 'node:fs';
import { netnsRunFile } from '../run-dir.js';

/** The inode of this process's network namespace, as the daemon names its files with. */
export function currentNetnsInode(): bigint {
  return statSync('/proc/self/ns/net', { bigint: true }).ino;
}

export function adminSocketPath(runDir: string, netnsInode: bigint = currentNetnsInode()): string {
  return netnsRunFile(runDir, netnsInode, 'sock');
}
