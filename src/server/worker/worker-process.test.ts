/**
 * A real worker process backing up a real (sparse) disk image: what its progress reports carry
 * to the parent over IPC.
 */
import assert from 'node:assert/strict';
import { truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, test } from 'node:test';
import type { VmBackupSpec } from '../../backup/index.js';
import { initRepository, LocalBackend } from '../../repo/index.js';
import { makeTempDir, seededBytes } from '../../testing/index.js';
import { startWorker } from './worker-process.js';
import type { WorkerProgress } from './worker-protocol.js';

const KiB = 1024;
const dir = await makeTempDir('coffer-worker-process');
after(() => dir.remove());
// The worker keeps its block fingerprints under the cache directory it inherits: this test's own.
process.env.XDG_CACHE_HOME = join(dir.path, 'cache');

test('a backup worker reports the bytes it read from the source beside its progress, which also passes over what it skips unread', async () => {
  const repository = { url: join(dir.path, 'repo'), passphraseFile: join(dir.path, 'pass') };
  await writeFile(repository.passphraseFile, 'pw\n');
  await initRepository(new LocalBackend(repository.url), { passphrase: 'pw', kdf: { N: 1024, r: 8, p: 1 }, blockSize: 64 * KiB });
  // 1 MiB: 256 KiB of data, then a hole, never read.
  const image = join(dir.path, 'sparse.raw');
  await writeFile(image, seededBytes(3, 256 * KiB));
  await truncate(image, 1024 * KiB);
  const spec: VmBackupSpec = { repository, vm: 'vm-sparse', host: 'hv', source: { images: [image] }, threads: 1 };
  const reports: WorkerProgress[] = [];
  const worker = startWorker({ taskId: 't1', kind: 'backup', spec, rates: {} }, { onProgress: (p) => reports.push(p) });
  const outcome = await worker.ended;
  assert.equal(outcome.kind, 'result', JSON.stringify(outcome));
  const last = reports.at(-1);
  assert.deepEqual({ done: last?.done, total: last?.total, sourceBytesRead: last?.sourceBytesRead }, { done: 1024 * KiB, total: 1024 * KiB, sourceBytesRead: 256 * KiB });
  assert.ok(reports.some((p) => p.latencyMs !== undefined), 'the latency of its reads comes with them');
});
