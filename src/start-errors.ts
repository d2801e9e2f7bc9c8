/**
 * What the addon throws while a daemon starts, turned into BpfredirErrors:
 * one line with the rule or step, what failed, and how to fix it.
 */
import type { Rule } from './config/types.js';
import { BpfredirError, errnoCode, errorMessage } from './errors.js';
import type { RawBinding, RawBpfObject } from './native/index.js';

/** Turn what the addon throws into one line that says how to fix it. */
export function explainStartFailure(err: unknown, step: string): BpfredirError {
  if (err instanceof BpfredirError) return err;
  const code = errnoCode(err);
  const detail = `${step}: ${errorMessage(err).split('\n')[0]}`;
  if (code === 'EPERM' || code === 'EACCES') {
    return new BpfredirError('ERR_BPFREDIR_PRIVILEGES', `${detail}; run as root or with CAP_BPF, CAP_NET_ADMIN and CAP_PERFMON`, { cause: err });
  }
  return new BpfredirError('ERR_BPFREDIR_RUNTIME', detail, { cause: err });
}

export function explainListenFailure(err: unknown, rule: Rule, address: string): BpfredirError {
  const code = errnoCode(err);
  const where = `${rule.source}: rule '${rule.name}': ${address}`;
  if (code === 'EADDRINUSE') {
    return new BpfredirError('ERR_BPFREDIR_PORT_IN_USE', `${where} is already in use; stop what listens there (ss -ltnp) or pick another port`, { cause: err });
  }
  if (code === 'EACCES') {
    return new BpfredirError('ERR_BPFREDIR_PRIVILEGES', `${where}: ports below 1024 need root or CAP_NET_BIND_SERVICE`, { cause: err });
  }
  if (code === 'EADDRNOTAVAIL') {
    return new BpfredirError('ERR_BPFREDIR_CONFIG', `${where} is not an address of this host; use one of its addresses, or destination: to steer`, { cause: err });
  }
  if (code === 'EMFILE' || code === 'ENFILE') {
    return new BpfredirError('ERR_BPFREDIR_RUNTIME', `${where}: out of file descriptors (every rule has its own listening socket); raise ulimit -n or merge rules that share a target`, { cause: err });
  }
  return explainStartFailure(err, `rule '${rule.name}': listen on ${address}`);
}

/** Load the BPF object, explaining a missing file, privileges or a verifier refusal. */
export async function loadObject(native: RawBinding, path: string): Promise<RawBpfObject> {
  try {
    return await native.loadObject(path);
  } catch (err) {
    const code = errnoCode(err);
    if (code === 'ENOENT') throw new BpfredirError('ERR_BPFREDIR_RUNTIME', `BPF object ${path} not found; run make`, { cause: err });
    if (code === 'EPERM' || code === 'EACCES') throw explainStartFailure(err, `loading ${path}`);
    throw new BpfredirError('ERR_BPFREDIR_KERNEL', `the kernel refused ${path}: ${errorMessage(err).split('\n')[0]}`, { cause: err });
  }
}
