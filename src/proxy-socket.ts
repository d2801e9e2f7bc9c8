/**
 * Finds the process and file descriptor of another program's TCP listening
 * socket by its address, from /proc: the socket's inode in /proc/net/tcp{,6}
 * (this network namespace's sockets), then the fd that links to it in some
 * /proc/PID/fd. bpfredir takes a duplicate of it (pidfd_getfd) for sk_lookup.
 */
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { isIPv4 } from 'node:net';
import type { Endpoint } from './config/types.js';
import { addressBytes } from './rules/ip.js';

const TCP_LISTEN = '0A';

export interface SocketOwner {
  pid: number;
  fd: number;
  /** The program's name (/proc/PID/comm), for logs. */
  command: string;
}

/** /proc/net/tcp's address column: the address's bytes as host-order 32-bit words, in hex. */
function procAddress(host: string): string {
  const bytes = isIPv4(host) ? addressBytes(host).subarray(12) : addressBytes(host);
  const words: string[] = [];
  for (let i = 0; i < bytes.length; i += 4) words.push(bytes.readUInt32LE(i).toString(16).toUpperCase().padStart(8, '0'));
  return words.join('');
}

/** Inodes of the listening sockets bound to endpoint (exactly that address, or the wildcard of its family). */
export function listeningInodes(endpoint: Endpoint, procNet = '/proc/net'): string[] {
  const file = isIPv4(endpoint.host) ? 'tcp' : 'tcp6';
  const wanted = `${procAddress(endpoint.host)}:${endpoint.port.toString(16).toUpperCase().padStart(4, '0')}`;
  const lines = readFileSync(`${procNet}/${file}`, 'utf8').split('\n').slice(1);
  return lines
    .map((line) => line.trim().split(/\s+/))
    .filter((cols) => cols[1] === wanted && cols[3] === TCP_LISTEN)
    .map((cols) => cols[9]!);
}

/** The first process holding one of these socket inodes, or undefined. */
export function socketOwner(inodes: readonly string[], proc = '/proc'): SocketOwner | undefined {
  const links = new Set(inodes.map((inode) => `socket:[${inode}]`));
  for (const entry of readdirSync(proc)) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    let fds: string[];
    try {
      fds = readdirSync(`${proc}/${entry}/fd`);
    } catch {
      continue; // gone, or not ours to read
    }
    for (const fd of fds) {
      let target: string;
      try {
        target = readlinkSync(`${proc}/${entry}/fd/${fd}`);
      } catch {
        continue;
      }
      if (!links.has(target)) continue;
      let command = '?';
      try {
        command = readFileSync(`${proc}/${entry}/comm`, 'utf8').trim();
      } catch {
        // named '?' in the logs
      }
      return { pid: Number(entry), fd: Number(fd), command };
    }
  }
  return undefined;
}
