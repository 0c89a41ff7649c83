/**
 * The htree hashes against debugfs `dx_hash` (e2fsprogs' own implementation): every hash
 * version, signed and unsigned, default and explicit seed, names of every length class
 * (one word, a whole 16/32-byte block, beyond it) and bytes above 0x7F.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { requireTools, runTool } from '../../testing/index.js';
import { dirHash } from './dir-hash.js';

const NAMES = ['a', 'hello', 'abcd', 'abcdefghijklmnop', 'abcdefghijklmnopq', 'entry-with-a-longer-name-141.txt',
  'x'.repeat(32), 'y'.repeat(33), 'z'.repeat(64) + 'tail', 'café-crème.txt', '日本語のファイル.txt', 'Ünïcödé-dir', 'w0042'];
const SEEDS = ['', '3ee3c9b9-f13a-1380-eeef-e55922cdd4e2'];

function seedWords(uuid: string): number[] {
  if (uuid === '') return [0, 0, 0, 0];
  const bytes = Buffer.from(uuid.replace(/-/g, ''), 'hex');
  return [0, 4, 8, 12].map((o) => bytes.readUInt32LE(o));
}

test('dirHash matches debugfs dx_hash for every hash version, seed and name', async () => {
  await requireTools('debugfs');
  const commands: string[] = [];
  const expected: { version: number; seed: string; name: string }[] = [];
  for (let version = 0; version <= 5; version++) {
    for (const seed of SEEDS) {
      for (const name of NAMES) {
        commands.push(`dx_hash -h ${version}${seed ? ` -s ${seed}` : ''} ${name}`);
        expected.push({ version, seed, name });
      }
    }
  }
  const output = await runTool('debugfs', ['-f', '-'], `${commands.join('\n')}\n`);
  const hashes = [...output.matchAll(/^Hash of .* is 0x([0-9a-f]+) /gm)].map((m) => parseInt(m[1] ?? '', 16));
  assert.equal(hashes.length, expected.length, 'one answer per name');
  expected.forEach((e, i) => {
    const mine = dirHash(new TextEncoder().encode(e.name), e.version, seedWords(e.seed));
    assert.equal(mine, hashes[i], `hash ${e.version} of ${e.name} with seed '${e.seed}'`);
  });
});

test('dirHash refuses unknown hash versions instead of guessing', () => {
  assert.equal(dirHash(new TextEncoder().encode('x'), 6, [0, 0, 0, 0]), undefined);
});
