/**
 * The one door to the native addon: loads native/build/Release/bpfredir.node
 * once and re-exports its types. Nothing else imports raw.ts or the .node file.
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import type { RawBinding } from './raw.js';

export type * from './raw.js';

/** Compiled to dist/src/native/index.js: the package root is three directories up. */
const addonPath = fileURLToPath(new URL('../../../native/build/Release/bpfredir.node', import.meta.url));

let binding: RawBinding | undefined;

/** The raw addon (loaded on first use, then cached). Throws one line saying how to build it. */
export function loadNative(): RawBinding {
  if (binding) return binding;
  if (!existsSync(addonPath)) {
    throw new Error('bpfredir native addon not built: run `make` (needs libbpf-dev, clang, node-gyp)');
  }
  const require = createRequire(import.meta.url);
  binding = require(addonPath) as RawBinding;
  return binding;
}
