/**
 * YAML (and so JSON) parsed into a small tree that remembers the line of every
 * value, so validation errors can point at it. Plain objects (command-line
 * configs) become the same tree, without lines or with one line for all of it
 * (a converted line of another format, e.g. rinetd.conf).
 */
import { LineCounter, isMap, isScalar, isSeq, parseDocument, type Node as YamlNode } from 'yaml';

export type TreeNode =
  | { kind: 'map'; line?: number; entries: MapEntry[] }
  | { kind: 'seq'; line?: number; items: TreeNode[] }
  | { kind: 'scalar'; line?: number; value: unknown };

export interface MapEntry {
  key: string;
  line?: number;
  value: TreeNode;
}

export interface ParsedTree {
  tree: TreeNode | null;
  /** Each YAML syntax error with its line (1-based) when known. */
  syntaxErrors: { line?: number; message: string }[];
}

export function parseYamlTree(text: string): ParsedTree {
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false, uniqueKeys: true });
  const lineOf = (offset: number | undefined) => (offset === undefined ? undefined : lines.linePos(offset).line);
  const syntaxErrors = doc.errors.map((e) => ({ line: lineOf(e.pos[0]), message: e.message.split('\n')[0]! }));
  if (syntaxErrors.length) return { tree: null, syntaxErrors };

  const convert = (node: unknown): TreeNode => {
    const line = lineOf((node as YamlNode | null)?.range?.[0]);
    if (isMap(node)) {
      const entries = node.items.map((pair) => {
        const keyLine = lineOf((pair.key as YamlNode | null)?.range?.[0]);
        return {
          key: String(isScalar(pair.key) ? pair.key.value : pair.key),
          line: keyLine,
          // "key:" with nothing after it has no value node: it is a null on the key's line.
          value: pair.value === null ? { kind: 'scalar' as const, line: keyLine, value: null } : convert(pair.value),
        };
      });
      return { kind: 'map', line, entries };
    }
    if (isSeq(node)) return { kind: 'seq', line, items: node.items.map(convert) };
    return { kind: 'scalar', line, value: isScalar(node) ? node.value : null };
  };
  return { tree: doc.contents === null ? null : convert(doc.contents), syntaxErrors: [] };
}

export function plainTree(value: unknown, line?: number): TreeNode {
  const at = line === undefined ? {} : { line };
  if (Array.isArray(value)) return { kind: 'seq', ...at, items: value.map((v) => plainTree(v, line)) };
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value)
      .filter(([, v]) => v !== undefined)
      .map(([key, v]) => ({ key, ...at, value: plainTree(v, line) }));
    return { kind: 'map', ...at, entries };
  }
  return { kind: 'scalar', ...at, value };
}
