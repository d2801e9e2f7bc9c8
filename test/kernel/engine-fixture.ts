/**
 * An engine with one listener for the engine tests, on either data path:
 *
 *   const f = await startEngine('splice', { host: '127.0.0.1', port: server.port });
 *   ... clients connect to 127.0.0.1:f.port ...
 *   const closed = await f.waitFor((e) => e.type === 'closed');
 *   await f.close();            // engine, then the BPF object
 *
 * For 'splice' it loads build/bpf/bpfredir.bpf.o and attaches the verdict.
 */
import { fileURLToPath } from 'node:url';
import {
  loadNative,
  type EngineEvent,
  type ListenerOptions,
  type RawBpfObject,
  type RawEngine,
  type SocketAddress,
} from '../../src/native/index.js';

const bpfObjectPath = fileURLToPath(new URL('../../../build/bpf/bpfredir.bpf.o', import.meta.url));

export interface EngineFixture {
  engine: RawEngine;
  port: number;
  events: EngineEvent[];
  /** conns map fd (splice only), for reading the verdict's counters. */
  connsFd?: number;
  /** Resolves with the first event (seen or future) that matches. */
  waitFor(match: (event: EngineEvent) => boolean, timeoutMs?: number): Promise<EngineEvent>;
  close(): Promise<void>;
}

export async function startEngine(
  datapath: 'splice' | 'userspace',
  target: SocketAddress,
  overrides: Partial<ListenerOptions> = {},
  { connectionEvents = true, threads = 1 }: { connectionEvents?: boolean; threads?: number } = {},
): Promise<EngineFixture> {
  const native = loadNative();
  let object: RawBpfObject | undefined;
  let maps;
  if (datapath === 'splice') {
    object = await native.loadObject(bpfObjectPath);
    object.attachVerdict('splice_verdict', 'splice_active');
    maps = {
      conns: object.mapFd('conns'),
      spliceHold: object.mapFd('splice_hold'),
      spliceActive: object.mapFd('splice_active'),
      events: object.mapFd('events'),
      relayed: object.mapFd('relayed'),
    };
  }
  const events: EngineEvent[] = [];
  const waiters = new Set<() => void>();
  const engine = new native.Engine({
    maps,
    connectionEvents,
    threads,
    onEvents: (batch) => {
      events.push(...batch);
      for (const wake of waiters) wake();
    },
  });
  const handle = engine.addListener({
    ruleId: 1,
    bind: { host: '127.0.0.1', port: 0 },
    dualStack: false,
    backlog: 1024,
    targets: [target],
    connectTimeoutMs: 2000,
    idleTimeoutMs: 0,
    datapath,
    budgetBytes: 0,
    sndbufBytes: 0,
    ...overrides,
  });

  return {
    engine,
    port: handle.port,
    events,
    connsFd: maps?.conns,
    waitFor(match, timeoutMs = 10_000) {
      return new Promise((resolve, reject) => {
        const check = () => {
          const found = events.find(match);
          if (!found) return;
          clearTimeout(timer);
          waiters.delete(check);
          resolve(found);
        };
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(new Error(`no matching engine event within ${timeoutMs} ms; got ${JSON.stringify(events.slice(-5))}`));
        }, timeoutMs);
        waiters.add(check);
        check();
      });
    },
    async close() {
      await engine.close();
      object?.close();
    },
  };
}
