/** Makes sure the Debian packages the benchmark drives are installed (apt-get, as root). */
import { execFileSync, spawnSync } from 'node:child_process';

const PACKAGES = ['iperf3', 'sockperf', 'wrk', 'socat', 'rinetd', 'redir', 'haproxy', 'nginx', 'libnginx-mod-stream', 'iproute2', 'util-linux', 'iptables'];

function installed(pkg: string): boolean {
  const r = spawnSync('dpkg-query', ['-W', '-f=${Status}', pkg], { encoding: 'utf8' });
  return r.status === 0 && r.stdout.includes('install ok installed');
}

export function ensurePackages(): void {
  if (process.getuid?.() !== 0) throw new Error('the benchmark creates network namespaces: run it as root (sudo make bench)');
  const missing = PACKAGES.filter((p) => !installed(p));
  if (missing.length === 0) return;
  process.stderr.write(`bench: installing ${missing.join(' ')}\n`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  try {
    execFileSync('apt-get', ['install', '-y', '--no-install-recommends', ...missing], { stdio: 'inherit', env });
  } catch {
    execFileSync('apt-get', ['update'], { stdio: 'inherit', env });
    execFileSync('apt-get', ['install', '-y', '--no-install-recommends', ...missing], { stdio: 'inherit', env });
  }
}
