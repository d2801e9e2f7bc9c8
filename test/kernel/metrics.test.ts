/**
 * Metrics, proved with the real thing: Debian's prometheus scrapes three bpfredir processes
 * in a fresh netns every second, one per way bytes move (recv/send copy, splice(2), the
 * sockmap; the last one also steers), after a known number of connections and bytes went
 * through each. Prometheus' query API must then return exactly those numbers. The endpoint's
 * output passes `promtool check metrics` with no lint warning; /healthz and /readyz answer,
 * and /readyz turns 503 while a stopping bpfredir drains. The Grafana dashboard's queries pass
 * `promtool check rules` and use only metrics the endpoint exports.
 */
import assert from 'node:assert/strict';
import { execFileSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { startBpfredir, type BpfredirProcess } from '../helpers/bpfredir.js';
import { httpGet, runWithInput } from '../helpers/http.js';
import { slow } from '../helpers/emulation.js';
import { bpfSkipReason, createNetns, type Netns } from '../helpers/netns.js';
import { runClient, startServer, type TrafficServer } from '../helpers/traffic.js';

const bpfSkip = bpfSkipReason();
const hasPrometheus = (() => {
  try {
    execFileSync('prometheus', ['--version'], { stdio: 'ignore' });
    execFileSync('promtool', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
})();
if (!hasPrometheus && process.env.CI === 'true') throw new Error('kernel test cannot run under CI: prometheus and promtool are not installed (apt-get install prometheus)');
const skip = bpfSkip || (!hasPrometheus && 'needs prometheus and promtool (apt-get install prometheus)');

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const PROMETHEUS_PORT = 9090;
const DASHBOARD = fileURLToPath(new URL('../../../deploy/grafana/bpfredir.json', import.meta.url));

interface Way {
  name: string;
  flags: string[];
  settings: object;
  metricsPort: number;
  /** Each connection sends this much and gets it echoed. */
  bytes: number;
  connections: number;
}

// Bytes chosen so each connection stays where the name says: below splice_after (copy); a
// fast bulk echo (kept on splice(2)); spliced into the kernel at once (sockmap).
const WAYS: Way[] = [
  { name: 'copy', flags: ['--datapath', 'userspace'], settings: {}, metricsPort: 9471, bytes: 40_000, connections: 7 },
  { name: 'splice', flags: [], settings: { bulk_flows: 'relay' }, metricsPort: 9472, bytes: 4 << 20, connections: 3 },
  { name: 'sockmap', flags: [], settings: { bulk_flows: 'kernel', splice_after: 0 }, metricsPort: 9473, bytes: 1 << 20, connections: 4 },
];
const STEERED = { connections: 5, bytes: 100_000 };

describe('metrics scraped by Prometheus', { skip }, () => {
  let ns: Netns;
  let dir: string;
  let echo: TrafficServer;
  const proxies: BpfredirProcess[] = [];
  let prometheus: ChildProcess | undefined;

  before(async () => {
    ns = createNetns('metrics');
    dir = mkdtempSync(join(tmpdir(), 'bpfredir-metrics-'));
    echo = await startServer(ns, { mode: 'echo', host: '127.0.1.1' });
  });

  after(async () => {
    prometheus?.kill('SIGKILL');
    for (const p of proxies) await p.stop('SIGKILL');
    await echo?.stop();
    ns?.destroy();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const get = (port: number, path: string) => httpGet(ns, `http://127.0.0.1:${port}${path}`);

  async function query(expr: string): Promise<{ metric: Record<string, string>; value: [number, string] }[]> {
    const res = await get(PROMETHEUS_PORT, `/api/v1/query?query=${encodeURIComponent(expr)}`);
    if (res.status !== 200) return [];
    const body = JSON.parse(res.body) as { status: string; data?: { result: { metric: Record<string, string>; value: [number, string] }[] } };
    return body.status === 'success' ? body.data!.result : [];
  }

  /** Polls the query until it returns `want` (Prometheus needs a few scrapes to see a target). */
  async function until(expr: string, want: number, timeoutMs = slow(45_000)): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    let last = 'no result';
    while (Date.now() < deadline) {
      const result = await query(expr);
      if (result.length === 1 && Number(result[0]!.value[1]) === want) return;
      last = result.length ? result.map((r) => `${JSON.stringify(r.metric)} ${r.value[1]}`).join('; ') : 'no result';
      await sleep(500);
    }
    assert.fail(`${expr}: wanted ${want}, Prometheus has ${last}`);
  }

  test('every connection and byte sent is what Prometheus scraped', { timeout: slow(150_000) }, async () => {
    for (const way of WAYS) {
      const rules: object[] = [{ name: way.name, listen: `127.0.0.1:${way.metricsPort + 100}`, target: `127.0.1.1:${echo.port}` }];
      if (way.name === 'sockmap') rules.push({ name: 'steered', destination: '127.0.0.2', ports: 7600, target: `127.0.1.1:${echo.port}` });
      const file = join(dir, `${way.name}.json`);
      writeFileSync(file, JSON.stringify({ ...way.settings, rules }));
      const args = ['run', '--config', file, ...way.flags, '--metrics-listen', `127.0.0.1:${way.metricsPort}`, '--admin-socket', join(dir, `${way.name}.sock`), '--log-level', 'warn'];
      proxies.push(await startBpfredir(ns, args));
    }
    const scrapeConfig = [
      'global: { scrape_interval: 1s, evaluation_interval: 1s }',
      'scrape_configs:',
      '  - job_name: bpfredir',
      `    static_configs: [ { targets: [${WAYS.map((w) => `"127.0.0.1:${w.metricsPort}"`).join(', ')}] } ]`,
    ].join('\n');
    writeFileSync(join(dir, 'prometheus.yml'), `${scrapeConfig}\n`);
    prometheus = ns.exec('prometheus', [`--config.file=${join(dir, 'prometheus.yml')}`, `--storage.tsdb.path=${join(dir, 'tsdb')}`, `--web.listen-address=127.0.0.1:${PROMETHEUS_PORT}`], { stdio: 'ignore' });

    for (const way of WAYS) {
      for (let i = 0; i < way.connections; i++) {
        const client = await runClient(ns, { port: way.metricsPort + 100, bytes: way.bytes, timeoutMs: slow(30_000) });
        assert.equal(client.error, undefined);
        assert.equal(client.recvSha, client.sentSha, `${way.name} #${i}: echoed intact`);
      }
    }
    for (let i = 0; i < STEERED.connections; i++) {
      const client = await runClient(ns, { host: '127.0.0.2', port: 7600, bytes: STEERED.bytes, timeoutMs: slow(30_000) });
      assert.equal(client.recvSha, client.sentSha, `steered #${i}`);
    }

    for (const way of WAYS) {
      const rule = `rule="${way.name}"`;
      await until(`bpfredir_connections_accepted_total{${rule}}`, way.connections);
      await until(`bpfredir_connections_closed_total{${rule},reason="eof"}`, way.connections);
      await until(`bpfredir_bytes_total{${rule},direction="to_upstream"}`, way.connections * way.bytes);
      await until(`bpfredir_bytes_total{${rule},direction="to_client"}`, way.connections * way.bytes);
      await until(`sum(bpfredir_connections_active{${rule}})`, 0);
      await until(`bpfredir_upstream_connect_duration_seconds_count{${rule}}`, way.connections);
    }
    await until('bpfredir_sk_lookup_steered_total{rule="steered"}', STEERED.connections);
    await until('bpfredir_bytes_total{rule="steered",direction="to_client"}', STEERED.connections * STEERED.bytes);
    await until('bpfredir_datapath_info{datapath="userspace"}', 1);
    await until('count(bpfredir_build_info)', WAYS.length);
    await until('bpfredir_map_capacity{map="bindings"}', 1048576);
    await until('sum(bpfredir_metrics_collect_errors_total) or vector(0)', 0);
  });

  test('promtool finds nothing to lint; /healthz and /readyz answer', async () => {
    for (const way of WAYS) {
      const metrics = await get(way.metricsPort, '/metrics');
      assert.equal(metrics.status, 200);
      assert.match(metrics.contentType, /^text\/plain; version=0\.0\.4/);
      const lint = await runWithInput(ns, 'promtool', ['check', 'metrics'], metrics.body);
      assert.equal(lint.status, 0, `${way.name}: ${lint.stdout}${lint.stderr}`);
      assert.equal(`${lint.stdout}${lint.stderr}`.trim(), '', `${way.name}: no lint warnings`);
      assert.deepEqual([(await get(way.metricsPort, '/healthz')).status, (await get(way.metricsPort, '/readyz')).status], [200, 200]);
      assert.equal((await get(way.metricsPort, '/nothing')).status, 404);
    }
  });

  test("the Grafana dashboard's queries are valid PromQL over families the endpoint exports", async () => {
    const dashboard = JSON.parse(readFileSync(DASHBOARD, 'utf8')) as { panels: { title: string; targets: { expr: string }[] }[]; templating: { list: { definition: string }[] } };
    const exprs = dashboard.panels.flatMap((p) => p.targets.map((t) => t.expr));
    assert.ok(exprs.length >= 10);
    // Grafana's variables, as Grafana would fill them in.
    const promql = (expr: string) => expr.replaceAll('$__rate_interval', '1m').replaceAll('$rule', '.*');
    const rules = ['groups:', '  - name: dashboard', '    rules:', ...exprs.flatMap((e, i) => [`      - record: bpfredir:dashboard:${i}`, `        expr: ${JSON.stringify(promql(e))}`])];
    const file = join(dir, 'dashboard-rules.yml');
    writeFileSync(file, `${rules.join('\n')}\n`);
    const check = await runWithInput(ns, 'promtool', ['check', 'rules', file], '');
    assert.equal(check.status, 0, `${check.stdout}${check.stderr}`);
    assert.match(check.stdout, new RegExp(`SUCCESS: ${exprs.length} rules found`));

    const exported = new Set([...(await get(WAYS[0]!.metricsPort, '/metrics')).body.matchAll(/^# TYPE (\S+) /gm)].map((m) => m[1]));
    const used = new Set([...exprs, dashboard.templating.list[0]!.definition].flatMap((e) => [...e.matchAll(/bpfredir_[a-z_]+/g)].map((m) => m[0].replace(/_bucket$/, ''))));
    assert.deepEqual([...used].filter((name) => !exported.has(name)), [], 'every metric the dashboard uses exists');
  });

  test('/readyz is 503 while bpfredir drains', { timeout: slow(30_000) }, async () => {
    const port = 9480;
    const proxy = await startBpfredir(ns, ['forward', `127.0.0.1:${port + 1}`, `127.0.1.1:${echo.port}`, '--metrics-listen', `127.0.0.1:${port}`, '--drain', '10s', '--admin-socket', join(dir, 'drain.sock')]);
    proxies.push(proxy);
    const open = runClient(ns, { port: port + 1, bytes: 10, keepOpen: true, expect: 1 << 30, timeoutMs: slow(20_000) });
    await proxy.waitForLog((l) => l.msg === 'connected');
    process.kill(proxy.pid, 'SIGTERM');
    await proxy.waitForLog((l) => l.msg.startsWith('stopping'));
    const ready = await get(port, '/readyz');
    assert.deepEqual([ready.status, ready.body.trim()], [503, 'stopping']);
    assert.equal((await get(port, '/healthz')).status, 200);
    process.kill(proxy.pid, 'SIGTERM'); // skip the drain
    assert.equal(await proxy.exited, 0);
    await open;
  });
});
