/**
 * Writes deploy/kubernetes/base/ from manifests.ts: one YAML file per object and the
 * kustomization that lists them and makes the ConfigMap from config.yaml (the rules, the one
 * file of the base a user edits; not generated).
 *   node dist/deploy/kubernetes/render.js [--check]    # --check: exit 1 if a file differs
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { APP, NAMESPACE, RESOURCES } from './manifests.js';

export const BASE = fileURLToPath(new URL('../../../deploy/kubernetes/base/', import.meta.url));
const HEADER = '# Generated from deploy/kubernetes/manifests.ts by `make manifests`; edit that file, not this one.\n';

/** File name → content, as the base directory must hold them. */
export function renderBase(): Map<string, string> {
  const files = new Map<string, string>();
  for (const [file, object] of Object.entries(RESOURCES)) files.set(file, HEADER + stringify(object.toJSON()));
  const kustomization = {
    apiVersion: 'kustomize.config.k8s.io/v1beta1',
    kind: 'Kustomization',
    namespace: NAMESPACE,
    resources: Object.keys(RESOURCES),
    // A fixed name: the kubelet then updates the mounted file in place and bpfredir reloads it
    // live, instead of a new name that would restart every pod.
    configMapGenerator: [{ name: APP, files: ['config.yaml'], options: { disableNameSuffixHash: true, labels: { 'app.kubernetes.io/name': APP } } }],
  };
  files.set('kustomization.yaml', HEADER + stringify(kustomization));
  return files;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const check = process.argv.includes('--check');
  let stale = 0;
  for (const [file, content] of renderBase()) {
    const path = join(BASE, file);
    if (!check) writeFileSync(path, content);
    else if (readFileSync(path, 'utf8') !== content) {
      process.stderr.write(`${path} differs from manifests.ts: run make manifests\n`);
      stale++;
    }
  }
  process.exit(stale ? 1 : 0);
}
