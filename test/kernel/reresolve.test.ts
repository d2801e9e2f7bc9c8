/**
 * A target named by host name follows its DNS record while running: the name
 * is looked up again every resolve_interval, and new connections go to the new
 * address. The name lives in the test netns's own hosts file (`ip netns exec`
 * mounts /etc/netns/NAME/hosts over /etc/hosts), rewritten in place.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { startBpfredir, type BpfredirProcess } from '../helpers/bpfredir.js';
import { slow } from '../helpers/emulation.js';
import { bpfSkipReason, createNetns, type Netns } from '../helpers/netns.js';
import { runClient, startServer, type TrafficServer } from '../helpers/traffic.js';

const skip = bpfSkipReason();
const sha = (text: string) => createHash('sha256').update(text).digest('hex');

describe('host names looked up again', { skip }, () => {
  let ns: Netns;
  let dir: string;
  let etc: string;
  let proxy: BpfredirProcess;
  const servers: TrafficServer[] = [];

  before(async () => {
    ns = createNetns('reresolve');
    ns.run('ip', ['addr', 'add', '127.0.0.2/8', 'dev', 'lo']);
    etc = `/etc/netns/${ns.name}`;
    mkdirSync(etc, { recursive: true });
    writeFileSync(join(etc, 'hosts'), '127.0.0.1 upstream.test\n');
    const first = await startServer(ns, { mode: 'name', name: 'first', host: '127.0.0.1' });
    servers.push(first, await startServer(ns, { mode: 'name', name: 'second', host: '127.0.0.2', port: first.port }));
    dir = mkdtempSync(join(tmpdir(), 'bpfredir-reresolve-'));
    const config = { resolve_interval: '300ms', rules: [{ name: 'named', listen: '127.0.0.1:7950', target: `upstream.test:${first.port}` }] };
    writeFileSync(join(dir, 'config.json'), JSON.stringify(config));
    proxy = await startBpfredir(ns, ['run', '--config', join(dir, 'config.json')]);
  });

  after(async () => {
    await proxy?.stop();
    for (const s of servers) await s.stop();
    ns?.destroy();
    if (etc) rmSync(etc, { recursive: true, force: true });
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test('a changed record reaches new connections within the interval; an unchanged one logs nothing', async () => {
    const who = async () => (await runClient(ns, { port: 7950, timeoutMs: slow(5000) })).recvSha;
    assert.equal(await who(), sha('first'));
    await new Promise((r) => setTimeout(r, slow(1000)));
    assert.equal(proxy.logs.filter((l) => l.msg === 'reloaded').length, 0, 'the same address: no reload line');
    writeFileSync(join(etc, 'hosts'), '127.0.0.2 upstream.test\n'); // in place: the mount shows the same file
    const line = await proxy.waitForLog((l) => l.msg === 'reloaded' && l.trigger === 're-resolve', slow(5000));
    assert.equal(line.changed, 1);
    assert.equal(await who(), sha('second'));
  });
});
