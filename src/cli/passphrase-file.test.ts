/**
 * readPassphraseFile: a pipe is read once and its answer shared, a FIFO waits for its writer
 * without blocking a thread (and Ctrl-C ends the wait), and what cannot be a passphrase (an
 * empty file, /dev/zero, a folder) is a one-line usage error naming the file.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { open, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { isCofferError } from '../errors/index.js';
import { makeTempDir } from '../testing/index.js';
import { readPassphraseFile } from './passphrase-file.js';

let work: { path: string; remove(): Promise<void> };
before(async () => {
  work = await makeTempDir('coffer-passphrase-file');
});
after(() => work?.remove());

test('a file: its first line without the newline; an empty file, /dev/zero and a folder are refused with the path named', async () => {
  await writeFile(join(work.path, 'pw'), 'correct horse\n');
  assert.equal(await readPassphraseFile(join(work.path, 'pw')), 'correct horse');
  await writeFile(join(work.path, 'empty'), '\n');
  await assert.rejects(readPassphraseFile(join(work.path, 'empty')), (error) => isCofferError(error, 'E_USAGE') && error.message.includes(`${join(work.path, 'empty')} is empty: an empty passphrase is not allowed`));
  await assert.rejects(readPassphraseFile('/dev/zero'), (error) => isCofferError(error, 'E_USAGE') && /\/dev\/zero holds more than 64 KiB/.test(error.message));
  await assert.rejects(readPassphraseFile(work.path), (error) => isCofferError(error, 'E_USAGE') && error.message.includes(work.path));
  await assert.rejects(readPassphraseFile(join(work.path, 'absent')), (error) => isCofferError(error, 'E_USAGE') && /no such file/.test(error.message));
});

test('a FIFO: waits for a writer that comes late, and every later read gets the same answer without reading it again', async () => {
  const fifo = join(work.path, 'late.fifo');
  execFileSync('mkfifo', [fifo]);
  const first = readPassphraseFile(fifo);
  await new Promise((resolve) => setTimeout(resolve, 300));
  const writer = await open(fifo, 'w');
  await writer.write('from the pipe\n');
  await writer.close();
  assert.equal(await first, 'from the pipe');
  assert.equal(await readPassphraseFile(fifo), 'from the pipe', 'a second read of the same pipe: the first answer (the pipe is empty now)');
});

test('a FIFO nobody writes to: the wait ends at once when the signal aborts (Ctrl-C), E_INTERRUPTED', async () => {
  const fifo = join(work.path, 'silent.fifo');
  execFileSync('mkfifo', [fifo]);
  const controller = new AbortController();
  const reading = readPassphraseFile(fifo, controller.signal);
  setTimeout(() => controller.abort(), 200);
  await assert.rejects(reading, (error) => isCofferError(error, 'E_INTERRUPTED') && error.message.includes(fifo));
});
