/**
 * The architecture, checked: which folder may import which (DESIGN.md: dependencies point
 * downward; tests may use any part), and that folders import each other only through their
 * index.ts. Reads the
 * TypeScript sources next to the compiled tests.
 */
import assert from 'node:assert/strict';
import { readdir, readFile } from 'node:fs/promises';
import { dirname, join, relative, resolve } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

const SRC = resolve(dirname(fileURLToPath(import.meta.url)), '../../src');

/** Folder → the folders it may import (besides itself). */
const ALLOWED: Record<string, string[]> = {
  errors: [],
  glob: ['names'],
  blockdev: [],
  concurrency: [],
  native: [],
  // File names as bytes (names/byte-names.ts): the ext/XFS readers, the host scan, the tree format and the restores share them.
  names: [],
  // Test helpers, imported by tests and benchmarks only (no folder lists testing): the
  // repacked-repository fixture backs up and prunes (testing/repacked-repository.ts).
  testing: ['repo', 'backup', 'source'],
  xml: ['errors'],
  qmp: ['errors', 'blockdev', 'concurrency'],
  repo: ['names', 'errors', 'concurrency', 'native'],
  disk: ['errors', 'blockdev', 'concurrency', 'native'],
  source: ['names', 'errors', 'glob', 'blockdev', 'disk', 'qmp', 'nbd', 'xml', 'native'],
  volume: ['errors', 'blockdev'],
  fs: ['names', 'errors', 'blockdev'],
  nbd: ['errors', 'blockdev', 'concurrency'],
  backup: ['names', 'errors', 'blockdev', 'concurrency', 'repo', 'source', 'disk', 'native'],
  restore: ['names', 'errors', 'glob', 'blockdev', 'concurrency', 'repo', 'disk', 'volume', 'fs', 'nbd', 'xml', 'native'],
  relocate: ['errors', 'qmp', 'native'],
  jobs: ['errors', 'concurrency', 'repo'],
  server: ['names', 'errors', 'concurrency', 'repo', 'jobs', 'backup', 'restore', 'source', 'disk', 'volume', 'fs', 'nbd', 'native'],
  // The web console talks to the server over HTTP only (src/web/api/client.ts), never by import.
  web: [],
  cli: ['names', 'errors', 'blockdev', 'concurrency', 'repo', 'source', 'disk', 'volume', 'fs', 'nbd', 'backup', 'restore', 'relocate', 'jobs', 'server'],
};

/**
 * Entries besides a folder's index.ts, each light on purpose: repo/keys loads the key-file
 * code without the rest of repo/, and repo/derive-keys-ahead adds S3's signed requests to it,
 * so a command starts its scrypt while it loads (cli/derive-keys-early.ts); cli/main.ts asks
 * disk/output-stream whether standard output carries data without loading the disk formats.
 */
const LIGHT_ENTRIES = new Set(['repo/keys/index.js', 'repo/derive-keys-ahead.js', 'disk/output-stream.js']);

async function sourceFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...(await sourceFiles(path)));
    else if (entry.name.endsWith('.ts')) out.push(path);
  }
  return out;
}

test('every folder imports only the folders below it, through their index.ts', async () => {
  const problems: string[] = [];
  for (const file of await sourceFiles(SRC)) {
    const rel = relative(SRC, file);
    const folder = rel.split('/')[0] as string;
    if (!rel.includes('/')) continue; // top-level files such as this test
    const isTest = file.endsWith('.test.ts');
    const allowed = ALLOWED[folder];
    if (allowed === undefined) {
      problems.push(`${rel}: folder ${folder} is not in the architecture table`);
      continue;
    }
    const text = await readFile(file, 'utf8');
    for (const match of text.matchAll(/from '(\.{1,2}\/[^']+)'/g)) {
      const target = relative(SRC, resolve(dirname(file), match[1] as string));
      const targetFolder = target.split('/')[0] as string;
      if (targetFolder === folder) continue;
      // Tests may use any part (a backup test checks by restoring), still through its index.
      if (!isTest && !allowed.includes(targetFolder)) problems.push(`${rel} imports ${targetFolder}/ (allowed: ${allowed.join(', ') || 'nothing'})`);
      // A folder's test support (`*.test-support.ts`, never in its index) is for tests anywhere.
      if (isTest && target.endsWith('.test-support.js')) continue;
      if (target !== `${targetFolder}/index.js` && !LIGHT_ENTRIES.has(target)) problems.push(`${rel} imports ${target} instead of ${targetFolder}/index.js`);
    }
  }
  assert.deepEqual(problems, []);
});
