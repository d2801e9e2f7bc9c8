/** Locations relative to the repository root (this file runs from dist/bench/). */
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';

const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));
export const BPFREDIR_CLI = join(REPO_ROOT, 'dist/src/cli/main.js');
export const BPFREDIR_ADDON = join(REPO_ROOT, 'native/build/Release/bpfredir.node');
export const BPF_OBJECT = join(REPO_ROOT, 'build/bpf/bpfredir.bpf.o');
export const BENCH_TOOLS = join(REPO_ROOT, 'dist/bench/tools');
export const RESULTS_DIR = join(REPO_ROOT, 'bench/results');
