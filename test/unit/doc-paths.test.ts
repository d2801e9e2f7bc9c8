/**
 * Every repository path that a doc or a code comment cites exists.
 *
 * A citation is a token that starts with a top-level directory (bpf/ native/ src/ test/ docs/
 * deploy/ bench/ .ci/) or is a top-level file name (README.md, Makefile, package.json), read
 * from the repository root, plus the target of a markdown link to a local file, read from the
 * linking file's directory. Docs (README.md, docs/*.md, deploy/*, bench/*.md) are read whole;
 * code (bpf/, native/, src/, test/, bench/ sources, Makefile, .ci/) only in its comments.
 * Generated directories and globs or placeholders (containing * < { $) are not citations.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join, posix } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const GENERATED = new Set(['.git', 'node_modules', 'build', 'dist']);
const TOKEN = /(?<![\w./-])(?:(?:bpf|native|src|test|docs|deploy|bench|\.ci)\/[\w.*<>{}$/-]*|README\.md|Makefile|package\.json)/g;
const LINK = /\]\(([^)\s]+)\)/g;
const SLASH_COMMENT = /\/\*[\s\S]*?\*\/|\/\/[^\n]*/g;
const HASH_COMMENT = /(?:^|[ \t])#[^\n]*/gm;

interface Citation {
  path: string; // repository-relative
  line: number;
}

function isDoc(file: string): boolean {
  return file === 'README.md' || /^(docs|bench)\/[^/]+\.md$/.test(file) || /^deploy\/[^/]+$/.test(file);
}

/** The comment text of a source file, with its offsets; null when the file is not code we scan. */
function comments(file: string, text: string): Array<{ text: string; at: number }> | null {
  let pattern: RegExp;
  if (/^(bpf\/.*\.[ch]|native\/[^/]+\.(cc|h)|(src|test|bench)\/.*\.ts)$/.test(file)) pattern = SLASH_COMMENT;
  else if (file === 'Makefile' || file.startsWith('.ci/')) pattern = HASH_COMMENT;
  else return null;
  return [...text.matchAll(pattern)].map((m) => ({ text: m[0], at: m.index }));
}

function lineAt(text: string, at: number): number {
  return text.slice(0, at).split('\n').length;
}

function isCitable(path: string): boolean {
  return !/[*<{$]/.test(path) && !path.split('/').some((part) => GENERATED.has(part));
}

/** The paths `file` (repository-relative) cites in `text`. */
function citedPaths(file: string, text: string): Citation[] {
  const regions = isDoc(file) ? [{ text, at: 0 }] : comments(file, text);
  if (!regions) return [];
  const cited: Citation[] = [];
  for (const region of regions) {
    for (const m of region.text.matchAll(TOKEN)) {
      const path = m[0].replace(/\.+$/, '');
      if (isCitable(path)) cited.push({ path, line: lineAt(text, region.at + m.index) });
    }
  }
  if (file.endsWith('.md')) {
    for (const m of text.matchAll(LINK)) {
      const target = m[1]!.split('#')[0]!;
      if (!target || /^[a-z][a-z0-9+.-]*:/i.test(target) || !isCitable(target)) continue;
      cited.push({ path: posix.normalize(posix.join(posix.dirname(file), target)), line: lineAt(text, m.index) });
    }
  }
  return cited;
}

function repositoryFiles(dir = ''): string[] {
  return readdirSync(join(ROOT, dir), { withFileTypes: true }).flatMap((entry) => {
    const path = dir ? `${dir}/${entry.name}` : entry.name;
    if (GENERATED.has(entry.name)) return [];
    if (entry.isDirectory()) return repositoryFiles(path);
    return entry.isFile() ? [path] : [];
  });
}

const files = repositoryFiles().map((file) => ({ file, text: readFileSync(join(ROOT, file), 'utf8') }));

test('every repository path a doc or a code comment cites exists', () => {
  const missing = files.flatMap(({ file, text }) =>
    citedPaths(file, text)
      .filter(({ path }) => path.startsWith('..') || !existsSync(join(ROOT, path)))
      .map(({ path, line }) => `${file}:${line} cites ${path}`),
  );
  assert.deepEqual(missing, []);
});

test('the citation finder: prefixed tokens and local links, not URLs, globs or code', () => {
  const gone = 'gone'; // built at run time, so this file itself cites nothing missing
  const doc = `See \`docs/${gone}.md\`, src/rules/. and [x](../native/${gone}.cc#a) [y](https://h.example/a) `
    + `bench/${'*'}.ts dist/src/x.js [z](#top)`;
  assert.deepEqual(citedPaths('docs/X.md', doc).map((c) => c.path), [`docs/${gone}.md`, 'src/rules/', `native/${gone}.cc`]);
  const code = `const p = 'src/${gone}.ts';\n// see native/${gone}.h\n/* and\n   bpf/${gone}.c */\n`;
  assert.deepEqual(citedPaths('src/x.ts', code), [{ path: `native/${gone}.h`, line: 2 }, { path: `bpf/${gone}.c`, line: 4 }]);
});

test('no file mentions the old kernel notes or the shared directory outside the repository', () => {
  const stale = [['KERNEL', 'NOTES'].join('-'), ['..', 'shared', ''].join('/')];
  const hits = files
    .filter(({ file }) => !(file.startsWith('bench/results/') && file.endsWith('.json')))
    .flatMap(({ file, text }) => stale.filter((name) => text.includes(name)).map((name) => `${file}: ${name}`));
  assert.deepEqual(hits, []);
});
