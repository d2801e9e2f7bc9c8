/** Find, read, parse, validate and resolve a config: the one way in for config files. */
import { readFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { BpfredirError, errnoCode } from '../errors.js';
import type { Prefix } from '../rules/ip.js';
import { rejectLoops } from '../rules/loops.js';
import { localPrefixes } from './local-addresses.js';
import { resolveHostnames, type HostLookup } from './resolve.js';
import type { Config } from './types.js';
import { validateConfig } from './validate.js';
import { parseYamlTree, plainTree } from './yaml-tree.js';

/** Where a config is looked for when none is given. */
export const DEFAULT_CONFIG_PATHS = ['bpfredir.yaml', '/etc/bpfredir/config.yaml'];

export function findConfig(explicit: string | undefined, env = process.env): string {
  const wanted = explicit ?? env['BPFREDIR_CONFIG'];
  if (wanted) return wanted;
  const found = DEFAULT_CONFIG_PATHS.find((p) => existsSync(p));
  if (found) return found;
  throw new BpfredirError(
    'ERR_BPFREDIR_CONFIG',
    `no config found (looked for ${DEFAULT_CONFIG_PATHS.join(', ')}); pass --config FILE or set BPFREDIR_CONFIG`,
  );
}

/** Plain JSON, parsed natively: ~50x faster than the YAML parser on generated 100k-rule configs. */
function parseJson(text: string): unknown {
  if (!text.trimStart().startsWith('{')) return undefined;
  try {
    return JSON.parse(text);
  } catch {
    return undefined; // YAML flow style, or broken: the YAML parser will say where
  }
}

/** Parse and validate config text (YAML or JSON); no I/O. */
export function parseConfigText(text: string, file: string): Config {
  const json = parseJson(text);
  if (json !== undefined) {
    try {
      return validateConfig(plainTree(json), file);
    } catch {
      // Invalid: validate again below through the YAML parser, which knows line numbers.
    }
  }
  const { tree, syntaxErrors } = parseYamlTree(text);
  if (syntaxErrors.length) {
    throw new BpfredirError(
      'ERR_BPFREDIR_CONFIG',
      syntaxErrors.map((e) => `${file}${e.line === undefined ? '' : `:${e.line}`}: ${e.message}; fix the YAML syntax`),
    );
  }
  return validateConfig(tree, file);
}

/** Validate a config built in code (e.g. from `bpfredir forward` arguments). */
export function configFromObject(value: unknown, source: string): Config {
  return validateConfig(plainTree(value), source);
}

/** What a config is checked against on this host; tests give their own. */
export interface HostFacts {
  lookup?: HostLookup;
  localPrefixes?: readonly Prefix[];
}

/** Resolve host names, then refuse loops: the last step of every config before it is served. */
export async function resolveAndCheck(config: Config, host: HostFacts = {}): Promise<Config> {
  return rejectLoops(await resolveHostnames(config, host.lookup), host.localPrefixes ?? localPrefixes());
}

export async function loadConfigFile(file: string, host: HostFacts = {}): Promise<Config> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw new BpfredirError('ERR_BPFREDIR_CONFIG', `${file}: cannot read the config (${errnoCode(err) ?? err}); check the path given to --config`, { cause: err });
  }
  return resolveAndCheck(parseConfigText(text, file), host);
}
