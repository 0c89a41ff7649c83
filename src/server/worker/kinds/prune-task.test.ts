import assert from 'node:assert/strict';
import { test } from 'node:test';
import { initRepository, LocalBackend, openRepository } from '../../../repo/index.js';
import { tempFolders } from '../../../testing/index.js';
import { pruneWithReport } from './prune-task.js';
import type { KindContext } from './task-report.js';

const tempFolder = tempFolders();

const context: KindContext = { signal: new AbortController().signal, log: () => undefined, progress: () => undefined, report: () => undefined };

test('the prune task\'s figures count the quarantine markers retired, and in format 2 the damaged copies dropped', async () => {
  for (const format of [1, 2] as const) {
    const backend = new LocalBackend(await tempFolder('coffer-prune-task'));
    await initRepository(backend, { passphrase: 'pw', kdf: { N: 1024, r: 8, p: 1 }, format });
    const repo = await openRepository(backend, { passphrase: 'pw', threads: 1 });
    try {
      const { figures } = await pruneWithReport(repo, { dryRun: false, waitMs: 0 }, context);
      assert.equal(figures.quarantineRetired, 0, `format ${format}`);
      assert.equal(figures.damagedCopiesDropped, format === 2 ? 0 : undefined, `format ${format}`);
    } finally {
      await repo.close();
    }
  }
});
