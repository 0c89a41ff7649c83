/**
 * The V8 settings of contrib/coffer-server.service, checked against the real `node`: what
 * bounds the server's memory after large pages (bench/README.md, the service part).
 *
 * V8 lets its old generation grow to the live size times a factor before a full GC, and that
 * factor depends on the old generation's cap: 4x once the cap reaches 2 GiB on x64 Node
 * (HeapController's kMaxSize, 1024 MB x pointer multiplier 2), between 1.3x and 2x below.
 * Node's default cap is 4 GiB on a machine with 16 GiB or more, so ~60 MiB of live objects
 * could sit beside ~180 MiB of garbage. The unit caps it at 512 MiB. These tests fail when the
 * cap is dropped or raised past 2 GiB, and when a flag Node refuses in NODE_OPTIONS creeps in
 * (node exits 9 and systemd restarts the server in a loop).
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

const UNIT = fileURLToPath(new URL('../../../contrib/coffer-server.service', import.meta.url));
/** Below it V8's heap-growing factor stays under its 4x maximum (x64 Node: no pointer compression). */
const FULL_GROWTH_CAP_MIB = 2048;

/** The `NODE_OPTIONS` the unit sets (`Environment=NODE_OPTIONS=…`, quoted or not). */
function nodeOptionsOf(unit: string): string {
  const match = /^Environment="?NODE_OPTIONS=([^"\n]*)"?$/m.exec(unit);
  assert.ok(match !== null, 'the unit sets NODE_OPTIONS');
  return match[1] as string;
}

/** Runs `node -e script` with `NODE_OPTIONS`; its exit code and output (10 s deadline). */
function runNode(nodeOptions: string, script: string): Promise<{ code: number | null; out: string; err: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['-e', script], { env: { ...process.env, NODE_OPTIONS: nodeOptions }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
    child.once('error', reject);
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, out, err });
    });
  });
}

const HEAP_LIMIT_MIB = 'process.stdout.write(String(require("node:v8").getHeapStatistics().heap_size_limit / 1048576))';

test('the unit\'s NODE_OPTIONS start node and cap the old generation below V8\'s full-growth size', async () => {
  const options = nodeOptionsOf(await readFile(UNIT, 'utf8'));
  assert.match(options, /--max-semi-space-size=2(\s|$)/);
  assert.match(options, /--max-old-space-size=512(\s|$)/);
  const run = await runNode(options, HEAP_LIMIT_MIB);
  assert.equal(run.code, 0, `node refused the unit's NODE_OPTIONS: ${run.err}`);
  const limit = Number(run.out);
  // The heap limit is the old generation's cap plus the young generation's (a few MiB).
  assert.ok(limit >= 512 && limit < 600, `heap limit ${limit} MiB`);
  assert.ok(limit < FULL_GROWTH_CAP_MIB);
});
