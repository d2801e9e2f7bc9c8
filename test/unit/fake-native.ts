/** A RawBinding double that records every call, for testing the daemon's order of operations without privileges. */
import { fstatSync } from 'node:fs';
import assert from 'node:assert/strict';
import type { EngineOptions, EngineStats, FeatureProbe, ListenerOptions, RawBinding, RawBpfObject, RawEngine } from '../../src/native/index.js';

export interface FakeOptions {
  probe?: FeatureProbe;
  /** errno code thrown by addListener for this port. */
  listenErrors?: Map<number, string>;
}

const sysError = (code: string, syscall: string) => Object.assign(new Error(`${syscall}: ${code}`), { code, syscall });

/** flock semantics for the fake: one holder per file (by inode) among open fds. */
const heldInodes = new Map<number, number>();
function tryLockFake(fd: number): boolean {
  const inode = fstatSync(fd).ino;
  const holder = heldInodes.get(inode);
  if (holder !== undefined && holder !== fd) {
    try {
      if (fstatSync(holder).ino === inode) return false;
    } catch {
      // the holder's fd was closed: the lock went with it
    }
  }
  heldInodes.set(inode, fd);
  return true;
}

/** An engine that has done nothing: every counter, whatever the engine counts, reads 0. */
function idleEngineStats(): EngineStats {
  const known: Partial<EngineStats> = { acceptedByThread: [0] };
  return new Proxy(known, { get: (target, key) => (key in target ? target[key as keyof EngineStats] : 0) }) as EngineStats;
}

export function fakeNative(options: FakeOptions = {}) {
  const calls: string[] = [];
  const maps = new Map<number, Map<string, Buffer>>();
  const mapNames = new Map<string, number>();
  const mapFd = (name: string) => {
    let fd = mapNames.get(name);
    if (fd === undefined) {
      fd = 100 + mapNames.size;
      mapNames.set(name, fd);
      maps.set(fd, new Map());
    }
    return fd;
  };
  const nameOf = (fd: number) => [...mapNames].find(([, f]) => f === fd)?.[0] ?? `fd${fd}`;
  let nextListener = 1;

  const object: RawBpfObject = {
    mapFd,
    attachSkLookup: (program) => (calls.push(`attachSkLookup ${program}`), 7),
    attachVerdict: (program, map) => void calls.push(`attachVerdict ${program} ${map}`),
    attachTcIngress: (program, ifindex) => (calls.push(`attachTcIngress ${program} ${ifindex}`), 8 + ifindex),
    detach: (link) => void calls.push(`detach ${link}`),
    close: () => void calls.push('object.close'),
  };

  class FakeEngine implements RawEngine {
    constructor(opts: EngineOptions) {
      calls.push(`Engine ${opts.maps ? 'splice' : 'userspace'}`);
    }
    addListener(opts: ListenerOptions) {
      calls.push(`addListener rule ${opts.ruleId} ${opts.bind.host}:${opts.bind.port} ${opts.datapath}`);
      const error = options.listenErrors?.get(opts.bind.port);
      if (error) throw sysError(error, 'bind');
      const id = nextListener++;
      return { id, fd: 50 + id, port: opts.bind.port || 40000 + id };
    }
    updateListener(id: number, opts: Partial<Pick<ListenerOptions, 'targets'>>) {
      calls.push(`updateListener ${id} ${opts.targets?.map((t) => `${t.host}:${t.port}`).join(',')}`);
    }
    targetHealth() {
      return [];
    }
    setTargetDown() {
      // No targets to judge in the fake.
    }
    watchDenials() {
      // Reading a ring buffer changes nothing the tests order.
    }
    useAccessLists() {
      // Reading the lists changes nothing either.
    }
    removeListener(id: number) {
      calls.push(`removeListener ${id}`);
    }
    stats(): EngineStats {
      return idleEngineStats();
    }
    ruleStats() {
      return [];
    }
    async connections() {
      return [];
    }
    async close() {
      calls.push('engine.close');
    }
  }

  const native: RawBinding = {
    loadObject: async (path) => (calls.push(`loadObject ${path.split('/').pop()}`), object),
    probeFeatures: () => options.probe ?? { skLookup: true, sockmapVerdict: true, problems: [] },
    tryLock: (fd) => tryLockFake(fd),
    netnsInode: () => 4026531840n,
    mapUpdate: (fd, key, value) => void (calls.push(`mapUpdate ${nameOf(fd)}`), maps.get(fd)!.set(key.toString('hex'), value)),
    mapDelete: (fd, key) => (calls.push(`mapDelete ${nameOf(fd)}`), maps.get(fd)!.delete(key.toString('hex'))),
    mapLookup: (fd, key) => maps.get(fd)!.get(key.toString('hex')) ?? null,
    mapLookupPercpu: () => null,
    mapKeys: (fd) => [...maps.get(fd)!.keys()].map((k) => Buffer.from(k, 'hex')),
    mapInfo: (fd) => ({ name: nameOf(fd), keySize: 4, valueSize: 4, maxEntries: 1024 }),
    mapUpdateMany: (fd, keys, _values, keySize) => void calls.push(`mapUpdateMany ${nameOf(fd)} ${keys.length / keySize}`),
    sockmapUpdate: (fd, key, socketFd) => void calls.push(`sockmapUpdate ${nameOf(fd)} ${key.readUInt32LE(0)} fd ${socketFd}`),
    openFdCount: () => 0,
    sendUnixDatagram: () => true,
    listPolicyRules: () => [],
    addPolicyRule: (family, rule) => void calls.push(`addPolicyRule ${family} ${rule.priority}`),
    deletePolicyRule: (family, rule) => void calls.push(`deletePolicyRule ${family} ${rule.priority}`),
    listTableRoutes: () => [],
    addLocalDefaultRoute: (family, table) => void calls.push(`addLocalDefaultRoute ${family} ${table}`),
    deleteLocalDefaultRoute: (family, table) => void calls.push(`deleteLocalDefaultRoute ${family} ${table}`),
    interfaceIndex: (name) => (name.startsWith('eth') ? 10 + Number(name.slice(3)) : assert.fail(`no interface ${name}`)),
    pidfdGetfd: () => 99,
    closeFd: () => undefined,
    setTransparent: () => undefined,
    Engine: FakeEngine,
  };
  return { native, calls };
}
