import { test } from 'node:test';
import assert from 'node:assert/strict';
import { configFromObject } from '../../src/config/load.js';
import { HealthChecks } from '../../src/health-checks.js';
import { namesHosts } from '../../src/reresolver.js';

const config = configFromObject(
  { rules: [{ name: 'api', listen: '127.0.0.1:8443', target: ['10.0.0.5:443', '10.0.0.6:443'], health_check: '50ms' }, { name: 'plain', listen: '127.0.0.1:8080', target: '10.0.0.7:80' }] },
  'test',
);

test('health checks: every target of a rule that asks, each verdict to the engine, each change one line', async () => {
  const verdicts: string[] = [];
  const lines: string[] = [];
  let round = 0;
  const probed: string[] = [];
  const checks = new HealthChecks(
    { setTargetDown: (rule, index, down) => void verdicts.push(`${rule}#${index}=${down ? 'down' : 'up'}`) },
    { info: (m, f) => lines.push(`${m} ${f?.target}`), warn: (m, f) => lines.push(`${m} ${f?.target} ${f?.reason}`), error: () => {} },
    async (host, port) => {
      probed.push(`${host}:${port}`);
      // 10.0.0.5 refuses in the first two rounds, then answers.
      return host === '10.0.0.5' && round < 2 ? 'ECONNREFUSED' : undefined;
    },
  );
  checks.follow(config);
  for (; round < 4; round++) await new Promise((r) => setTimeout(r, 60));
  checks.stop();
  assert.ok(!probed.some((t) => t.startsWith('10.0.0.7')), 'rules without health_check are not probed');
  assert.deepEqual(verdicts.slice(0, 2).sort(), ['api#0=down', 'api#1=up']);
  assert.ok(verdicts.includes('api#0=up'));
  assert.deepEqual(lines, ['target_down 10.0.0.5:443 ECONNREFUSED', 'target_up 10.0.0.5:443']);
});

test('only configs that name hosts are looked up again', () => {
  assert.equal(namesHosts(config), false);
  assert.equal(namesHosts(configFromObject({ rules: [{ name: 'n', listen: '127.0.0.1:1', target: 'db.internal:5432' }] }, 'test')), true);
});
