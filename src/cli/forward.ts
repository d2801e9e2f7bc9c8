/** bpfredir forward LISTEN TARGET (or --intercept IFACE MATCH TARGET): a one-rule config from the command line. */
import type { CommandModule } from 'yargs';
import { configFromObject, resolveAndCheck } from '../config/load.js';
import type { Config } from '../config/types.js';
import { BpfredirError } from '../errors.js';
import { withServeOptions, type ServeArgs } from './common-options.js';
import { serve } from './serve.js';

export interface ForwardArgs extends ServeArgs {
  listen: string;
  target: string;
  'idle-timeout'?: string;
  'connect-timeout'?: string;
  budget?: string;
  sndbuf?: string;
  threads?: string;
  'splice-after'?: string;
  'bulk-flows'?: string;
  allow?: string | string[];
  deny?: string | string[];
  'proxy-protocol'?: string;
  source?: string;
  mark?: string;
  keepalive?: string;
  'max-connections'?: string;
  timeout?: string;
  'access-log'?: string;
  'access-log-format'?: string;
  'pid-file'?: string;
  intercept?: string | string[];
  sources?: string | string[];
  'transparent-source'?: boolean;
  'transparent-port'?: boolean;
  'return-interface'?: string | string[];
  'accept-proxy'?: string | string[];
}

/** redir's [SRC]:PORT: no address means every address to listen on, this host to connect to. */
const redirEndpoint = (text: string, host: string) => (/^:\d+$/.test(text) ? `${host}${text}` : text);

/** redir counts its timeout in seconds; bpfredir's durations carry a unit. */
function redirTimeout(seconds: string | undefined): string | undefined {
  if (seconds === undefined) return undefined;
  if (!/^\d+$/.test(seconds)) throw new BpfredirError('ERR_BPFREDIR_USAGE', `--timeout: '${seconds}' is not a number of seconds; write e.g. --timeout 30 (or --idle-timeout 30s)`);
  return `${seconds}s`;
}

/**
 * With --intercept, LISTEN says what to take: ':80' (any destination, both families),
 * '192.0.2.0/24:443', '[2001:db8::/32]:8000-8999'; the config checks the parts.
 */
export function interceptMatch(text: string): { intercept: string[]; ports: string } {
  const m = /^(?:\[([^\]]+)\]|([^:]*)):([^:]+)$/.exec(text);
  if (!m) throw new BpfredirError('ERR_BPFREDIR_USAGE', `--intercept: '${text}' is not DESTINATION:PORTS; write e.g. :80 (any destination), 192.0.2.0/24:443 or [2001:db8::/32]:8000-8999`);
  const prefix = m[1] ?? m[2];
  return { intercept: prefix ? [prefix] : ['0.0.0.0/0', '::/0'], ports: m[3]! };
}

function transparentSource(args: Pick<ForwardArgs, 'transparent-source' | 'transparent-port'>): string | undefined {
  if (args['transparent-port']) return 'address_and_port';
  return args['transparent-source'] ? 'address' : undefined;
}

/**
 * A comma-separated or repeated option, flattened. Not yargs arrays: those would
 * swallow the positionals after them (--intercept eth1 :80 original).
 */
const list = (values: string | string[] | undefined) => (values === undefined ? undefined : [values].flat().flatMap((v) => v.split(',')).filter(Boolean));

/** The one rule (and the settings) the command line describes; throws ERR_BPFREDIR_CONFIG naming what is wrong. */
export function forwardConfig(args: Omit<ForwardArgs, keyof ServeArgs>): Config {
  return configFromObject(
    {
      budget: args.budget,
      sndbuf: args.sndbuf,
      threads: args.threads,
      splice_after: args['splice-after'],
      bulk_flows: args['bulk-flows'],
      access_log: args['access-log'],
      access_log_format: args['access-log-format'],
      pid_file: args['pid-file'],
      ...(args['return-interface'] && { interception: { return_interfaces: list(args['return-interface']) } }),
      rules: [
        {
          name: 'forward',
          ...(args.intercept ? { ...interceptMatch(args.listen), interfaces: list(args.intercept) } : { listen: redirEndpoint(args.listen, '0.0.0.0') }),
          target: args.target === 'original' ? 'original' : redirEndpoint(args.target, '127.0.0.1'),
          sources: list(args.sources),
          transparent_source: transparentSource(args),
          accept_proxy: list(args['accept-proxy']),
          connect_timeout: args['connect-timeout'],
          idle_timeout: args['idle-timeout'] ?? redirTimeout(args.timeout),
          allow: list(args.allow),
          deny: list(args.deny),
          proxy_protocol: args['proxy-protocol'],
          source: args.source,
          mark: args.mark,
          keepalive: args.keepalive,
          max_connections: args['max-connections'],
        },
      ],
    },
    'command line',
  );
}

export const forwardCommand: CommandModule<object, ForwardArgs> = {
  command: 'forward <listen> <target>',
  describe: 'Forward one address:port to another until SIGINT/SIGTERM',
  builder: (yargs) =>
    withServeOptions(yargs)
      .positional('listen', { type: 'string', demandOption: true, describe: 'address:port to listen on, e.g. 127.0.0.1:8080 or [::1]:8080 (:8080: every IPv4 address, as redir)' })
      .positional('target', { type: 'string', demandOption: true, describe: 'host:port to forward to, e.g. 127.0.0.1:9000 (:9000: this host)' })
      .option('idle-timeout', { type: 'string', describe: 'close connections idle this long, e.g. 30s (default 0: never)' })
      .option('connect-timeout', { type: 'string', describe: 'give up connecting upstream after, e.g. 5s (default 5s)' })
      .option('budget', { type: 'string', describe: 'in-flight bytes per direction in the kernel queue, default 4MiB (0: unlimited)' })
      .option('sndbuf', { type: 'string', describe: 'SO_SNDBUF of spliced sockets, e.g. 4MiB (0: autotune)' })
      .option('splice-after', { type: 'string', describe: 'bytes a connection carries on the user-space relay before it is spliced in the kernel, default 64KiB (0: at once)' })
      .option('bulk-flows', { choices: ['relay', 'kernel'] as const, describe: 'where a flow that carries its first --splice-after bytes within 10 ms goes: the splice(2) relay (default) or the kernel splice path' })
      .option('threads', { type: 'string', describe: 'engine threads: auto (default, one per CPU) or 1..64' })
      .option('allow', { type: 'string', describe: 'admit only clients in these prefixes, checked in the kernel before accept (repeatable), e.g. 10.0.0.0/8' })
      .option('deny', { type: 'string', describe: 'refuse clients in these prefixes before accept (repeatable), e.g. 192.0.2.0/24' })
      .option('proxy-protocol', { choices: ['v1', 'v2', 'none'] as const, describe: 'send a PROXY protocol header (v1 text, v2 binary) to the target, so it sees the real client' })
      .option('source', { alias: ['bind', 'b'], type: 'string', describe: "connect to the target from this local address, e.g. 192.0.2.10 (redir's --bind)" })
      .option('timeout', { alias: 't', type: 'string', describe: "redir's --timeout: close a connection idle this many seconds (same as --idle-timeout SECs)" })
      .option('access-log', { type: 'string', describe: 'one line per connection opened, ended or refused, appended to this file' })
      .option('access-log-format', { choices: ['rinetd', 'common'] as const, describe: "rinetd's tab-separated lines (default) or its common log format" })
      .option('pid-file', { type: 'string', describe: 'write the process id here while running' })
      .option('mark', { type: 'string', describe: 'SO_MARK of upstream connections, for policy routing or the firewall, e.g. 0x64' })
      .option('keepalive', { type: 'string', describe: 'TCP keepalive on both sides after this much silence, e.g. 60s (default off)' })
      .option('max-connections', { type: 'string', describe: 'open connections admitted; more are reset at once and counted (default 0: no limit)' })
      .option('intercept', { type: 'string', describe: 'take connections routed through this machine that arrive on these interfaces (repeatable or comma-separated); LISTEN is then DESTINATION:PORTS, TARGET may be original (docs/ROUTER.md)' })
      .option('sources', { type: 'string', describe: 'with --intercept: only clients in these prefixes are intercepted (repeatable)' })
      .option('transparent-source', { alias: ['transproxy', 'p'], type: 'boolean', describe: "connect to the target from the client's address (redir's -p, --transproxy)" })
      .option('transparent-port', { type: 'boolean', describe: "and from the client's port too (implies --transparent-source)" })
      .option('return-interface', { type: 'string', describe: 'with --transparent-source and no --intercept: interfaces where the target\'s replies come back (repeatable)' })
      .option('accept-proxy', { type: 'string', describe: 'connections start with a PROXY v1/v2 header from these load balancers (repeatable); only they may connect' })
      .example('$0 forward 127.0.0.1:8080 127.0.0.1:9000', 'like rinetd, spliced in the kernel')
      .example('$0 forward :2222 10.0.0.5:22 --bind 10.0.0.1 --timeout 600 --syslog --ident ssh-fwd', 'redir-style')
      .example('$0 forward 0.0.0.0:8080 10.0.0.5:80 --allow 192.168.0.0/16 --deny 192.168.9.0/24', 'only the LAN, less one subnet')
      .example('$0 forward --intercept eth1 :80 original --transparent-source', "a router's transparent proxy: port 80 routed in on eth1, on to where it was going, from the client's address")
      .example('$0 forward 0.0.0.0:25 10.0.0.9:25 --accept-proxy 10.0.1.10 --proxy-protocol v1', 'behind a load balancer, passing the real client on'),
  handler: async (args) => {
    await serve(await resolveAndCheck(forwardConfig(args)), args);
  },
};
