/**
 * The one error type bpfredir throws on purpose. `code` is stable (scripts and
 * tests match on it); the message is one line per problem saying what is
 * wrong and how to fix it.
 */
export type ErrorCode =
  | 'ERR_BPFREDIR_CONFIG' // the config (file or command line) is wrong
  | 'ERR_BPFREDIR_USAGE' // the command line is wrong
  | 'ERR_BPFREDIR_PRIVILEGES' // needs root / CAP_BPF + CAP_NET_ADMIN
  | 'ERR_BPFREDIR_KERNEL' // the kernel lacks a feature or refused the BPF object
  | 'ERR_BPFREDIR_PORT_IN_USE' // a listen address is taken
  | 'ERR_BPFREDIR_ALREADY_RUNNING' // another bpfredir owns this network namespace
  | 'ERR_BPFREDIR_NOT_RUNNING' // no bpfredir answers on this network namespace's admin socket
  | 'ERR_BPFREDIR_RUNTIME'; // anything else that failed while running

export class BpfredirError extends Error {
  readonly code: ErrorCode;
  /** Every problem found, one line each; `message` joins them. */
  readonly problems: readonly string[];

  constructor(code: ErrorCode, problems: string | readonly string[], options?: { cause?: unknown }) {
    const list = typeof problems === 'string' ? [problems] : problems;
    super(list.join('\n'), options);
    this.name = 'BpfredirError';
    this.code = code;
    this.problems = list;
  }
}

export function isBpfredirError(err: unknown): err is BpfredirError {
  return err instanceof BpfredirError;
}

/** errno name of a Node-style system error (what the addon throws), if any. */
export function errnoCode(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
}

export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
