/**
 * make install and make uninstall, staged under a temporary DESTDIR: the installed bpfredir
 * runs from any directory (it finds package.json, its addon and the BPF object relative to
 * itself), every `bpfredir` command in the README runs as written with it on the PATH (those
 * that ask a running bpfredir while the tour's config is served), and
 * uninstall leaves no file behind.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { test, type TestContext } from 'node:test';
import { slow } from '../helpers/emulation.js';
import { createNetns, requireBpf, type Netns } from '../helpers/netns.js';
import { DEFAULT_RUN_DIR } from '../../src/netns-lock.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const EXAMPLE = join(ROOT, 'deploy/example.yaml');
const PREFIX = '/usr/local';
const { version } = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string };

interface Staged {
  destdir: string;
  bin: string;
  lib: string;
}

/** make install into a fresh DESTDIR, removed after the test whatever happens. */
function stageInstall(t: TestContext): Staged {
  const destdir = mkdtempSync(join(tmpdir(), 'bpfredir-install-'));
  t.after(() => rmSync(destdir, { recursive: true, force: true }));
  make('install', destdir);
  return { destdir, bin: join(destdir, PREFIX, 'bin/bpfredir'), lib: join(destdir, PREFIX, 'lib/bpfredir') };
}

function make(target: 'install' | 'uninstall', destdir: string): void {
  execFileSync('make', ['--no-print-directory', target, `DESTDIR=${destdir}`], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
}

/** Files and symlinks under dir: the directories make install created above PREFIX may stay. */
function filesUnder(dir: string): string[] {
  return (readdirSync(dir, { recursive: true }) as string[]).filter((path) => !lstatSync(join(dir, path)).isDirectory());
}

test('make install stages a bpfredir that runs from any directory; make uninstall removes every file', (t) => {
  const { destdir, bin, lib } = stageInstall(t);
  assert.equal(readlinkSync(bin), '../lib/bpfredir/dist/src/cli/main.js', 'relative, so the tree works wherever DESTDIR puts it');
  const installed = (...args: string[]) => execFileSync(bin, args, { cwd: destdir, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  assert.equal(installed('--version'), `${version}\n`);
  assert.match(installed('check', '--config', EXAMPLE), /\nconfig OK\n$/);
  for (const runtime of ['yargs', 'yaml', 'prom-client']) assert.ok(existsSync(join(lib, 'node_modules', runtime)), `${runtime} is installed`);
  for (const build of ['typescript', 'node-gyp', '@types', 'node-addon-api']) assert.ok(!existsSync(join(lib, 'node_modules', build)), `${build} is not`);
  assert.deepEqual(filesUnder(lib).filter((path) => /\.(ts|map)$/.test(path) && !path.startsWith('node_modules/')), [], 'compiled code only');

  make('uninstall', destdir);
  assert.deepEqual(filesUnder(destdir), []);
});

interface ReadmeCommand {
  line: string;
  /** The config file it names, if any (the README's YAML example stands for it). */
  config?: string;
}

/** Every `bpfredir ...` line of the README's sh blocks, without its comment. */
function readmeCommands(readme: string): ReadmeCommand[] {
  const blocks = [...readme.matchAll(/^```sh\n([\s\S]*?)^```/gm)].map((m) => m[1]!);
  return blocks
    .flatMap((block) => block.split('\n'))
    .map((line) => line.replace(/\s+#.*$/, '').trim())
    .filter((line) => line.startsWith('bpfredir '))
    .map((line) => ({ line, config: /--config (\S+)/.exec(line)?.[1] }));
}

/** Runs one README command in ns: a one-shot command must exit 0; one that serves must start, then stop cleanly on SIGTERM. */
async function runAsWritten(ns: Netns, command: string, env: NodeJS.ProcessEnv, cwd: string): Promise<void> {
  const child = ns.exec('sh', ['-c', `exec ${command}`], { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  const exited = new Promise<number | string>((resolve) => child.once('exit', (code, signal) => resolve(code ?? signal ?? -1)));
  const started = new Promise<void>((resolve) =>
    child.stdout!.on('data', (chunk: Buffer) => {
      output += chunk.toString();
      if (/^bpfredir: /m.test(output)) resolve();
    }),
  );
  child.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<'timeout'>((resolve) => (timer = setTimeout(() => resolve('timeout'), slow(20_000))));
  try {
    const first = await Promise.race([exited.then((code) => ({ code })), started.then(() => 'started' as const), timeout]);
    if (first === 'timeout') assert.fail(`${command}: neither exited nor started within ${slow(20_000)} ms:\n${output}`);
    if (first === 'started') {
      child.kill('SIGTERM');
      assert.equal(await exited, 0, `${command} stops cleanly:\n${output}`);
    } else {
      assert.equal(first.code, 0, `${command}:\n${output}`);
    }
  } finally {
    clearTimeout(timer);
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  }
}

test('every bpfredir command in the README runs as written after the install step', async (t) => {
  if (!requireBpf(t)) return;
  const { destdir, bin } = stageInstall(t);
  const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
  const commands = readmeCommands(readme);
  assert.ok(commands.length >= 4, `found the tour's commands: ${commands.map((c) => c.line).join(' | ')}`);

  // The file the tour names holds the tour's YAML example; the test writes it elsewhere.
  const yaml = /^```yaml\n([\s\S]*?)^```/m.exec(readme)?.[1];
  assert.ok(yaml, 'the README shows a config file');
  const config = join(destdir, 'bpfredir.yaml');
  writeFileSync(config, yaml);

  const runDirExisted = existsSync(DEFAULT_RUN_DIR); // the commands use the default run directory
  const ns = createNetns('install');
  t.after(() => {
    ns.destroy();
    if (!runDirExisted && existsSync(DEFAULT_RUN_DIR)) rmdirSync(DEFAULT_RUN_DIR);
  });
  const cwd = join(destdir, 'elsewhere');
  mkdirSync(cwd);
  const env = { ...process.env, PATH: `${join(bin, '..')}:${process.env.PATH ?? '/usr/bin:/bin'}` };
  // status, rules, conns and reload ask a running bpfredir: the tour's config serves meanwhile.
  let serving: Served | undefined;
  try {
    for (const { line, config: named } of commands) {
      if (ASKS_DAEMON.test(line)) serving ??= await serveInBackground(ns, `bpfredir run --config ${config}`, env, cwd);
      await runAsWritten(ns, named ? line.replace(named, config) : line, env, cwd);
    }
  } finally {
    await serving?.stop();
  }
});

const ASKS_DAEMON = /^bpfredir (status|rules|conns|reload)\b/;

interface Served {
  stop(): Promise<void>;
}

/** Starts a serving command in ns and resolves once its start line is out. */
async function serveInBackground(ns: Netns, command: string, env: NodeJS.ProcessEnv, cwd: string): Promise<Served> {
  const child = ns.exec('sh', ['-c', `exec ${command}`], { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const exited = new Promise<number | string>((resolve) => child.once('exit', (code, signal) => resolve(code ?? signal ?? -1)));
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${command} did not start:\n${output}`)), slow(20_000));
    child.stdout!.on('data', (chunk: Buffer) => {
      output += chunk.toString();
      if (/^bpfredir: /m.test(output)) (clearTimeout(timer), resolve());
    });
    void exited.then((code) => (clearTimeout(timer), reject(new Error(`${command} exited (${code}):\n${output}`))));
  });
  return {
    async stop() {
      child.kill('SIGTERM');
      assert.equal(await exited, 0, `${command} stops cleanly:\n${output}`);
    },
  };
}
