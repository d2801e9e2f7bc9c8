/**
 * The systemd unit (deploy/systemd/bpfredir.service), under a real systemd: a Debian root
 * (test/deploy/nspawn-root.sh) boots with `systemd-nspawn -b` in a fresh netns, with the
 * installed tree (make install, staged), Node and the unit bind-mounted in, and only the three
 * capabilities (SYSTEMD_SECCOMP=0: nspawn's own filter would block bpf()). The unit starts at
 * boot as a dynamic user with exactly those capabilities, forwards a checksummed transfer
 * through a steering rule and a listen rule, reloads on `systemctl reload`, and stops cleanly
 * with nothing left attached. systemd-analyze verify says nothing about it, and its security
 * exposure stays "OK".
 */
import assert from 'node:assert/strict';
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, test } from 'node:test';
import { netnsLinkCount } from '../helpers/bpf-maps.js';
import { bpfSkipReason, createNetns, type Netns } from '../helpers/netns.js';
import { runClient, startServer, type TrafficServer } from '../helpers/traffic.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const UNIT = join(ROOT, 'deploy/systemd/bpfredir.service');
const skip = bpfSkipReason();
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Polls until check() returns a value, or fails after timeoutMs with what it last saw. */
async function until<T>(what: string, check: () => T | undefined, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) assert.fail(`${what}: not within ${timeoutMs} ms`);
    await sleep(200);
  }
}

describe('systemd unit', { skip }, () => {
  let ns: Netns;
  let dir: string;
  let echo: TrafficServer;
  let nspawn: ChildProcess | undefined;
  let bootLog = '';

  before(async () => {
    ns = createNetns('systemd');
    dir = mkdtempSync(join(tmpdir(), 'bpfredir-systemd-'));
    echo = await startServer(ns, { mode: 'echo', host: '127.0.1.1' });
  });

  after(async () => {
    nspawn?.kill('SIGKILL');
    await echo?.stop();
    ns?.destroy();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test('systemd-analyze verify says nothing; security exposure is OK', () => {
    const staged = join(dir, 'verify');
    execFileSync('make', ['--no-print-directory', 'install', `DESTDIR=${staged}`], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    // verify checks that ExecStart exists: point it at the staged install.
    const unit = join(dir, 'bpfredir.service');
    writeFileSync(unit, readFileSync(UNIT, 'utf8').replace('/usr/local/bin/bpfredir', join(staged, 'usr/local/bin/bpfredir')));
    const verify = spawnText('systemd-analyze', ['verify', unit]);
    assert.equal(verify.status, 0, verify.output);
    assert.equal(verify.output, '', 'no warning, not even an unknown key');
    const security = spawnText('systemd-analyze', ['security', '--offline=true', '--threshold=30', unit]);
    assert.equal(security.status, 0, security.output);
    const exposure = /Overall exposure level for bpfredir\.service: (\d+\.\d+) (\w+)/.exec(security.output);
    assert.ok(exposure, security.output);
    assert.ok(Number(exposure[1]) <= 3, `exposure ${exposure[1]} ${exposure[2]}`);
  });

  test('boots under systemd: a dynamic user with three capabilities forwards, reloads and stops cleanly', { timeout: 240_000 }, async () => {
    const rootfs = execFileSync('bash', [join(ROOT, 'test/deploy/nspawn-root.sh')], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] }).trim();
    const staged = join(dir, 'install');
    execFileSync('make', ['--no-print-directory', 'install', `DESTDIR=${staged}`], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    const etc = join(dir, 'etc');
    execFileSync('mkdir', ['-p', etc]);
    chmodSync(etc, 0o755);
    const rules = [
      { name: 'steered', destination: '127.0.0.2', ports: 7702, target: `127.0.1.1:${echo.port}` },
      { name: 'listened', listen: '127.0.0.1:7700', target: `127.0.1.1:${echo.port}` },
    ];
    const write = (value: object) => writeFileSync(join(etc, 'config.yaml'), JSON.stringify(value), { mode: 0o644 });
    write({ rules });

    nspawn = spawn(
      'systemd-nspawn',
      [
        '--boot', `--directory=${rootfs}`, '--register=no', '--keep-unit', '--volatile=overlay', '--console=pipe', '--quiet',
        `--network-namespace-path=${ns.path}`,
        '--capability=CAP_BPF,CAP_PERFMON,CAP_NET_ADMIN',
        `--bind-ro=${join(staged, 'usr/local')}:/usr/local`,
        `--bind-ro=${process.execPath}:/usr/bin/node`,
        `--bind-ro=${UNIT}:/etc/systemd/system/bpfredir.service`,
        `--bind=${etc}:/etc/bpfredir`,
      ],
      { env: { ...process.env, SYSTEMD_SECCOMP: '0' }, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    nspawn.stdout!.on('data', (chunk: Buffer) => (bootLog += chunk.toString()));
    nspawn.stderr!.on('data', (chunk: Buffer) => (bootLog += chunk.toString()));
    const exited = new Promise<number | null>((resolve) => nspawn!.once('exit', (code) => resolve(code)));

    // The container's systemd: the parent of bpfredir's main process.
    const mainPid = await until(`bpfredir under systemd (console: ${bootLog})`, () => pgrep('/usr/local/bin/bpfredir run --config /etc/bpfredir/config.yaml'));
    const init = Number(readFileSync(`/proc/${mainPid}/stat`, 'utf8').split(') ')[1]!.split(' ')[1]);
    const inside = (...args: string[]) => spawnText('nsenter', ['-t', String(init), '-a', ...args]);
    const journal = () => inside('journalctl', '-u', 'bpfredir', '-o', 'cat', '--no-pager').output;
    await until('the start line in the journal', () => (/^bpfredir: 2 rules/m.test(journal()) ? true : undefined));

    const status = readFileSync(`/proc/${mainPid}/status`, 'utf8');
    assert.notEqual(/^Uid:\s+(\d+)/m.exec(status)?.[1], '0', 'a dynamic user, not root');
    const caps = BigInt(`0x${/^CapEff:\s+([0-9a-f]+)/m.exec(status)![1]}`);
    const CAP = { NET_BIND_SERVICE: 10n, NET_ADMIN: 12n, PERFMON: 38n, BPF: 39n };
    assert.equal(caps, Object.values(CAP).reduce((mask, bit) => mask | (1n << bit), 0n), `CapEff ${caps.toString(16)}`);
    assert.match(status, /^Seccomp:\s+2$/m, 'the unit’s system call filter is on');

    for (const [host, port] of [['127.0.0.2', 7702], ['127.0.0.1', 7700]] as const) {
      const client = await runClient(ns, { host, port, bytes: 4 << 20, timeoutMs: 20_000 });
      assert.equal(client.error, undefined, `${host}:${port}`);
      assert.equal(client.recvSha, client.sentSha, `${host}:${port}: echoed intact`);
    }

    // A new rule; the file watch may apply it first, then `systemctl reload` (SIGHUP) again.
    write({ rules: [...rules, { name: 'added', listen: '127.0.0.1:7701', target: `127.0.1.1:${echo.port}` }] });
    const reload = inside('systemctl', 'reload', 'bpfredir');
    assert.equal(reload.status, 0, reload.output);
    await until('a reload by SIGHUP in the journal', () => (/ info reloaded trigger=SIGHUP /.test(journal()) ? true : undefined));
    const added = await runClient(ns, { port: 7701, bytes: 1 << 20, timeoutMs: 20_000 });
    assert.equal(added.recvSha, added.sentSha, 'the added rule forwards');

    const stop = inside('systemctl', 'stop', 'bpfredir');
    assert.equal(stop.status, 0, stop.output);
    assert.match(journal(), / info stopped drained=0 reset=0$/m);
    assert.match(inside('systemctl', 'show', '-p', 'Result', 'bpfredir').output, /^Result=success$/m);
    assert.equal(netnsLinkCount(ns.path), 0, 'no sk_lookup link left');

    inside('systemctl', 'poweroff');
    assert.equal(await Promise.race([exited, sleep(30_000).then(() => 'timeout')]), 0, bootLog);
    nspawn = undefined;
  });
});

/** A short command's exit status and everything it printed (warnings go to stderr even on success). */
function spawnText(cmd: string, args: string[]): { status: number | null; output: string } {
  const run = spawnSync(cmd, args, { encoding: 'utf8', timeout: 60_000 });
  return { status: run.status, output: `${run.stdout ?? ''}${run.stderr ?? ''}` };
}

function pgrep(pattern: string): number | undefined {
  const found = spawnText('pgrep', ['-f', '-x', `node ${pattern}`]);
  return found.status === 0 ? Number(found.output.trim().split('\n')[0]) : undefined;
}
