/**
 * One place that remembers everything the benchmark created (processes, namespaces, temp dirs)
 * and removes it — on normal exit, on an exception and on SIGINT/SIGTERM.
 * Cleanup actions are synchronous so they also run from a signal handler or 'exit'.
 */
type Action = { label: string; run: () => void };

const actions: Action[] = [];
let installed = false;

/** Register an undo action; returns a function that runs it now (once) and forgets it. */
export function onCleanup(label: string, run: () => void): () => void {
  installSignalHandlers();
  const action = { label, run };
  actions.push(action);
  return () => {
    const i = actions.indexOf(action);
    if (i < 0) return;
    actions.splice(i, 1);
    runOne(action);
  };
}

/** Undo everything in reverse order of creation (processes before their namespace). */
export function cleanupAll(): void {
  while (actions.length > 0) runOne(actions.pop()!);
}

function runOne(action: Action): void {
  try {
    action.run();
  } catch (err) {
    process.stderr.write(`bench: cleanup of ${action.label} failed: ${(err as Error).message}\n`);
  }
}

function installSignalHandlers(): void {
  if (installed) return;
  installed = true;
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.on(signal, () => {
      process.stderr.write(`\nbench: ${signal}, removing namespaces and processes\n`);
      cleanupAll();
      process.exit(130);
    });
  }
  process.on('exit', cleanupAll);
}
