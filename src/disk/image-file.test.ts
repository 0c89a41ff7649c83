import assert from 'node:assert/strict';
import { mkdtemp, open, rm, truncate } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { isCofferError } from '../errors/index.js';
import { ImageFile } from './image-file.js';

const MiB = 1024 * 1024;
let work: string;
before(async () => {
  work = await mkdtemp(join(tmpdir(), 'coffer-image-file-'));
});
after(() => rm(work, { recursive: true, force: true }));

async function runsOf(file: ImageFile, at: number, length: number): Promise<string[]> {
  const runs: string[] = [];
  for await (const run of file.dataRuns(at, length)) runs.push(`${run.at}+${run.length} ${run.data ? 'data' : 'hole'}`);
  return runs;
}

test('dataRuns: a sparse file as its data and holes, clipped to the range asked; past the end is E_IMAGE_INVALID; a file that shrank is E_SOURCE_SHRUNK, not a hole', async () => {
  const path = join(work, 'thin.img');
  const handle = await open(path, 'w');
  await handle.write(Buffer.alloc(MiB / 2, 7), 0, MiB / 2, MiB);
  await handle.truncate(4 * MiB);
  await handle.close();
  const file = await ImageFile.open(path);
  try {
    assert.deepEqual(await runsOf(file, 0, 4 * MiB), [`0+${MiB} hole`, `${MiB}+${MiB / 2} data`, `${MiB + MiB / 2}+${2.5 * MiB} hole`]);
    assert.deepEqual(await runsOf(file, MiB + 4096, 8192), [`${MiB + 4096}+8192 data`]);
    await assert.rejects(runsOf(file, 3 * MiB, 2 * MiB), (error) => isCofferError(error, 'E_IMAGE_INVALID'));
    await truncate(path, 2 * MiB);
    await assert.rejects(runsOf(file, 0, 4 * MiB), (error) => isCofferError(error, 'E_SOURCE_SHRUNK'));
  } finally {
    await file.close();
  }
});
