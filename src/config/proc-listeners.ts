/**
 * TCP sockets listening in this network namespace, from /proc/net/tcp and
 * tcp6, so `check` can warn when a steering rule would take their ports.
 */
import { readFileSync } from 'node:fs';
import { formatAddress } from '../rules/ip.js';

export interface TcpListener {
  addr: Buffer; // 16 bytes, IPv4 mapped
  port: number;
  family: 4 | 6;
  text: string; // "0.0.0.0:22", "[::]:22"
}

const TCP_LISTEN = '0A';

/** /proc prints each 32-bit word of the address in host (little-endian) order. */
function procAddress(hex: string, family: 4 | 6): Buffer {
  const words = Buffer.from(hex, 'hex');
  for (let i = 0; i < words.length; i += 4) words.subarray(i, i + 4).reverse();
  return family === 4 ? Buffer.concat([Buffer.from([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff]), words]) : words;
}

export function parseProcNetTcp(text: string, family: 4 | 6): TcpListener[] {
  const listeners: TcpListener[] = [];
  for (const line of text.split('\n').slice(1)) {
    const fields = line.trim().split(/\s+/);
    if (fields.length < 4 || fields[3] !== TCP_LISTEN) continue;
    const [addrHex, portHex] = fields[1]!.split(':') as [string, string];
    const addr = procAddress(addrHex, family);
    const port = parseInt(portHex, 16);
    const host = family === 6 && formatAddress(addr).includes(':') ? `[${formatAddress(addr)}]` : formatAddress(addr);
    listeners.push({ addr, port, family, text: `${host}:${port}` });
  }
  return listeners;
}

export function readTcpListeners(procNet = '/proc/net'): TcpListener[] {
  const read = (name: string, family: 4 | 6) => {
    try {
      return parseProcNetTcp(readFileSync(`${procNet}/${name}`, 'utf8'), family);
    } catch {
      return []; // no IPv6 in this kernel, or no /proc: nothing to warn about
    }
  };
  return [...read('tcp', 4), ...read('tcp6', 6)];
}
