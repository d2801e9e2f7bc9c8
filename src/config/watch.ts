/**
 * Calls back when a config file's content changes. The directory is watched,
 * not the file: editors replace files by rename, and a Kubernetes ConfigMap
 * volume swaps its `..data` symlink while the path the user gave (a symlink
 * into it) never changes. Events are debounced, and a write of the same
 * content is not a change.
 */
import { createHash } from 'node:crypto';
import { readFileSync, watch, type FSWatcher } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { dirname } from 'node:path';

export const DEFAULT_DEBOUNCE_MS = 500;

const digest = (text: Buffer | string) => createHash('sha256').update(text).digest('hex');

async function contentDigest(file: string): Promise<string | undefined> {
  try {
    return digest(await readFile(file));
  } catch {
    return undefined; // mid-swap, or removed: the next event reads it again
  }
}

export interface ConfigWatch {
  close(): void;
}

/** Content is compared with what the file holds when the watch starts (right after the daemon read it). */
export function watchConfig(file: string, onChange: () => void, debounceMs = DEFAULT_DEBOUNCE_MS): ConfigWatch {
  let last = digest(readFileSync(file));
  let timer: NodeJS.Timeout | undefined;
  const check = async () => {
    const now = await contentDigest(file);
    if (now === undefined || now === last) return;
    last = now;
    onChange();
  };
  const watcher: FSWatcher = watch(dirname(file), { persistent: false }, () => {
    clearTimeout(timer);
    timer = setTimeout(() => void check(), debounceMs);
  });
  watcher.on('error', () => {}); // the directory went away: nothing left to watch
  return {
    close() {
      clearTimeout(timer);
      watcher.close();
    },
  };
}
