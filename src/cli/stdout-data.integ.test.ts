/**
 * Data written to standard output (`restore --to -`, `files cat`, `files get --tar`) that
 * cannot all arrive is a failure, never a quiet success: a reader that goes away (a real
 * closed pipe: the test reads 64 KiB and closes its end) is exit 4 naming EPIPE, and a full
 * disk (/dev/full as stdout) exit 5. A listing piped into a reader that stops early
 * (`snapshots | head`) still ends quietly with exit 0, as `git log | head` does.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdir, open, readFile, truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { seededBytes } from '../testing/index.js';
import { coffer, COFFER_BIN, cofferJson, makeWorkDir, removeDir, runTool, type BackupJson } from './cli-harness.js';

const PASSWORD = { COFFER_PASSWORD: 'stdout' };
let work: string;
let repo: string;
let content: Buffer;

before(async () => {
  work = await makeWorkDir('stdout-data');
  repo = join(work, 'repo');
  const tree = join(work, 'tree');
  await mkdir(join(tree, 'd'), { recursive: true });
  content = seededBytes(41, 6 * 1024 * 1024);
  await writeFile(join(tree, 'd', 'big.bin'), content);
  await writeFile(join(tree, 'small.txt'), 'small\n');
  await mkdir(join(tree, 'many'));
  for (let i = 0; i < 5000; i++) await writeFile(join(tree, 'many', `a-file-with-a-rather-long-name-${String(i).padStart(5, '0')}`), '');
  const image = join(work, 'fs.img');
  await writeFile(image, '');
  await truncate(image, 32 * 1024 * 1024);
  const made = await runTool('mke2fs', ['-q', '-t', 'ext4', '-d', tree, '-F', image]);
  assert.equal(made.code, 0, made.stderr);
  await cofferJson(['init', '-r', repo], { env: PASSWORD });
  await cofferJson<BackupJson>(['backup', '-r', repo, '--vm', 'fs', image, '--json'], { env: PASSWORD });
});
after(() => removeDir(work));

interface Outcome {
  code: number | null;
  stderr: string;
  received: number;
}

/** Runs coffer with its stdout a pipe this test reads `keep` bytes of, then closes; or a file descriptor. */
async function run(args: string[], stdout: { closeAfter: number } | { fd: number }): Promise<Outcome> {
  const child = spawn(process.execPath, [COFFER_BIN, ...args], {
    env: { ...process.env, ...PASSWORD },
    stdio: ['ignore', 'fd' in stdout ? stdout.fd : 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr?.on('data', (bytes: Buffer) => (stderr += bytes.toString()));
  let received = 0;
  if ('closeAfter' in stdout) {
    const out = child.stdout as NonNullable<typeof child.stdout>;
    out.on('data', (bytes: Buffer) => {
      received += bytes.length;
      if (received >= stdout.closeAfter) out.destroy();
    });
  }
  const code = await new Promise<number | null>((resolve) => child.on('close', (exit) => resolve(exit)));
  return { code, stderr, received };
}

const streams: { what: string; args: () => string[] }[] = [
  { what: 'restore --to -', args: () => ['restore', '-r', repo, 'fs:latest', '--to', '-'] },
  { what: 'files cat', args: () => ['files', '-r', repo, 'fs:latest', 'cat', 'disk:/d/big.bin'] },
  { what: 'files get --tar', args: () => ['files', '-r', repo, 'fs:latest', 'get', 'disk:/', '--tar'] },
];

for (const { what, args } of streams) {
  test(`${what} into a pipe whose reader goes away: exit 4, EPIPE named`, async () => {
    const outcome = await run(args(), { closeAfter: 64 * 1024 });
    assert.equal(outcome.code, 4, outcome.stderr);
    assert.match(outcome.stderr, /^coffer: cannot write standard output: its reader closed it before all the data was written \(EPIPE\)\n$/);
  });

  test(`${what} into a full disk: exit 5`, async () => {
    const full = await open('/dev/full', 'w');
    try {
      const outcome = await run(args(), { fd: full.fd });
      assert.equal(outcome.code, 5, outcome.stderr);
      assert.match(outcome.stderr, /no space left writing standard output/);
    } finally {
      await full.close();
    }
  });
}

test('files cat read whole: the bytes of the file, exit 0', async () => {
  const path = join(work, 'cat.out');
  const handle = await open(path, 'w');
  try {
    const outcome = await run(['files', '-r', repo, 'fs:latest', 'cat', 'disk:/d/big.bin'], { fd: handle.fd });
    assert.equal(outcome.code, 0, outcome.stderr);
  } finally {
    await handle.close();
  }
  assert.ok((await readFile(path)).equals(content));
});

test('a listing into a reader that stops early ends quietly: exit 0, nothing on stderr', async () => {
  const listing = ['files', '-r', repo, 'fs:latest', 'find', 'disk:/', '--name', '*'];
  const whole = await coffer(listing, { env: PASSWORD });
  assert.ok(whole.stdout.length > 128 * 1024, `the listing (${whole.stdout.length} bytes) outgrows a pipe's buffer, so the reader's going away is met`);
  const outcome = await run(listing, { closeAfter: 1 });
  assert.equal(outcome.code, 0, outcome.stderr);
  assert.equal(outcome.stderr, '');
});
