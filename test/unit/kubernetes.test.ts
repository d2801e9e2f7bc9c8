import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import { CPU_LIMIT, daemonSet, podSpec } from '../../deploy/kubernetes/manifests.js';
import { BASE, renderBase } from '../../deploy/kubernetes/render.js';
import { parseConfigText } from '../../src/config/load.js';

test('deploy/kubernetes/base holds exactly what manifests.ts renders (make manifests)', () => {
  for (const [file, content] of renderBase()) assert.equal(readFileSync(join(BASE, file), 'utf8'), content, `${file}: run make manifests`);
});

test("the base's config.yaml is valid, and its threads equal the container's CPU limit", () => {
  const config = parseConfigText(readFileSync(join(BASE, 'config.yaml'), 'utf8'), 'config.yaml');
  assert.equal(config.threads, CPU_LIMIT);
  assert.equal(podSpec().containers[0]!.resources!.limits!.cpu, String(CPU_LIMIT));
});

test('the pod gets three capabilities, no escalation, a read-only root, a seccomp profile that allows bpf, and time to drain', () => {
  const spec = daemonSet.spec!.template.spec!;
  const container = spec.containers[0]!;
  assert.deepEqual(container.securityContext, {
    runAsUser: 0,
    allowPrivilegeEscalation: false,
    readOnlyRootFilesystem: true,
    capabilities: { drop: ['ALL'], add: ['BPF', 'NET_ADMIN', 'PERFMON'] },
  });
  assert.equal(spec.hostNetwork, true);
  assert.equal(spec.securityContext?.seccompProfile?.type, 'Localhost');
  assert.deepEqual(spec.tolerations, [{ operator: 'Exists' }]);
  assert.ok(spec.terminationGracePeriodSeconds! > 10, 'longer than the 10 s drain');
  assert.deepEqual([container.readinessProbe?.httpGet?.path, container.livenessProbe?.httpGet?.path], ['/readyz', '/healthz']);
  const kustomization = parse(readFileSync(join(BASE, 'kustomization.yaml'), 'utf8'));
  assert.equal(kustomization.configMapGenerator[0].options.disableNameSuffixHash, true, 'a fixed name, updated in place: a live reload, not a restart');
});
